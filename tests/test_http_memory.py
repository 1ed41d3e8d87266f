"""Memory under framing floods: what one connection can make the daemon hold is bounded (issue 20).

A real daemon process; each flood is pushed from this process as fast as loopback takes it, on one
connection and on many at once, and the daemon's resident memory (VmRSS from /proc) is sampled all
along. The bound is derived from the limits: `connection_memory_bound()` per connection pushing at
the same time, plus a fixed allowance for the interpreter's own growth (allocator arenas, a thread's
first stack pages) that does not depend on what a client sends. Before the fix the trailer flood
took a daemon from 42 MiB to 1.4 GiB in 10 s on one connection.

Each flood ends after a number of bytes, not a time: `FLOOD_BYTES` per connection, or when the
daemon has stopped taking them (it refused the request and closed, or stopped reading while the
answers to pipelined requests go unread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.httpd.engine import connection_memory_bound
from tests.support.attack import connect
from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet

MIB = 1024 * 1024
FLOOD_BYTES = 48 * MIB  # pushed per connection (refused connections are reopened until then)
MANY = 24  # connections flooding at once
INTERPRETER_ALLOWANCE = 24 * MIB  # growth that is the interpreter's, whatever the clients send
STALL_SECS = 10.0  # a send that makes no progress this long: the daemon stopped reading

_CHUNKED_HEAD = (
    b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
FLOODS = {
    # the attack: a last chunk, then trailer lines for ever
    "trailers": (_CHUNKED_HEAD + b"0\r\n", b"X-T: " + b"v" * 8000 + b"\r\n"),
    # one-byte chunks, each with a long extension: tiny bodies, huge framing
    "chunk_extensions": (_CHUNKED_HEAD, b"1;ext=" + b"e" * 1000 + b"\r\nx\r\n"),
    # header lines for ever
    "headers": (b"GET /api/v1/info HTTP/1.1\r\n", b"X-H: " + b"h" * 4000 + b"\r\n"),
    # whole requests, pipelined, whose answers are never read
    "pipelining": (b"", b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\n\r\n" * 64),
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with FakeWallet(height=200) as wallet:
        folder = tmp_path_factory.mktemp("memory")
        env = {"HTTP_REQUEST_DEADLINE_SECS": "30", "INTERNAL_API_TOKEN": "memory-internal-token-0123456789"}
        with DaemonProcess(folder, wallet_url=wallet.url, env=env) as running:
            running.wait_scanning()
            yield running


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples a process's RSS in a thread until stopped; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def flood(address: tuple[str, int], opening: bytes, repeat: bytes, total: int) -> int:
    """Push `opening` then `repeat` for ever on a connection, reopening it when the daemon closes
    it, until `total` bytes went out or the daemon stops reading; returns how many connections the
    daemon refused (answered 4xx, or closed)."""
    sent, refused = 0, 0
    block = repeat * max(1, 65536 // len(repeat))
    while sent < total:
        sock = connect(address, STALL_SECS)
        try:
            sock.sendall(opening)
            sent += len(opening)
            while sent < total:
                sock.sendall(block)
                sent += len(block)
            # All of it fitted in the kernel's buffers before the daemon got to it: its answer.
            answer = sock.recv(12)
            refused += answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5"))
        except TimeoutError:
            return refused  # the daemon stopped reading: nothing more can reach it
        except OSError:
            refused += 1  # reset or closed: the daemon refused the request
        finally:
            sock.close()
    return refused


def address(daemon: DaemonProcess) -> tuple[str, int]:
    host, _, port = daemon.public_url.removeprefix("http://").rpartition(":")
    return host, int(port)


def warm_up(daemon: DaemonProcess) -> None:
    """One pass of every flood on a few connections, so the allocator's first growth is not counted."""
    for opening, repeat in FLOODS.values():
        flood(address(daemon), opening, repeat, 256 * 1024)


@pytest.mark.parametrize("kind", sorted(FLOODS))
@pytest.mark.parametrize("connections", [1, MANY])
def test_a_flood_leaves_the_daemon_within_the_stated_memory_bound(
    daemon: DaemonProcess, kind: str, connections: int
) -> None:
    warm_up(daemon)
    opening, repeat = FLOODS[kind]
    before = rss_bytes(daemon.pid)
    refused: list[int] = []
    per_connection = FLOOD_BYTES // connections if connections > 1 else FLOOD_BYTES
    with PeakRss(daemon.pid) as rss:
        threads = [
            threading.Thread(
                target=lambda: refused.append(flood(address(daemon), opening, repeat, per_connection))
            )
            for _ in range(connections)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    bound = connections * connection_memory_bound() + INTERPRETER_ALLOWANCE
    growth = rss.peak - before
    figures = f"{kind} x{connections}: {before / MIB:.1f} MiB +{growth / MIB:.1f}, bound {bound / MIB:.1f}"
    print(figures)
    assert growth <= bound, figures
    if kind != "pipelining":
        assert sum(refused) >= 1  # the daemon refused the flood rather than waiting for its end
    assert daemon.running
    status = daemon.public("GET", "/api/v1/info").status_code
    assert status in (200, 503)  # still serving
