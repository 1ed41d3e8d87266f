"""`python -m anon_ticket` as a process (docs/PROTOCOL.md §6, §7): defaults, lock, signals, sockets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket.core.domain import PaymentId
from tests.support.daemon import REPO_ROOT, DaemonProcess, claim_token, unix_request
from tests.support.fake_wallet import FakeWallet
from tests.support.services import require
from tests.support.waiting import wait_for


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` now. With SO_REUSEADDR, as `socket.create_server` binds:
    connections of earlier tests lingering in TIME_WAIT on the port do not stop a listener, only another
    listener does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under ~100 bytes; pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="at-") as folder:
        yield Path(folder)


def test_no_environment_at_all_starts_on_the_defaults_and_stops_on_sigterm(tmp_path: Path) -> None:
    require(
        "the default ports 8080 and 8081",
        port_is_free(8080) and port_is_free(8081),
        "another process listens on one of them",
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)}
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "anon_ticket"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> bool | None:
            assert process.poll() is None, log_path.read_text()
            try:
                return requests.get("http://127.0.0.1:8081/healthz", timeout=1).status_code == 200 or None
            except requests.RequestException:
                return None

        wait_for("the daemon on its default ports", healthy, 30)
        # No wallet at 127.0.0.1:18082 here: it keeps serving, and says what it cannot know yet.
        info = requests.get("http://127.0.0.1:8080/api/v1/info", timeout=5)
        assert info.status_code == 503 and info.json()["error"] == "unavailable"
        redeem = requests.post("http://127.0.0.1:8080/api/v1/redeem", json={"pid": "ab" * 32}, timeout=5)
        assert redeem.status_code == 404
        assert (tmp_path / "anon_ticket.db").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "internal_api_token").stat().st_mode & 0o777 == 0o600
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text()
    assert "MIN_PAYMENT_AMOUNT is not set" in text
    assert str(tmp_path / "internal_api_token") in text
    assert (tmp_path / "internal_api_token").read_text().strip() not in text


def test_every_bad_variable_is_reported_together_and_the_exit_is_non_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anon_ticket"],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO_ROOT),
            "MONITOR_MIN_CONFIRMATIONS": "zero",
            "API_BIND_ADDRESS": "8080",
            "DATABASE_URL": "mysql://x",
            "MONERO_RPC_PASSWORD": "hunter2hunter2",
            "MONERO_RPC_TIMEOUT_SECS": "-3",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    for name in ("MONITOR_MIN_CONFIRMATIONS", "API_BIND_ADDRESS", "DATABASE_URL", "MONERO_RPC_TIMEOUT_SECS"):
        assert name in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert not (tmp_path / "anon_ticket.db").exists()


def test_a_second_daemon_on_the_same_database_refuses_to_start(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as first:
        second = DaemonProcess(tmp_path, wallet_url=wallet.url, log_path=tmp_path / "second.log")
        second.start(wait=False)
        assert second.wait_exit() == 1
        assert "another anon_ticket daemon" in second.log_text()
        assert first.health() == (200, {"status": "ok"})


def test_claims_survive_a_restart(tmp_path: Path, wallet: FakeWallet) -> None:
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url)
    with daemon:
        claimed = [claim_token(daemon, wallet) for _ in range(3)]
        assert daemon.stop() == 0
        daemon.start()
        for pid, token in claimed:
            body = daemon.redeem(pid).json()
            assert (body["status"], body["token"]) == ("already_claimed", token)
            record = daemon.internal("GET", f"/api/v1/token/{token}").json()
            assert record["status"] == "active"


def test_sigterm_lets_an_in_flight_request_finish_and_exits_0(
    tmp_path: Path, short_dir: Path, wallet: FakeWallet
) -> None:
    # systemd's notify socket tells the test when the daemon has begun to stop (STOPPING=1).
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_dir / "notify"))
    notify.settimeout(20)
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url, env={"NOTIFY_SOCKET": str(short_dir / "notify")})
    with notify, daemon:
        pid, token = claim_token(daemon, wallet)
        body = json.dumps({"pid": pid.hex()}).encode()
        port = int(daemon.public_url.rpartition(":")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(
                b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
            )
            time.sleep(0.5)  # the head has arrived; the I/O thread waits for the rest of the body
            daemon.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            while b"STOPPING=1" not in notify.recv(4096).split(b"\n"):
                pass  # READY=1 came first
            sock.sendall(body[10:])
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and received.endswith(b"}"):
                    break
        assert received.startswith(b"HTTP/1.1 200"), received
        assert token.encode() in received
        assert daemon.wait_exit() == 0
        assert "stopped with exit code 0" in daemon.log_text()


def test_sigterm_during_the_start_waits_for_it_and_stops_cleanly_with_0(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    """SIGTERM while the start is held in its migration step, long before anything serves.

    Another connection holds an exclusive lock on the new, empty database, so the migration waits
    for it (busy timeout). The daemon used to die of the signal there (exit -15, no clean stop); it
    now finishes starting once the lock is free and then stops the ordinary way: exit 0.
    """
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url)
    blocker = sqlite3.connect(tmp_path / "anon_ticket.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        daemon.start(wait=False)
        try:
            wait_for("the start to begin", lambda: "starting with" in daemon.log_text() or None, 60)
            daemon.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.process.wait(1)  # type: ignore[union-attr]  # it used to die right here
            blocker.execute("ROLLBACK")
            assert daemon.wait_exit() == 0, daemon.log_tail()
        finally:
            daemon.kill()
    finally:
        blocker.close()
    assert "stopped with exit code 0" in daemon.log_text()


def test_sighup_does_not_restart_the_process(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        before = daemon.pid
        daemon.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        daemon.wait_for_log("SIGHUP ignored")
        assert daemon.running and daemon.pid == before
        assert daemon.health() == (200, {"status": "ok"})


def test_the_public_api_on_a_unix_socket(short_dir: Path, wallet: FakeWallet) -> None:
    socket_path = short_dir / "public.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(socket_path))  # a socket file left by a crash: nobody listens on it
    leftover.close()
    env = {"API_UNIX_SOCKET": str(socket_path)}
    with DaemonProcess(short_dir, wallet_url=wallet.url, env=env) as daemon:
        mode = socket_path.stat().st_mode
        assert stat.S_ISSOCK(mode) and mode & 0o777 == 0o660
        daemon.wait_scanning()
        status, _, raw = unix_request(socket_path, "GET", "/api/v1/info")
        assert status == 200 and json.loads(raw)["primary_address"] == wallet.address
        pid = PaymentId.generate()
        status, _, raw = unix_request(
            socket_path,
            "POST",
            "/api/v1/redeem",
            body=json.dumps({"pid": pid.hex()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 404 and json.loads(raw)["error"] == "payment_not_found"
        with pytest.raises(requests.ConnectionError):
            requests.get(daemon.public_url + "/api/v1/info", timeout=2)
    assert not socket_path.exists()  # removed on a clean stop


def test_an_unbindable_public_socket_falls_back_to_tcp_with_a_warning(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    env = {"API_UNIX_SOCKET": str(tmp_path / "missing-folder" / "public.sock")}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
        assert "falling back to" in daemon.log_text()
        assert requests.get(daemon.public_url + "/api/v1/nothing", timeout=5).status_code == 404


def test_the_daemon_keeps_serving_while_the_wallet_is_down_and_catches_up(tmp_path: Path) -> None:
    with FakeWallet() as wallet, DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        daemon.wait_scanning()
        wallet.set_down(True)
        pid = PaymentId.generate()
        wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=daemon.min_payment_amount)
        wallet.mine(daemon.confirmations)

        def error_reported() -> bool | None:
            return daemon.status()["wallet"]["last_error"] is not None or None

        wait_for("the wallet error in /api/v1/status", error_reported, 15)
        assert daemon.health() == (200, {"status": "ok"})
        assert daemon.redeem(pid).status_code == 404
        wallet.set_down(False)

        def claimed() -> bool | None:
            return daemon.redeem(pid).status_code == 200 or None

        wait_for("the payment made during the outage", claimed, 30)
        assert "wallet polling restored" in daemon.log_text()


def test_a_database_bound_to_another_wallet_stops_the_daemon_with_a_clear_error(tmp_path: Path) -> None:
    with FakeWallet() as first_wallet:
        daemon = DaemonProcess(tmp_path, wallet_url=first_wallet.url)
        with daemon:
            daemon.wait_scanning()
    with FakeWallet(address=first_wallet.address[:-4] + "AAAA") as other_wallet:
        other = DaemonProcess(tmp_path, wallet_url=other_wallet.url, log_path=tmp_path / "other.log")
        other.start(wait=False)
        assert other.wait_exit() == 1
        text = other.log_text()
        assert "this database belongs to the wallet" in text
        assert "stopped with exit code 1" in text
