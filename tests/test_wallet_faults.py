"""Wallet faults through the real daemon process (docs/PROTOCOL.md §9), against a fault-injecting wallet-rpc.

For each fault: what the buyer sees (redeem answers), what the operator's services see (token records
stay active), `/api/v1/status`, `/healthz`, and statsd on a real UDP socket.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.core.domain import PaymentId
from tests.support.daemon import DaemonProcess, claim_token, pay, redeem_until
from tests.support.fake_wallet import FakeWallet
from tests.support.statsd_sink import StatsdSink
from tests.support.waiting import wait_for

# The contract's bound on a stop whatever the wallet does (docs/PROTOCOL.md §9).
SIGTERM_BOUND_SECS = 10.0


@pytest.fixture
def statsd() -> Iterator[StatsdSink]:
    sink = StatsdSink()
    yield sink
    sink.close()


@pytest.fixture
def wallet() -> Iterator[FakeWallet]:
    with FakeWallet(height=200) as fake:
        yield fake


def start_daemon(tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink, **env: str) -> DaemonProcess:
    settings = {
        "STATSD_PORT": str(statsd.port),
        "STATSD_PREFIX": "shop",
        "MONITOR_RESCAN_DEPTH": "5",
        "MONERO_RPC_TIMEOUT_SECS": "1",
        **env,
    }
    return DaemonProcess(tmp_path, wallet_url=wallet.url, env=settings).start()


def wait_status(daemon: DaemonProcess, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = daemon.status()
        return status if check(status) else None

    return wait_for(what, probe, 20)


def token_status(daemon: DaemonProcess, token: str) -> str:
    response = daemon.internal("GET", f"/api/v1/token/{token}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def assert_buyer_and_services_unharmed(daemon: DaemonProcess, pid: PaymentId, token: str) -> None:
    replay = daemon.redeem(pid)
    assert replay.status_code == 200, replay.text
    assert replay.json()["status"] == "already_claimed" and replay.json()["token"] == token
    assert token_status(daemon, token) == "active"


# -- height regression ----------------------------------------------------------------------------


def test_a_wallet_far_below_the_highest_height_is_a_fault_not_a_reorg(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd) as daemon:
        pid, token = claim_token(daemon, wallet)  # its transfer is in block 200
        wallet.mine(50)
        highest = wallet.height
        before = wait_status(daemon, lambda s: s["scan_cursor"] == highest, "the poll at the top")
        # The wallet is restored and resyncs from far back: it reports a low height and lists
        # nothing above it (what revoked every token before).
        wallet.rewind(150)
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is not None, "the wallet fault")
        assert "wallet fault" in status["wallet"]["last_error"]
        assert f"highest height this database has seen ({highest})" in status["wallet"]["last_error"]
        assert status["wallet"]["height"] == 150
        assert daemon.health() == (200, {"status": "degraded", "reasons": ["wallet_fault"]})
        statsd.wait_for("shop.wallet.up:0|g")
        assert any(line.startswith("shop.wallet.fault:") for line in statsd.lines())
        # Several polls later: still nothing applied, nothing revoked, the cursor where it was.
        calls, listed = wallet.calls["get_height"], wallet.calls["get_transfers"]
        wait_for("more polls", lambda: wallet.calls["get_height"] >= calls + 5 or None, 15)
        assert wallet.calls["get_transfers"] == listed  # a faulted wallet's list is not even asked for
        assert daemon.status()["scan_cursor"] == before["scan_cursor"]
        assert_buyer_and_services_unharmed(daemon, pid, token)
        assert daemon.log_text().count("wallet fault: the wallet's height") == 1  # logged once
        # Resyncing closer, within MONITOR_RESCAN_DEPTH of the highest height: polls apply again.
        wallet.rewind(highest - 3)
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "the fault to end")
        assert daemon.health() == (200, {"status": "ok"})
        assert status["scan_cursor"] == highest  # a poll never moves the cursor down
        daemon.wait_for_log("wallet fault over")
        assert daemon.log_text().count("wallet fault over") == 1
        wallet.rewind(None)
        statsd.clear()
        statsd.wait_for("shop.wallet.up:1|g")
        assert_buyer_and_services_unharmed(daemon, pid, token)
        # And the service goes on: a new payment is seen and claimed.
        claim_token(daemon, wallet)
        assert daemon.status()["tokens"] == {"active": 2, "revoked": 0}


def test_a_resyncing_wallet_within_the_rescan_depth_revokes_nothing_it_has_not_scanned(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd) as daemon:
        daemon.wait_scanning()
        wallet.mine(20)
        pid, token = claim_token(daemon, wallet)  # mined in the top block, 2 confirmations
        top = wallet.height
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the poll at the top")
        # Two blocks below the highest height (a reorg could do that): the transfer's block is not
        # scanned yet, so the wallet does not list it. That says nothing about the payment.
        wallet.rewind(top - 2)
        calls = wallet.calls["get_transfers"]
        wait_for("polls at the lower height", lambda: wallet.calls["get_transfers"] >= calls + 5 or None, 15)
        status = daemon.status()
        assert status["wallet"]["last_error"] is None and status["wallet"]["height"] == top - 2
        assert status["scan_cursor"] == top
        assert token_status(daemon, token) == "active"
        wallet.rewind(None)
        wait_status(daemon, lambda s: s["wallet"]["height"] == top, "the wallet back at the top")
        assert_buyer_and_services_unharmed(daemon, pid, token)


def test_a_wallet_below_the_scan_floor_is_a_fault_until_it_gets_there(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd, MONITOR_START_HEIGHT="230") as daemon:
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is not None, "the fault")
        assert "below the scan floor 230" in status["wallet"]["last_error"]
        assert status["scan_cursor"] == 230
        assert daemon.health() == (200, {"status": "degraded", "reasons": ["wallet_fault"]})
        wallet.mine(35)
        wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "the wallet to reach the floor")
        assert daemon.health() == (200, {"status": "ok"})
        claim_token(daemon, wallet)


# -- answers that never end, or never stop -------------------------------------------------------


def test_a_dripping_wallet_is_stale_and_sigterm_still_stops_the_daemon_in_time(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd, MONITOR_STALE_SECS="2") as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.set_drip(0.3)  # every byte within the timeout, the whole answer never
        status = wait_status(daemon, lambda s: s["wallet"]["stale"], "the wallet to go stale")
        assert "no complete answer within 1 s" in (status["wallet"]["last_error"] or "")
        first_attempt = status["wallet"]["last_poll_at"]
        assert status["wallet"]["last_success_at"] is not None
        assert daemon.health() == (200, {"status": "degraded", "reasons": ["wallet_stale"]})
        statsd.wait_for("shop.wallet.up:0|g")
        statsd.wait_for("shop.wallet.stale:1|g")
        assert_buyer_and_services_unharmed(daemon, pid, token)
        # Polls go on being tried (they are bounded), they do not freeze.
        wait_status(daemon, lambda s: s["wallet"]["last_poll_at"] != first_attempt, "a later attempt")
        stop_within_bound(daemon, wallet, "the dripping wallet")


def test_a_hung_wallet_does_not_hold_sigterm(tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink) -> None:
    # The default timeout (30 s) races systemd's TimeoutStopSec=30 unless the call is abandoned.
    with start_daemon(tmp_path, wallet, statsd, MONERO_RPC_TIMEOUT_SECS="30") as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.set_delay(300)
        stop_within_bound(daemon, wallet, "the hung wallet")
        assert "stopped with exit code 0" in daemon.log_text()
    # Nothing acknowledged was lost: the claim is there after a restart.
    wallet.set_delay(0)
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as again:
        assert_buyer_and_services_unharmed(again, pid, token)


def stop_within_bound(daemon: DaemonProcess, wallet: FakeWallet, what: str) -> None:
    calls = sum(wallet.calls.values())
    wait_for(f"a call to {what}", lambda: sum(wallet.calls.values()) > calls or None, 10)
    assert daemon.process is not None
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    code = daemon.wait_exit(SIGTERM_BOUND_SECS + 5)
    elapsed = time.monotonic() - started
    assert code == 0, daemon.log_tail()
    assert elapsed < SIGTERM_BOUND_SECS, f"SIGTERM took {elapsed:.1f} s with {what}"


def test_a_huge_answer_is_refused_without_being_held(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    env = {"MONERO_RPC_TIMEOUT_SECS": "20", "MONERO_RPC_MAX_RESPONSE_BYTES": str(4 * 1024 * 1024)}
    with start_daemon(tmp_path, wallet, statsd, **env) as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.set_huge_answer(400 * 1024 * 1024)  # no Content-Length: only counting can stop it
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is not None, "the refusal")
        assert "over the 4194304-byte limit" in status["wallet"]["last_error"]
        calls = wallet.calls["get_address"] + wallet.calls["refresh"]
        wait_for(
            "retries", lambda: wallet.calls["get_address"] + wallet.calls["refresh"] > calls + 2 or None, 30
        )
        # The daemon never held anything near the answer's size (peak resident memory).
        peak_kib = peak_rss_kib(daemon.pid)
        assert peak_kib < 250 * 1024, f"peak RSS {peak_kib} KiB"
        assert_buyer_and_services_unharmed(daemon, pid, token)
        statsd.wait_for("shop.wallet.up:0|g")
        wallet.set_huge_answer(None)
        wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "recovery")


def peak_rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def test_garbage_and_a_huge_error_message_are_shown_cut_to_500_characters(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd) as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.fail_next("get_transfers", times=1000, message="E" * 200_000)
        status = wait_status(daemon, lambda s: s["wallet"]["last_error"] is not None, "the error")
        assert len(status["wallet"]["last_error"]) <= 500
        assert status["wallet"]["last_error"].startswith("get_transfers: EEEE")
        assert "E" * 600 not in daemon.log_text()
        assert_buyer_and_services_unharmed(daemon, pid, token)
        wallet.clear_faults()
        wallet.set_garbage(True)
        wait_status(
            daemon, lambda s: "not JSON" in (s["wallet"]["last_error"] or ""), "garbage reported as such"
        )
        assert_buyer_and_services_unharmed(daemon, pid, token)
        wallet.set_garbage(False)
        wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "recovery")
        fresh = PaymentId.generate()
        pay(wallet, fresh, daemon.min_payment_amount, daemon.confirmations)
        assert redeem_until(daemon, fresh, 200).json()["status"] == "claimed"


def test_a_slow_wallet_within_the_timeout_is_served(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd, MONERO_RPC_TIMEOUT_SECS="3") as daemon:
        daemon.wait_scanning()
        wallet.set_delay(0.5)
        pid, _ = claim_token(daemon, wallet)
        status = daemon.status()
        assert status["wallet"]["last_error"] is None and status["wallet"]["stale"] is False
        assert daemon.health() == (200, {"status": "ok"})
        assert daemon.redeem(pid).json()["status"] == "already_claimed"


def test_rescan_after_a_restore_keeps_the_fault_until_the_wallet_is_back_then_rereads(
    tmp_path: Path, wallet: FakeWallet, statsd: StatsdSink
) -> None:
    with start_daemon(tmp_path, wallet, statsd) as daemon:
        pid, token = claim_token(daemon, wallet)
        wallet.mine(50)
        top = wallet.height
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the poll at the top")
        wallet.rewind(120)  # restored with an old restore height, resyncing
        wait_status(daemon, lambda s: s["wallet"]["last_error"] is not None, "the wallet fault")
        rescan = daemon.command("rescan", "--from", "190")
        assert rescan.returncode == 0, rescan.stderr
        # The operator's rescan moves the cursor, not the highest height: still a fault, nothing read.
        listed = wallet.calls["get_transfers"]
        calls = wallet.calls["get_height"]
        wait_for("more polls", lambda: wallet.calls["get_height"] >= calls + 3 or None, 15)
        status = daemon.status()
        assert status["scan_cursor"] == 190 and "wallet fault" in (status["wallet"]["last_error"] or "")
        assert wallet.calls["get_transfers"] == listed
        assert_buyer_and_services_unharmed(daemon, pid, token)
        wallet.rewind(None)  # caught up: the next poll reads everything again from the rescan height
        wait_status(daemon, lambda s: s["wallet"]["last_error"] is None, "the fault to end")
        assert min(p["min_height"] for p in wallet.params_of("get_transfers")[listed:]) == 189
        wait_status(daemon, lambda s: s["scan_cursor"] == top, "the cursor back at the top")
        assert_buyer_and_services_unharmed(daemon, pid, token)
