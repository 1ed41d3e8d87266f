"""Hostile clients for the siege tests and `scripts/bench_siege.py` (docs/PROTOCOL.md §8).

`Attack` holds `connections` sockets open against a listener from one thread, each behaving as one
kind of attacker, and reconnects each one the server closes, so the pressure never lets up:

- `idle`: connects and sends nothing.
- `drip`: sends a valid request one byte per `drip_interval` seconds (slowloris).
- `stalled`: sends a whole head announcing a 200-byte body, 10 bytes of it, then nothing.
- `chunked_garbage`: a chunked POST whose size line is not hex, over and over.
- `proxy_garbage`: a PROXY line that is not one (`PROXY TCP4 …` or plain junk), over and over.

It counts what the server does: connections opened, closed by the server, and the status line of
every answer, so tests can assert the contract's answers (408, 400) rather than timings.
`honest_redeem` is the buyer: one request on a fresh connection, optionally after a PROXY line.
"""

from __future__ import annotations

import collections
import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.waiting import wait_for

Address = tuple[str, int] | Path

KINDS = ("idle", "drip", "stalled", "chunked_garbage", "proxy_garbage")
_PID_BODY = json.dumps({"pid": "ab" * 32}).encode()
_REQUEST = (
    b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_PID_BODY), _PID_BODY)
)
_STALLED = (
    b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 200\r\n\r\n" + b'{"pid": "a'
)
_CHUNKED_GARBAGE = (
    b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
)
_PROXY_GARBAGE = (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"HELLO PROXY\r\n\r\n", b"PROXY TCP6 nonsense\r\n")


def proxy_line(circuit: int) -> bytes:
    """The line tor sends with `HiddenServiceExportCircuitID haproxy` for a stream on `circuit`."""
    return b"PROXY TCP6 fc00:dead:beef:4dad::%x:%x ::1 65535 42\r\n" % (circuit >> 16, circuit & 0xFFFF)


def connect(address: Address, timeout: float) -> socket.socket:
    if isinstance(address, Path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(address))
        except BaseException:
            sock.close()
            raise
        return sock
    return socket.create_connection(address, timeout=timeout)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer: (status, lower-cased headers, body by Content-Length).

    Reads exactly the bytes of this one answer and leaves the rest in the socket: answers to
    pipelined requests often arrive in one segment, and whatever a greedy read took past this
    answer would be lost to the next call, which would then wait for an answer already received.
    """
    head = b""
    while True:
        peeked = sock.recv(65536, socket.MSG_PEEK)
        if not peeked:
            raise ConnectionError(f"closed before an answer ({head[:40]!r})")
        end = (head + peeked).find(b"\r\n\r\n")
        head += _receive_exactly(sock, len(peeked) if end < 0 else end + 4 - len(head))
        if end >= 0:
            break
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = _receive_exactly(sock, int(headers.get("content-length", "0")))
    return status, headers, body


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed in the middle of an answer")
        data += chunk
    return data


def honest_redeem(
    address: Address, pid_hex: str, *, proxy: bytes = b"", timeout: float = 10.0, path: str = "/api/v1/redeem"
) -> tuple[int, dict[str, object]]:
    """A buyer's redeem on a fresh connection: (status, JSON body)."""
    body = json.dumps({"pid": pid_hex}).encode()
    request = (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (path.encode(), len(body), body)
    )
    with connect(address, timeout) as sock:
        sock.sendall(proxy + request)
        status, _, raw = read_answer(sock)
    return status, json.loads(raw)


@dataclass
class _Conn:
    sock: socket.socket
    payload: bytes
    sent: int = 0
    answer: bytes = b""


@dataclass
class AttackStats:
    opened: int = 0
    closed_by_server: int = 0
    connect_failures: int = 0
    answers: collections.Counter[int] = field(default_factory=collections.Counter)


class Attack:
    """`connections` hostile sockets of one kind, reconnected as the server closes them."""

    def __init__(
        self,
        address: Address,
        kind: str,
        connections: int,
        *,
        drip_interval: float = 1.0,
        proxy: Callable[[int], bytes] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown attack {kind!r}")
        self.address = address
        self.kind = kind
        self.connections = connections
        self.drip_interval = drip_interval
        self.proxy = proxy
        self.stats = AttackStats()
        self._open: dict[socket.socket, _Conn] = {}
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made = 0

    def __enter__(self) -> Attack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def open_now(self) -> int:
        return len(self._open)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"attack-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        for conn in list(self._open.values()):
            self._drop(conn)
        self._selector.close()

    def wait_open(self, count: int | None = None, timeout: float = 30.0) -> None:
        """Until `count` (default: all) connections have been opened at least once."""
        wanted = self.connections if count is None else count
        wait_for(f"{wanted} attack connections opened", lambda: self.stats.opened >= wanted, timeout)

    # -- the attacker's thread --------------------------------------------------------------------

    def _payload(self) -> bytes:
        self._made += 1
        prefix = self.proxy(self._made) if self.proxy is not None else b""
        if self.kind == "idle":
            return prefix
        if self.kind == "drip":
            return prefix + _REQUEST
        if self.kind == "stalled":
            return prefix + _STALLED
        if self.kind == "chunked_garbage":
            return prefix + _CHUNKED_GARBAGE
        return _PROXY_GARBAGE[self._made % len(_PROXY_GARBAGE)]

    def _run(self) -> None:
        next_drip = time.monotonic()
        while not self._stop.is_set():
            self._fill()
            for key, _ in self._selector.select(0.05):
                self._readable(key.data)
            now = time.monotonic()
            if self.kind == "drip" and now >= next_drip:
                next_drip = now + self.drip_interval
                for conn in list(self._open.values()):
                    self._send(conn, 1)

    def _fill(self) -> None:
        budget = 200  # connects per turn, so answers are read in between
        while len(self._open) < self.connections and budget and not self._stop.is_set():
            budget -= 1
            try:
                sock = connect(self.address, 5.0)
            except OSError:
                self.stats.connect_failures += 1
                time.sleep(0.01)
                return
            sock.setblocking(False)
            conn = _Conn(sock, self._payload())
            self._open[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            self.stats.opened += 1
            if self.kind == "drip":
                prefix = len(conn.payload) - len(_REQUEST)
                self._send(conn, prefix + 1)  # the PROXY line at once, then the request a byte at a time
            else:
                self._send(conn, len(conn.payload))

    def _send(self, conn: _Conn, count: int) -> None:
        if conn.sent >= len(conn.payload):
            return
        try:
            conn.sent += conn.sock.send(conn.payload[conn.sent : conn.sent + count])
        except BlockingIOError:
            pass
        except OSError:
            self._closed(conn)

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if not conn.answer:
                with contextlib.suppress(ValueError, IndexError):
                    self.stats.answers[int(data.split(b" ", 2)[1])] += 1
            conn.answer += data[:64]
            return
        self._closed(conn)

    def _closed(self, conn: _Conn) -> None:
        self.stats.closed_by_server += 1
        self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        if self._open.pop(conn.sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()
