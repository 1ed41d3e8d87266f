"""systemd `Type=notify`: the daemon process against a real Unix datagram socket, and the unit file.

READY=1 only once both listeners answer, WATCHDOG=1 from the supervisor while it serves (only when
WATCHDOG_USEC asks for it), STOPPING=1 on SIGTERM, and the same over an abstract `@` socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket.process.systemd import Notifier
from tests.support.daemon import REPO_ROOT, DaemonProcess
from tests.support.fake_wallet import FakeWallet

UNIT = REPO_ROOT / "conf" / "anon_ticket.service"


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[str] = []

    def receive(self, wanted: str, timeout: float = 30.0) -> list[str]:
        """Read datagrams until one contains the line `wanted`; returns every message read so far."""
        deadline = time.monotonic() + timeout
        while not any(wanted in message.splitlines() for message in self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {wanted} within {timeout}s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under ~100 bytes; pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="at-sd-") as folder:
        yield Path(folder)


def test_ready_watchdog_and_stopping_reach_the_notify_socket(
    tmp_path: Path, short_dir: Path, wallet: FakeWallet
) -> None:
    notify = NotifySocket(str(short_dir / "notify"))
    try:
        daemon = DaemonProcess(
            tmp_path, wallet_url=wallet.url, env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
        )
        daemon.start(wait=False)
        try:
            notify.receive("READY=1")
            # Ready means serving: both listeners answer at the moment systemd is told.
            assert requests.get(daemon.public_url + "/api/v1/info", timeout=5).status_code in (200, 503)
            assert daemon.internal("GET", "/healthz").status_code == 200
            ready = next(m for m in notify.messages if "READY=1" in m.splitlines())
            assert "STATUS=serving on public 127.0.0.1:" in ready
            assert "internal 127.0.0.1:" in ready
            notify.messages.clear()
            notify.receive("WATCHDOG=1")
            notify.messages.clear()
            notify.receive("WATCHDOG=1")  # again: it is sent over and over, not once
            assert daemon.stop() == 0
            notify.receive("STOPPING=1")
        finally:
            daemon.kill()
    finally:
        notify.close()


def test_an_abstract_notify_socket_and_no_watchdog_unless_asked(tmp_path: Path, wallet: FakeWallet) -> None:
    name = f"@anon_ticket-test-{os.getpid()}-{time.monotonic_ns()}"
    notify = NotifySocket(name)
    try:
        with DaemonProcess(tmp_path, wallet_url=wallet.url, env={"NOTIFY_SOCKET": name}) as daemon:
            notify.receive("READY=1")
            # A few supervisor rounds (0.1 s each) pass while the API answers; no watchdog was asked for.
            for _ in range(5):
                assert daemon.internal("GET", "/healthz").status_code == 200
            assert daemon.stop() == 0
        messages = notify.receive("STOPPING=1")
        assert not any("WATCHDOG=1" in m for m in messages)
    finally:
        notify.close()


def test_sigterm_while_the_daemon_is_still_starting_stops_it_cleanly_with_0(
    tmp_path: Path, short_dir: Path, wallet: FakeWallet
) -> None:
    """SIGTERM after the listeners answer but before the bus has finished starting.

    The notify socket's queue is full, so READY=1 (the last start step) blocks until this test reads:
    the daemon is held between "serving" and "started", the window in which a stop request used to
    make CherryPy end the process with os._exit(70) and skip the clean stop. It must stop as asked:
    READY=1, then STOPPING=1, exit code 0, the listeners' sockets gone.
    """
    notify = NotifySocket(str(short_dir / "notify"))
    internal_socket = short_dir / "internal.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.connect(notify.address)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                filler.send(b"FILLER=1")
    try:
        daemon = DaemonProcess(
            tmp_path,
            wallet_url=wallet.url,
            env={"NOTIFY_SOCKET": notify.address, "INTERNAL_UNIX_SOCKET": str(internal_socket)},
        )
        daemon.start()  # /healthz answers: both listeners serve, READY=1 is waiting for room
        try:
            daemon.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            messages = notify.receive("STOPPING=1")
            assert daemon.wait_exit() == 0, daemon.log_tail()
        finally:
            daemon.kill()
        told = [m.splitlines()[0] for m in messages if not m.startswith("FILLER=1")]
        assert told == ["READY=1", "STOPPING=1"]
        assert not internal_socket.exists()  # removed by the listener's clean stop
    finally:
        notify.close()


def test_without_notify_socket_nothing_is_sent_and_a_dead_socket_is_harmless(short_dir: Path) -> None:
    assert not Notifier.from_environ({}).send("READY=1")
    gone = Notifier(str(short_dir / "nobody-listens"), None)
    assert gone.enabled
    assert not gone.send("READY=1")  # logged once, never raised


def test_the_watchdog_is_for_the_process_named_in_watchdog_pid() -> None:
    here = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environ(here).watchdog_interval_secs == 15.0
    other = {**here, "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(other).watchdog_interval_secs is None


def test_the_unit_is_type_notify_with_a_watchdog_and_limits() -> None:
    lines = {line.partition("=")[0]: line.partition("=")[2] for line in UNIT.read_text().splitlines()}
    assert lines["Type"] == "notify"
    assert lines["NotifyAccess"] == "main"
    assert int(lines["WatchdogSec"]) >= 10
    assert int(lines["LimitNOFILE"]) >= 4096
    assert lines["LimitCORE"] == "0"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        # A lint of a text file, not a service the suite depends on: a skip, even under CI=true.
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # The unit names /opt/anon_ticket/.venv/bin/python and the anon_ticket user; verify a copy whose
    # ExecStart points at an executable that exists here, so only the unit's own syntax is judged.
    unit = tmp_path / "anon_ticket.service"
    text = UNIT.read_text().replace("/opt/anon_ticket/.venv/bin/python", "/bin/true")
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # Not about the unit: this machine may have no systemd running or no such user.
        if line.strip() and "anon_ticket" in line
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
