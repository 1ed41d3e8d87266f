"""`client new`: the PID, its payment id, and (given an address or a server) what to pay where."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from anon_ticket.client.address import integrated_address
from anon_ticket.core.domain import PaymentId

from .fakeserver import INFO, PRIMARY, FakeServer, error, ok, run_cli

SUBADDRESS = "88nXQZ3ijccNjSoypJKsWp1xekDNQJWgRNTTpH83PsyFQkJsofJ566DJXx8FB2bT3qA1auTUchfxxjXNH57KiUg6SVPFonN"


def _field(out: str, label: str) -> str:
    match = re.search(rf"^{label}:\s+(\S+)", out, re.MULTILINE)
    assert match, f"no {label!r} line in {out!r}"
    return match.group(1)


def test_bare_new_prints_the_pid_and_warns_on_stderr() -> None:
    run = run_cli("new")
    assert run.code == 0
    pid = PaymentId.parse(_field(run.out, "pid"))
    assert _field(run.out, "payment id") == pid.chain_payment_id().hex()
    assert "integrated address" not in run.out
    assert "only proof of payment" in run.err
    assert pid.hex() not in run.err


def test_each_run_makes_a_new_pid() -> None:
    assert _field(run_cli("new").out, "pid") != _field(run_cli("new").out, "pid")


def test_address_gives_the_integrated_address_offline() -> None:
    run = run_cli("new", "--address", PRIMARY, "--amount", "25000000000")
    assert run.code == 0
    pid = PaymentId.parse(_field(run.out, "pid"))
    assert _field(run.out, "integrated address") == integrated_address(PRIMARY, pid.chain_payment_id())
    assert "25000000000 atomic units (0.025 XMR)" in run.out
    assert _field(run.out, "network") == "mainnet"


def test_json_without_out_includes_the_pid() -> None:
    run = run_cli("new", "--json", "--address", PRIMARY)
    assert run.code == 0
    fields = json.loads(run.out)
    assert set(fields) == {"pid", "payment_id", "integrated_address", "amount", "pid_file"}
    pid = PaymentId.parse(fields["pid"])
    assert fields["payment_id"] == pid.chain_payment_id().hex()
    assert fields["integrated_address"] == integrated_address(PRIMARY, pid.chain_payment_id())
    assert fields["amount"] is None
    assert fields["pid_file"] is None


def test_out_writes_an_owner_only_file_and_keeps_the_pid_off_stdout(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    run = run_cli("new", "--json", "--address", PRIMARY, "--out", str(path))
    assert run.code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pid = PaymentId.parse(path.read_text().strip())
    assert path.read_text() == pid.hex() + "\n"
    fields = json.loads(run.out)
    assert "pid" not in fields
    assert fields["pid_file"] == str(path)
    assert fields["payment_id"] == pid.chain_payment_id().hex()
    assert pid.hex() not in run.out + run.err
    assert "only proof of payment" not in run.err


def test_out_text_mode_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    run = run_cli("new", "--out", str(path))
    assert run.code == 0
    assert _field(run.out, "pid file") == str(path)
    assert not re.search(r"^pid:", run.out, re.MULTILINE)


def test_out_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    path.write_text("keep me\n")
    run = run_cli("new", "--address", PRIMARY, "--out", str(path))
    assert run.code == 2
    assert "already exists" in run.err
    assert path.read_text() == "keep me\n"
    assert run.out == ""


def test_server_supplies_address_and_minimum(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    run = run_cli("new", "--server", server.url + "/", "--out", str(path), "--json")
    assert run.code == 0, run.err
    fields = json.loads(run.out)
    pid = PaymentId.parse(path.read_text().strip())
    assert fields["integrated_address"] == integrated_address(PRIMARY, pid.chain_payment_id())
    assert fields["amount"] == INFO["min_payment_amount"]
    assert [seen.method + " " + seen.path for seen in server.script.seen] == ["GET /api/v1/info"]


def test_server_text_mode_shows_xmr(server: FakeServer) -> None:
    run = run_cli("new", "--server", server.url)
    assert run.code == 0
    assert "10000000000 atomic units (0.01 XMR)" in run.out


def test_amount_above_the_minimum_is_kept_below_is_refused(server: FakeServer) -> None:
    assert json.loads(run_cli("new", "--server", server.url, "--amount", "20000000000", "--json").out)[
        "amount"
    ] == (20_000_000_000)
    run = run_cli("new", "--server", server.url, "--amount", "9999999999")
    assert run.code == 2
    assert "below the server's minimum" in run.err


def test_scheme_mismatch_refuses_before_any_pid_file(server: FakeServer, tmp_path: Path) -> None:
    server.info(ok({**INFO, "payment_id_scheme": "sha3-256/other/v2"}))
    path = tmp_path / "order.pid"
    run = run_cli("new", "--server", server.url, "--out", str(path))
    assert run.code == 5
    assert "sha3-256/other/v2" in run.err
    assert not path.exists()
    assert run.out == ""


def test_server_unavailable_or_unreachable_is_exit_5(server: FakeServer, closed_port_url: str) -> None:
    server.info(error(503, "unavailable", retry_after=5))
    assert run_cli("new", "--server", server.url).code == 5
    run = run_cli("new", "--server", closed_port_url)
    assert run.code == 5
    assert "cannot reach the server" in run.err


def test_server_with_a_bad_primary_address_is_a_server_error(server: FakeServer) -> None:
    server.info(ok({**INFO, "primary_address": SUBADDRESS}))
    run = run_cli("new", "--server", server.url)
    assert run.code == 5
    assert "subaddress" in run.err


def test_usage_errors_are_exit_2() -> None:
    assert run_cli("new", "--address", SUBADDRESS).code == 2
    assert run_cli("new", "--address", PRIMARY[:-1]).code == 2
    assert run_cli("new", "--amount", "5").code == 2
    assert run_cli("new", "--address", PRIMARY, "--amount", "0").code == 2
    assert run_cli("new", "--address", PRIMARY, "--amount", "1.5").code == 2
    assert run_cli("new", "--address", PRIMARY, "--server", "http://127.0.0.1:1").code == 2
    assert run_cli("new", "--proxy", "socks5h://127.0.0.1:9050").code == 2
    assert run_cli("new", "--server", "http://abcdefghijklmnop.onion").code == 2
    assert run_cli("new", "--bogus").code == 2


def test_help_explains_exit_codes() -> None:
    run = run_cli("new", "--help")
    assert run.code == 0
    assert "exit codes:" in run.out
    assert "--out FILE" in run.out
    assert "0600" in run.out
