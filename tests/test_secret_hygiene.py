"""Secrets stay secret: no core dumps, a safe token file, no secret in any repr, masked access logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.actors.wallet_poller import PollerSettings
from anon_ticket.api.internal import loggable
from anon_ticket.client.transport import Reply
from anon_ticket.config import Config
from anon_ticket.core.domain import PaymentId, TxId
from anon_ticket.core.payments import TokenStatus
from anon_ticket.errors import ConfigError
from anon_ticket.process import internal_token
from anon_ticket.service.redeem import RedeemAnswer
from anon_ticket.storage.protocols import ClaimOutcome, ClaimRecord, ClaimRequest
from anon_ticket.wallet.rpc import WalletRpc
from tests.support.daemon import REPO_ROOT, DaemonProcess
from tests.support.fake_wallet import FakeWallet

API_TOKEN = "internal-api-token-0123456789abcdef"
RPC_PASSWORD = "rpc-password-do-not-print"
WALLET_PASSWORD = "wallet-file-password-do-not-print"
PG_PASSWORD = "pg-password-do-not-print"


def test_no_secret_in_any_repr() -> None:
    config = Config.from_environ(
        {
            "DATABASE_URL": f"postgresql://shop:{PG_PASSWORD}@127.0.0.1/shop",
            "INTERNAL_API_TOKEN": API_TOKEN,
            "MONERO_RPC_USER": "shop",
            "MONERO_RPC_PASSWORD": RPC_PASSWORD,
            "MONERO_WALLET_FILE": "merchant",
            "MONERO_WALLET_PASSWORD": WALLET_PASSWORD,
        }
    )
    pid = PaymentId.generate()
    token = pid.service_token(TxId(b"\x07" * 32))
    record = ClaimRecord(b"\x01" * 8, b"\x07" * 32, token.digest().raw, 1, 1, TokenStatus.ACTIVE, None, None)
    rpc = WalletRpc("http://127.0.0.1:1/json_rpc", timeout=1, user="shop", password=RPC_PASSWORD)
    shown = " ".join(
        repr(thing)
        for thing in (
            config,
            config.describe(),
            rpc,
            vars(rpc),
            PollerSettings(1, 1, 1, None, 1, "merchant", WALLET_PASSWORD),
            pid,
            token,
            ClaimRequest(pid, 1, 1, 1),
            ClaimOutcome(record, token, True, 1),
            RedeemAnswer(200, {"status": "claimed", "token": token.hex()}),
            Reply(200, {"token": token.hex()}, None),
        )
    )
    rpc.close()
    for secret in (API_TOKEN, RPC_PASSWORD, WALLET_PASSWORD, PG_PASSWORD, pid.hex(), token.hex()):
        assert secret not in shown
    assert pid.hex()[:16] not in shown and token.hex()[:16] not in shown


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        (f"/api/v1/token/{'ab' * 32}", "digest:"),  # a token: its digest prefix, as before
        (f"/api/v1/token/{'c' * 63}", "<63 hex>"),  # a near-token is not logged almost whole
        (f"/api/v1/token/{'d' * 16}/revoke", "<16 hex>"),
        (f"/api/v1/token/{'e' * 65}", "<65 hex>"),
    ],
)
def test_the_access_log_masks_every_run_of_16_or_more_hex_digits(path: str, kept: str) -> None:
    shown = loggable(path)
    assert kept in shown
    assert re.search(r"[0-9a-fA-F]{16,}", shown) is None  # a digest prefix is 12 hex digits


def test_short_hex_runs_stay_readable() -> None:
    assert loggable("/api/v1/token/abc123") == "/api/v1/token/abc123"
    assert loggable(f"/x/{'f' * 15}") == f"/x/{'f' * 15}"


# -- core dumps -------------------------------------------------------------------------------------


def test_core_dumps_are_forbidden_from_the_first_moment() -> None:
    code = (
        "import resource\n"
        "from anon_ticket.process import hardening\n"
        "assert hardening.dumpable() is True\n"
        "problems = hardening.forbid_core_dumps()\n"
        "print(problems, hardening.dumpable(), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    ).stdout
    assert out.strip() == "[] False (0, 0)"


def test_the_daemon_process_cannot_dump_core(tmp_path: Path) -> None:
    with FakeWallet() as wallet, DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        limits = Path(f"/proc/{daemon.pid}/limits").read_text()
        assert re.search(r"^Max core file size\s+0\s+0\s+bytes", limits, re.MULTILINE), limits
    unit = (REPO_ROOT / "conf" / "anon_ticket.service").read_text()
    assert re.search(r"^LimitCORE=0$", unit, re.MULTILINE)


# -- the generated internal token file ---------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Config]:
    yield Config.from_environ({"DATABASE_URL": f"sqlite:///{tmp_path}/anon_ticket.db"})


def test_the_token_file_is_created_0600_and_reused(config: Config) -> None:
    first = internal_token.load_or_create(config)
    path = internal_token.token_path(config)
    assert path.stat().st_mode & 0o777 == 0o600
    assert internal_token.load_or_create(config) == first
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_empty_token_file_left_by_a_crash_is_replaced(config: Config) -> None:
    path = internal_token.token_path(config)
    path.touch(mode=0o600)
    token = internal_token.load_or_create(config)
    assert len(token.reveal()) >= 16
    assert path.read_text().strip() == token.reveal()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_token_file_others_can_read_is_refused_with_the_fix(config: Config) -> None:
    internal_token.load_or_create(config)
    path = internal_token.token_path(config)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=re.escape(f"run `chmod 600 {path}`")):
        internal_token.load_or_create(config)


def test_a_symlinked_token_file_is_never_followed(config: Config, tmp_path: Path) -> None:
    elsewhere = tmp_path / "somebody-elses-file"
    elsewhere.write_text("a-token-planted-by-someone-else\n")
    elsewhere.chmod(0o600)
    internal_token.token_path(config).symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="symbolic link"):
        internal_token.load_or_create(config)


def test_a_truncated_token_file_is_a_clear_error(config: Config) -> None:
    path = internal_token.token_path(config)
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        internal_token.load_or_create(config)
