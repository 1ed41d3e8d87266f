"""The parts of `check` and the demo that real wallets cannot easily show, in-process and fast.

A monero-wallet-rpc behind `--restricted-rpc`, a hardware wallet, or one that answers nothing useful
to `describe_transfer` are played by the fake wallet (a real JSON-RPC server); the verdict must never
be "ok" for any of them. tor's configuration is parsed as tor reads it (comments, any case), and the
demo's state folder is refused when someone else could have written it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anon_ticket.commands.check import torrc, wallet
from anon_ticket.commands.check.report import Verdict
from anon_ticket.config import Config
from anon_ticket.demo import state
from anon_ticket.errors import DemoError
from tests.support.daemon import free_ports
from tests.support.fake_wallet import FakeWallet


def view_only_finding(fake: FakeWallet) -> tuple[Verdict, str]:
    config = Config.from_environ({"MONERO_RPC_URL": fake.url, "MIN_PAYMENT_AMOUNT": "1"})
    (closed,) = free_ports(1)
    findings = {f.subject: f for f in wallet.check(config, None, f"http://127.0.0.1:{closed}")}
    found = findings["wallet view-only"]
    return found.verdict, found.line()


@pytest.mark.parametrize(
    ("code", "message", "seen"),
    [
        (-29, "command not supported by watch-only wallet", "view-only: it refuses to sign"),
        (-1, "no txset provided", "not view-only: this wallet holds its spend key"),
        (-1, "command not supported by HW wallet", "not view-only: a hardware wallet"),
        (
            -7,
            "Command unavailable in restricted mode.",
            "cannot tell: monero-wallet-rpc runs with --restricted-rpc",
        ),
        (-32601, "Method not found", "cannot tell"),
    ],
)
def test_what_describe_transfer_answers_decides_view_only(code: int, message: str, seen: str) -> None:
    with FakeWallet() as fake:
        fake.fail_next("describe_transfer", code=code, message=message)
        verdict, line = view_only_finding(fake)
    assert seen in line
    assert verdict is (Verdict.OK if code == -29 else Verdict.PROBLEM)


def test_a_wallet_whose_daemon_is_not_reachable_is_skipped_not_passed() -> None:
    with FakeWallet() as fake:
        config = Config.from_environ({"MONERO_RPC_URL": fake.url, "MIN_PAYMENT_AMOUNT": "1"})
        (closed,) = free_ports(1)
        findings = {f.subject: f for f in wallet.check(config, None, f"http://127.0.0.1:{closed}")}
    synced = findings["wallet synced"]
    assert synced.verdict is Verdict.SKIPPED and "give --monerod URL" in synced.seen


@pytest.mark.parametrize(
    ("text", "exports"),
    [
        ("HiddenServiceExportCircuitID haproxy\n", True),
        ("  hiddenserviceexportcircuitid HAProxy  # per circuit\n", True),
        ("# HiddenServiceExportCircuitID haproxy\n", False),
        ("HiddenServiceExportCircuitID none\n", False),
        ("HiddenServicePort 80 unix:/run/anon_ticket/public.sock\n", False),
    ],
)
def test_the_torrc_line_is_read_as_tor_reads_it(text: str, exports: bool) -> None:
    assert torrc.exports_circuit_ids(text) is exports


def test_an_unreadable_torrc_is_a_problem(tmp_path: Path) -> None:
    found = torrc.check("off", tmp_path / "no-such-torrc")
    assert found.verdict is Verdict.PROBLEM and "cannot be read" in found.seen


def test_the_demo_state_folder_must_be_private(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    folder = state.state_folder(environ)
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    demo = state.DemoState(1, str(tmp_path), "http://127.0.0.1:1/json_rpc", "http://127.0.0.1:2", 3.0)
    with pytest.raises(DemoError, match="not a private folder"):
        state.write(environ, demo)
    with pytest.raises(DemoError, match="not a private folder"):
        state.read(environ)
