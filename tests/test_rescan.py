"""`rescan` and `POST /api/v1/rescan` (docs/PROTOCOL.md §5, §7; docs/OPERATIONS.md §11, §13), end to end.

The command runs as a real process against a real daemon process (or none), polling a fake
wallet-rpc: while a daemon holds the database the rescan goes through its internal API and its
storage writer; with none, the command writes itself, holding the daemon lock; with the lock held
and nobody answering, nothing is written at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.config import DatabaseUrl, Secret
from anon_ticket.core.domain import PaymentId
from anon_ticket.storage.database import Database
from tests.support.daemon import (
    REPO_ROOT,
    DaemonProcess,
    claim_token,
    free_ports,
    pay,
    redeem_until,
)
from tests.support.fake_wallet import FakeWallet
from tests.support.waiting import wait_for

TOKEN = "rescan-test-internal-token-0123456789"


@pytest.fixture
def wallet() -> Iterator[FakeWallet]:
    with FakeWallet(height=200) as fake:
        yield fake


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The daemon's DATABASE_URL for each backend (a fresh PostgreSQL schema each time)."""
    if request.param == "sqlite":
        return {}
    from tests.support.postgres import fresh_schema_url  # noqa: PLC0415

    return {"DATABASE_URL": fresh_schema_url(request.config), "INTERNAL_API_TOKEN": TOKEN}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short folder: a Unix socket path must fit in 108 bytes, which pytest's tmp_path may not."""
    folder = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_rescan(
    workdir: Path, env: dict[str, str], *args: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anon_ticket", "rescan", *args],
        cwd=workdir,
        env={**env, **overrides},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_status(daemon: DaemonProcess, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = daemon.status()
        return status if check(status) else None

    return wait_for(what, probe, 30)


def first_window_after(wallet: FakeWallet, calls: int, min_height: int) -> None:
    """A `get_transfers` made after the first `calls` asks from `min_height` (exclusive)."""
    wait_for(
        f"a poll from min_height {min_height}",
        lambda: (
            True
            if any(p["min_height"] == min_height for p in wallet.params_of("get_transfers")[calls:])
            else None
        ),
        30,
    )


def assert_one_claim_unchanged(daemon: DaemonProcess, pid: PaymentId, token: str) -> None:
    """Nothing counted twice, nothing revoked: the claim, its amount and the totals as they were."""
    replay = daemon.redeem(pid).json()
    assert (replay["status"], replay["token"]) == ("already_claimed", token)
    record = daemon.internal("GET", f"/api/v1/token/{token}").json()
    assert (record["status"], record["amount"]) == ("active", daemon.min_payment_amount)
    status = daemon.status()
    assert status["tokens"] == {"active": 1, "revoked": 0}
    assert status["payments"]["claimed"] == 1


# -- through the daemon, or directly -------------------------------------------------------------


def test_rescan_goes_through_a_running_daemon_and_writes_directly_without_one(
    tmp_path: Path, wallet: FakeWallet, backend: dict[str, str]
) -> None:
    # A shallow rescan depth, so the poll's window starts exactly where the cursor is.
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url, env={**backend, "MONITOR_RESCAN_DEPTH": "5"})
    with daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.mine(20)
        top = wallet.height
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the poll at the top")
        calls = len(wallet.params_of("get_transfers"))
        result = run_rescan(tmp_path, daemon.env, "--from", "190")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "scan cursor moved to 190 (floor 190)"
        assert f"asking it at {daemon.internal_url}" in result.stderr
        # The daemon's own writer made it, and its poller's next batch starts there.
        daemon.wait_for_log(f"operator rescan: scan cursor moved from {top} to 190 (floor 190)")
        first_window_after(wallet, calls, 189)
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the cursor back at the top")
        assert_one_claim_unchanged(daemon, pid, token)
        # A height ahead of the cursor is refused by the daemon, as the command always refused it.
        ahead = run_rescan(tmp_path, daemon.env, "--from", str(top + 1))
        assert ahead.returncode == 2
        assert "rescan_refused" in ahead.stderr and "ahead of the scan cursor" in ahead.stderr
        assert daemon.status()["scan_cursor"] == top
    # No daemon: the command takes the lock and writes itself; the daemon then starts from there.
    result = run_rescan(tmp_path, daemon.env, "--from", "195")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scan cursor moved to 195 (floor 190)"
    assert "asking" not in result.stderr
    calls = len(wallet.params_of("get_transfers"))
    with daemon:
        first_window_after(wallet, calls, 194)
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the cursor back at the top")
        assert_one_claim_unchanged(daemon, pid, token)
    assert daemon.log_text().count("operator rescan:") == 1  # the direct write did not go through it


def test_rescan_over_the_internal_unix_socket_and_a_wrong_token_writes_nothing(
    short_dir: Path, wallet: FakeWallet
) -> None:
    env = {"INTERNAL_UNIX_SOCKET": str(short_dir / "internal.sock"), "INTERNAL_API_TOKEN": TOKEN}
    with DaemonProcess(short_dir / "d", wallet_url=wallet.url, env=env) as daemon:
        claim_token(daemon, wallet)
        cursor = daemon.status()["scan_cursor"]
        wrong = run_rescan(daemon.workdir, daemon.env, "--from", "150", INTERNAL_API_TOKEN="wrong-" + TOKEN)
        assert wrong.returncode == 4, wrong.stderr
        assert "unauthorized" in wrong.stderr and "HTTP 401" in wrong.stderr
        assert "nothing was written" in wrong.stderr
        assert f"unix:{short_dir / 'internal.sock'}" in wrong.stderr
        assert daemon.status()["scan_cursor"] == cursor
        assert "operator rescan" not in daemon.log_text()
        right = run_rescan(daemon.workdir, daemon.env, "--from", "150")
        assert right.returncode == 0, right.stderr
        assert right.stdout.strip() == "scan cursor moved to 150 (floor 150)"
        daemon.wait_for_log("operator rescan: scan cursor moved from")


def test_rescan_uses_the_token_file_the_daemon_generated(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:  # no INTERNAL_API_TOKEN
        daemon.wait_scanning()
        assert daemon.token_file.exists()
        result = run_rescan(tmp_path, daemon.env, "--from", "100")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "scan cursor moved to 100 (floor 100)"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_lock_held_by_a_daemon_that_does_not_answer_means_nothing_is_written(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    if kind == "sqlite":
        url = "sqlite:///anon_ticket.db"
        database = Database(DatabaseUrl("sqlite", tmp_path / "anon_ticket.db", None))
    else:
        from tests.support.postgres import fresh_schema_url  # noqa: PLC0415

        url = fresh_schema_url(request.config)
        database = Database(DatabaseUrl("postgresql", None, Secret(url)))
    database.migrate()
    writer = database.open_writer()
    writer.start_scan(300)
    writer.close()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": url,
        "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{free_ports(1)[0]}",  # nobody listens there
        "INTERNAL_API_TOKEN": TOKEN,
    }
    lock = database.daemon_lock()  # a daemon starting, stopping or hung: it holds the lock
    lock.acquire()
    try:
        result = run_rescan(tmp_path, env, "--from", "200", "--timeout", "5")
        assert result.returncode == 5, result.stderr
        assert "cannot reach the internal API" in result.stderr and "nothing was written" in result.stderr
        reader = database.open_reader()
        assert reader.monitor_state().scan_cursor == 300  # never a direct write beside a daemon
        reader.close()
    finally:
        lock.release()
    result = run_rescan(tmp_path, env, "--from", "200")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scan cursor moved to 200 (floor 200)"
    database.close()


# -- the endpoint ----------------------------------------------------------------------------------


def test_the_endpoint_refuses_what_it_must_and_writes_nothing_then(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        claim_token(daemon, wallet)
        before = daemon.status()["scan_cursor"]
        assert before > 150

        def post(body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
            response = daemon.internal("POST", "/api/v1/rescan", data=data, headers=headers, **kwargs)
            return response.status_code, response.json()

        status, body = post({"from": 150}, auth=False)
        assert (status, body["error"]) == (401, "unauthorized")
        status, body = post({"from": 150}, headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert (status, body["error"]) == (401, "unauthorized")
        for bad in (
            b"",
            b"[150]",
            b'{"from": 150,}',
            {},
            {"from": -1},
            {"from": 1.5},
            {"from": 1e3},
            {"from": True},
            {"from": "150"},
            {"from": None},
            {"from": 2**31},
            {"from": 150, "reset_highest": -5},
            {"from": 150, "reset_higest": 160},  # a typo must not do a plain rescan
            {"reset_highest": 160},
        ):
            status, body = post(bad)
            assert (status, body["error"]) == (400, "invalid_request"), (bad, body)
        for refused, why in (
            ({"from": before + 1}, "ahead of the scan cursor"),
            ({"from": 150, "reset_highest": 10**6}, "above the highest height seen"),
            ({"from": 150, "reset_highest": 149}, "below --from 150"),
        ):
            status, body = post(refused)
            assert (status, body["error"]) == (400, "rescan_refused"), (refused, body)
            assert why in body["message"]
        response = daemon.internal(
            "POST", "/api/v1/rescan", data=b"from=150", headers={"Content-Type": "text/plain"}
        )
        assert response.status_code == 415
        assert daemon.internal("GET", "/api/v1/rescan").status_code == 405
        assert daemon.status()["scan_cursor"] == before  # nothing above was written
        assert "operator rescan" not in daemon.log_text()
        # A refusal is an answer, not a failure: no traceback (pykka logs any exception an ask
        # hands back; the writer returns its refusals as values, actors/refusal.py).
        assert "Traceback" not in daemon.log_text() and "Exception returned" not in daemon.log_text()
        status, body = post({"from": 150, "reset_highest": None})  # null: no reset
        assert status == 200 and body["scan_cursor"] == 150 and body["highest_height"] >= before
        daemon.wait_for_log("operator rescan: scan cursor moved from")
        assert "highest wallet height lowered" not in daemon.log_text()


# -- the way out of a wallet fault left by a wrong height ----------------------------------------


def test_reset_highest_ends_a_wallet_fault_left_by_a_wildly_wrong_height(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env={"MONITOR_RESCAN_DEPTH": "5"}) as daemon:
        pid, token = claim_token(daemon, wallet)
        real = wallet.height
        # The wallet once reports a height 1,000 blocks above the real chain, and is applied...
        wallet.mine(1000)
        wrong = wallet.height
        wait_status(daemon, lambda s: s["scan_cursor"] == wrong, "the wrong height applied")
        # ...then reports the real chain again: far below the highest height seen, a fault for ever.
        wallet.rewind(real)
        wait_status(daemon, lambda s: "wallet fault" in (s["wallet"]["last_error"] or ""), "the fault")
        assert daemon.health() == (200, {"status": "degraded", "reasons": ["wallet_fault"]})
        # A plain rescan keeps the highest height: still a fault.
        plain = run_rescan(tmp_path, daemon.env, "--from", str(real - 10))
        assert plain.returncode == 0, plain.stderr
        calls = wallet.calls["get_height"]
        wait_for("more polls", lambda: wallet.calls["get_height"] >= calls + 3 or None, 30)
        assert "wallet fault" in (daemon.status()["wallet"]["last_error"] or "")
        # The operator states the real chain height: the fault ends and polls are applied again.
        reset = run_rescan(tmp_path, daemon.env, "--from", str(real - 10), "--reset-highest", str(real))
        assert reset.returncode == 0, reset.stderr
        assert reset.stdout.strip() == (
            f"scan cursor moved to {real - 10} (floor {real - 10}); highest wallet height now {real}"
        )
        daemon.wait_for_log(f"operator rescan: highest wallet height lowered from {wrong} to {real}")
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "the fault to end")
        assert status["wallet"]["height"] == real
        wait_status(daemon, lambda s: s["scan_cursor"] == real, "the cursor at the real height")
        assert daemon.health() == (200, {"status": "ok"})
        daemon.wait_for_log("wallet fault over")
        assert_one_claim_unchanged(daemon, pid, token)
        # New payments are seen again (a pool transfer: the wallet lists those at once).
        newcomer = PaymentId.generate()
        pay(wallet, newcomer, daemon.min_payment_amount, 0)
        assert redeem_until(daemon, newcomer, 202).json()["status"] == "pending"


def test_a_rescan_during_a_poll_drops_that_batch_and_is_no_wallet_failure(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    env = {"MONITOR_RESCAN_DEPTH": "5", "MONERO_RPC_TIMEOUT_SECS": "10"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.mine(10)
        top = wallet.height
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the poll at the top")
        wallet.set_delay(2.0, "get_transfers")  # holds the next poll between its read and its batch
        calls = wallet.calls["get_transfers"]
        wait_for("a poll under way", lambda: wallet.calls["get_transfers"] > calls or None, 30)
        response = daemon.internal("POST", "/api/v1/rescan", json={"from": 195})
        assert response.status_code == 200, response.text
        daemon.wait_for_log("the scan cursor was moved by a rescan during a poll", timeout=30)
        wallet.set_delay(0, "get_transfers")
        status = wait_status(daemon, lambda s: s["scan_cursor"] == top, "the cursor back at the top")
        assert status["wallet"]["last_error"] is None
        assert "wallet poll failed" not in daemon.log_text()
        assert "Traceback" not in daemon.log_text()  # the dropped batch crossed as a value
        assert_one_claim_unchanged(daemon, pid, token)


def test_the_command_refuses_bad_values_before_touching_anything(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": "sqlite:///at.db"}
    for args, why in (
        (["--from", "-1"], "--from must be from 0 to 2147483647"),
        (["--from", str(2**31)], "--from must be from 0 to 2147483647"),
        (["--from", "5", "--reset-highest", "-1"], "--reset-highest must be from 0"),
        (["--from", "5", "--timeout", "0"], "--timeout must be more than 0"),
    ):
        result = run_rescan(tmp_path, env, *args)
        assert (result.returncode, result.stdout) == (2, ""), result
        assert why in result.stderr
    assert not (tmp_path / "at.db").exists()
    # Directly (no daemon), the store's rules answer as the daemon's would.
    assert run_rescan(tmp_path, env, "--from", "500").returncode == 0
    refused = run_rescan(tmp_path, env, "--from", "400", "--reset-highest", "450")
    assert refused.returncode == 2 and "no wallet height has been recorded yet" in refused.stderr
    ahead = run_rescan(tmp_path, env, "--from", "501")
    assert ahead.returncode == 2 and "ahead of the scan cursor (500)" in ahead.stderr
