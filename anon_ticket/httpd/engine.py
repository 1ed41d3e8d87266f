"""The HTTP server of both listeners: one I/O thread reads whole requests, workers only run the app.

Why not cheroot or waitress (measured side by side; figures in scripts/README.md "bench_siege.py"):
cheroot hands each new connection to a worker that then waits for the client, so 32 silent
connections stop the public listener; waitress buffers whole requests on its I/O thread but, at its
connection limit, leaves new connections waiting in the kernel backlog instead of closing the oldest
idle ones, knows no PROXY protocol, no whole-request deadline, and answers framing faults in plain
text. The contract (docs/PROTOCOL.md §4, §8) needs all of those, so the read phase is ours.

How a connection lives:
- WAITING: registered with the selector for reading; its bytes go to a `RequestReader`. It sits in
  `_expiring` with a deadline (`request_deadline` from when it started waiting). Past it, a
  connection that sent part of a request gets 408 JSON and is closed; an idle one is just closed.
- BUSY: a whole request has arrived and a worker runs the application. Only now does it hold a
  thread. The worker sends the answer itself (non-blocking); what the socket does not take at once
  goes back to the I/O thread.
- WRITING: the I/O thread sends the rest of an answer, under the same deadline.
- DRAINING: after an error answer, the write side is shut and what the client still sends is read
  and dropped for a while, so that closing does not reset the answer away (RFC 9112 §9.6).

At the connection cap, and whenever accept() finds no descriptor left, the connection that has been
waiting longest (idle, incomplete, or slow to read its answer) is closed to make room: `_expiring`
is ordered by deadline, which is also age. Workers touch none of the I/O thread's state: they hand
connections back through a queue and a wake-up pipe, and the I/O thread alone accepts, registers,
unregisters and forgets. A worker closes a socket in one case only, when sending on it failed or its
request met a defect: a BUSY socket is in no selector, so that is safe, and the I/O thread, finding
`fileno() < 0` on the handed-back connection, just forgets it.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anon_ticket.httpd import proxy_protocol
from anon_ticket.httpd.client_faults import ClientFaults
from anon_ticket.httpd.framing import (
    HARD_BODY_LIMIT,
    MAX_HEAD_BYTES,
    MAX_LINE_BYTES,
    FramingError,
    Request,
    RequestReader,
)
from anon_ticket.httpd.wsgi_bridge import (
    AppFailed,
    LogStream,
    Peer,
    WsgiCallable,
    body_consumed,
    call_app,
    environ_for,
    error_answer,
    serialize,
)

log = logging.getLogger("anon_ticket.httpd")

WAITING, BUSY, WRITING, DRAINING, CLOSED = "waiting", "busy", "writing", "draining", "closed"
_RECV_BYTES = 65536
_DRAIN_BYTES = 256 * 1024
_ACCEPTS_PER_WAKE = 64
# Waiting connections read once more before one of them is evicted at the cap (see `_evict_oldest`).
_EVICTION_READS = 8
_TICK_SECS = 0.1
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_PAUSE_SECS = 0.5


def connection_memory_bound(body_limit: int = HARD_BODY_LIMIT) -> int:
    """The most bytes one connection's request can make the server hold (docs/ARCHITECTURE.md).

    The read buffer never holds more than one read on top of the one unfinished line the reader
    leaves in it (nothing is read while a worker has the request or its answer is being written);
    the body being assembled and the copy a worker gets; the parsed head, as bytes and as text.
    The answer being written is the application's, not the client's, and is not counted.
    """
    return _RECV_BYTES + MAX_LINE_BYTES + 2 * body_limit + 2 * MAX_HEAD_BYTES


@dataclass(frozen=True, slots=True)
class ServerSettings:
    threads: int = 16
    max_connections: int = 4096
    request_deadline: float = 10.0
    proxy_protocol: bool = False
    max_connections_per_circuit: int = 16
    body_limit: int = HARD_BODY_LIMIT
    shutdown_timeout: float = 5.0
    # The status of every answer the server gives itself (a framing fault, a timeout, a failed app),
    # None for each fault's own. The access gateway's is 401: nginx's auth_request turns anything but
    # 2xx, 401 and 403 into a 500 for the client (docs/PROTOCOL.md §13).
    fault_status: int | None = None


class Connection:
    """One client connection; touched by the I/O thread, and by one worker while BUSY."""

    __slots__ = ("buffer", "close_after", "continued", "drained", "out", "peer", "reader", "sock", "state")

    def __init__(self, sock: socket.socket, peer: Peer, body_limit: int) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.reader = RequestReader(body_limit)
        self.state = WAITING
        self.peer = peer
        self.out = b""
        self.close_after = False
        self.continued = False
        self.drained = 0


class HttpServer:
    """Serves one WSGI app on one listening socket (bound by the caller) until `stop()`."""

    def __init__(
        self,
        name: str,
        listening: socket.socket,
        app: WsgiCallable,
        settings: ServerSettings,
        count: Callable[[str, int], None] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.faults = ClientFaults(name, count)
        self._listening = listening
        self._app = app
        self._errors = LogStream(lambda line: log.warning("%s listener, wsgi.errors: %s", name, line))
        self._selector = selectors.DefaultSelector()
        self._expiring: collections.OrderedDict[Connection, float] = collections.OrderedDict()
        self._open = 0
        self._circuits: dict[int, list[Connection]] = {}
        self._jobs: queue.SimpleQueue[tuple[Connection, Request] | None] = queue.SimpleQueue()
        self._returns: collections.deque[tuple[Connection, bytes, bool]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._stopping = threading.Event()
        self._paused_until = 0.0
        self._workers: list[threading.Thread] = []
        self._loop: threading.Thread | None = None
        family = listening.family
        self._unix = family == socket.AF_UNIX
        if self._unix:
            self._server_name, self._server_port = "localhost", ""
        else:
            host, port = listening.getsockname()[:2]
            self._server_name, self._server_port = str(host), str(port)

    # -- lifecycle (called from the bus thread) ---------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_alive()

    def start(self) -> None:
        self._listening.setblocking(False)
        self._selector.register(self._listening, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
        for i in range(self.settings.threads):
            worker = threading.Thread(target=self._work, name=f"http-{self.name}-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._loop = threading.Thread(target=self._run, name=f"http-{self.name}-io", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        """Stop accepting, close waiting connections, let in-flight requests finish, then return."""
        self._stopping.set()
        self._wake()
        if self._loop is not None:
            self._loop.join(self.settings.shutdown_timeout + 5)
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(5)
        if not any(worker.is_alive() for worker in self._workers):
            # Only now: a worker still running could write its wake-up into a reused descriptor.
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._workers.clear()
        self._selector.close()

    # -- the I/O thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop_until_stopped()
        except Exception:
            log.exception("%s listener: the I/O loop failed", self.name)
        finally:
            self._close_all()

    def _loop_until_stopped(self) -> None:
        select = self._selector.select
        next_sweep = time.monotonic() + _TICK_SECS
        while not self._stopping.is_set():
            for key, mask in select(_TICK_SECS):
                try:
                    self._dispatch(key.data, mask)
                except Exception as exc:  # a defect must cost one connection, never the listener
                    self.faults.defect("the I/O loop failed on an event", exc)
                    if isinstance(key.data, Connection):
                        self._close(key.data)
            if self._returns:
                self._take_returns()
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + _TICK_SECS
                self._sweep(now)
        self._shut_down()

    def _dispatch(self, data: object, mask: int) -> None:
        if data is None:
            self._accept()
        elif data is self._wake_r:
            self._take_returns()
        elif isinstance(data, Connection):
            if mask & selectors.EVENT_WRITE:
                self._on_writable(data)
            else:
                self._on_readable(data)

    def _shut_down(self) -> None:
        """SIGTERM: no new connections, drop idle ones, finish requests in flight (bounded).

        In flight means in a worker, or partly arrived: a request whose bytes are coming in is
        read to its end and answered (with `Connection: close`) if it completes in time. So is
        one that arrived pipelined behind a request a worker was running when the stop came.
        """
        with contextlib.suppress(KeyError):  # not registered while accepting is paused (EMFILE)
            self._selector.unregister(self._listening)
        self._listening.close()
        for conn in list(self._expiring):
            if not (conn.state == WAITING and self._incomplete(conn)):
                self._close(conn)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self._open and time.monotonic() < deadline:
            for key, mask in self._selector.select(_TICK_SECS):
                if key.data is not None:
                    self._dispatch(key.data, mask)

    @staticmethod
    def _incomplete(conn: Connection) -> bool:
        """Part of a request has arrived (not just blank lines or a PROXY line)."""
        return conn.reader.started(conn.buffer)

    def _close_all(self) -> None:
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, Connection):
                self._close(key.data)

    # accepting

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, address = self._listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._out_of_descriptors()
                # ECONNABORTED and the like: the client gave up before we took it.
                return
            if self._open >= self.settings.max_connections and not self._evict_oldest("connection_cap"):
                sock.close()
                self.faults.record("refused_at_cap")
                continue
            self._admit(sock, address)

    def _out_of_descriptors(self) -> None:
        """EMFILE: free one by closing the oldest waiting connection, else pause accepting a moment.

        Either way the listening socket is not polled again in a tight loop, and nothing is logged
        per attempt (the per-minute summary says how often it happened).
        """
        self.faults.record("out_of_descriptors")
        if self._evict_oldest("descriptor_limit"):
            return
        self._selector.unregister(self._listening)
        self._paused_until = time.monotonic() + _PAUSE_SECS

    def _admit(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        if self._unix:
            peer = Peer(self._server_name, self._server_port, "", "")
        else:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = Peer(self._server_name, self._server_port, str(address[0]), str(address[1]))
        conn = Connection(sock, peer, self.settings.body_limit)
        self._open += 1
        self._selector.register(sock, selectors.EVENT_READ, conn)
        self._expiring[conn] = time.monotonic() + self.settings.request_deadline
        # A client usually sends its request right after connecting: read it now, so that a
        # complete request goes to a worker before later accepts can evict it at the cap.
        self._on_readable(conn)

    def _evict_oldest(self, reason: str) -> bool:
        """Close the connection waiting longest — but first read what it may have sent meanwhile.

        A burst of accepts can age a connection that was accepted before its request arrived past
        dozens of newer ones before the selector gets round to reading it; evicting it then would drop
        a complete request unanswered. A candidate whose bytes complete (or start) a request leaves
        the head of `_expiring` and the next one is considered, a few at most per eviction.
        """
        for _ in range(_EVICTION_READS):
            oldest = next(iter(self._expiring), None)
            if oldest is None:
                return False
            if oldest.state != WAITING:
                break
            still_open = self._open
            self._on_readable(oldest)
            if self._open < still_open:
                return True  # it had gone away: its slot is free
            if next(iter(self._expiring), None) is oldest:
                break  # nothing new from it: it is the one to go
        for conn in self._expiring:
            self.faults.record("evicted_" + reason)
            self._close(conn)
            return True
        return False

    # reading

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            if conn.state != DRAINING and self._cut_short(conn):
                # The client is done sending but its request is not: say so (a half-closed socket
                # still reads), rather than leave it guessing why nothing came back.
                self.faults.record("invalid_request")
                self._reject(conn, 400, "invalid_request", "the request ended before it was complete")
                if conn.state == DRAINING:  # the answer went out; nothing more will arrive to drain
                    self._close(conn)
                return
            self._close(conn)
            return
        if conn.state == DRAINING:
            conn.drained += len(data)
            if conn.drained > _DRAIN_BYTES:
                self._close(conn)
            return
        if not conn.reader.in_request(conn.buffer):
            self._expiring.move_to_end(conn)  # a request starts: its deadline runs from now
            self._expiring[conn] = time.monotonic() + self.settings.request_deadline
        conn.buffer += data
        self._process(conn)

    def _process(self, conn: Connection) -> None:
        if self.settings.proxy_protocol and conn.peer.circuit is None and not self._take_proxy_line(conn):
            return
        if not conn.buffer:
            return
        try:
            request = conn.reader.feed(conn.buffer)
        except FramingError as fault:
            self.faults.record(fault.code)
            self._reject(conn, fault.status, fault.code, str(fault))
            return
        if request is None:
            head = conn.reader.head()
            if head is not None and head.expects_continue and not conn.continued:
                conn.continued = True
                self._send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        del self._expiring[conn]
        self._selector.unregister(conn.sock)
        conn.state = BUSY
        conn.continued = False
        self._jobs.put((conn, request))

    def _cut_short(self, conn: Connection) -> bool:
        """Did part of a request (after any PROXY line) arrive before the client stopped sending?"""
        if self.settings.proxy_protocol and conn.peer.circuit is None:
            return False
        return conn.reader.started(conn.buffer)

    def _take_proxy_line(self, conn: Connection) -> bool:
        """Read the PROXY line that must open every connection; False while it is incomplete."""
        try:
            line = proxy_protocol.split_line(conn.buffer)
            if line is None:
                return False
            circuit = proxy_protocol.circuit_id(line)
        except proxy_protocol.ProxyLineError:
            self.faults.record("invalid_proxy_line")
            self._close(conn)
            return False
        conn.peer = Peer(conn.peer.server_name, conn.peer.server_port, "", "", circuit)
        peers = self._circuits.setdefault(circuit, [])
        peers.append(conn)
        if len(peers) > self.settings.max_connections_per_circuit:
            self.faults.record("circuit_cap")
            waiting = next((c for c in peers if c.state != BUSY and c is not conn), None)
            self._close(waiting if waiting is not None else conn)
            return waiting is not None
        return True

    def _reject(self, conn: Connection, status: int, code: str, message: str) -> None:
        """Answer a framing fault or a timeout ourselves, then close (after draining)."""
        conn.close_after = True
        conn.buffer.clear()
        self._write(conn, error_answer("GET", self.settings.fault_status or status, code, message))

    def _send_now(self, conn: Connection, data: bytes) -> None:
        # A lost 100 Continue only makes the client send its body a moment later.
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    # writing

    def _write(self, conn: Connection, data: bytes) -> None:
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        self._written(conn, data[sent:])

    def _written(self, conn: Connection, rest: bytes) -> None:
        """Continue after (part of) an answer has gone out: write more, wait, drain or close."""
        if rest:
            conn.out = rest
            self._watch(conn, WRITING, selectors.EVENT_WRITE)
            return
        conn.out = b""
        if self._stopping.is_set() and (conn.close_after or not self._incomplete(conn)):
            # Stopping: nothing more is read on an idle connection. One whose next request had
            # already arrived behind this answer (pipelined) is served on: it gets its answer, with
            # `Connection: close`, instead of a close that would look like a lost request.
            self._close(conn)
            return
        if conn.close_after:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)
                return
            self._watch(conn, DRAINING, selectors.EVENT_READ)
            return
        self._watch(conn, WAITING, selectors.EVENT_READ)
        if conn.buffer:  # a pipelined request already arrived
            self._process(conn)

    def _watch(self, conn: Connection, state: str, events: int) -> None:
        previous = conn.state
        if previous == state:
            return  # e.g. more of a slow reader's answer went out: its deadline does not move
        conn.state = state
        if previous == BUSY:
            self._selector.register(conn.sock, events, conn)
        else:
            self._selector.modify(conn.sock, events, conn)
        self._expiring.pop(conn, None)
        self._expiring[conn] = time.monotonic() + self.settings.request_deadline

    def _on_writable(self, conn: Connection) -> None:
        self._write(conn, conn.out)

    # handing back from workers

    def _hand_back(self, conn: Connection, rest: bytes, keep_alive: bool) -> None:
        """Called by a worker: the I/O thread takes the connection over again."""
        self._returns.append((conn, rest, keep_alive))
        if not self._woken:
            self._woken = True
            # BlockingIOError: a wake-up is already pending; the loop will look.
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _take_returns(self) -> None:
        # Empty the pipe first, then clear the flag: a worker that still saw it set has already
        # queued its connection, which the loop below takes.
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 4096):
                pass
        self._woken = False
        returns = self._returns
        while returns:
            conn, rest, keep_alive = returns.popleft()
            if conn.sock.fileno() < 0:  # the worker met a dead socket
                self._close(conn)
                continue
            conn.close_after = not keep_alive
            self._written(conn, rest)

    # deadlines

    def _sweep(self, now: float) -> None:
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            self._selector.register(self._listening, selectors.EVENT_READ, None)
        expiring = self._expiring
        while expiring:
            conn, deadline = next(iter(expiring.items()))
            if deadline > now:
                break
            if conn.state == WAITING and self._incomplete(conn):
                self.faults.record("request_timeout")
                conn.close_after = True
                conn.buffer.clear()
                expiring.pop(conn)
                # One attempt, never waited for: the client that was too slow to send may be too
                # slow to read as well.
                with contextlib.suppress(OSError):
                    conn.sock.send(
                        error_answer(
                            "GET",
                            self.settings.fault_status or 408,
                            "request_timeout",
                            "the request did not arrive in time",
                        )
                    )
            self._close(conn)
        self.faults.summarise()

    # closing

    def _close(self, conn: Connection) -> None:
        """Close and forget a connection (idempotent); a BUSY one only once its worker handed it back."""
        if conn.state == CLOSED:
            return
        if conn.state != BUSY:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()
        conn.state = CLOSED
        self._open -= 1
        self._expiring.pop(conn, None)
        circuit = conn.peer.circuit
        if circuit is not None:
            peers = self._circuits.get(circuit)
            if peers is not None and conn in peers:
                peers.remove(conn)
                if not peers:
                    del self._circuits[circuit]

    # -- the workers ------------------------------------------------------------------------------

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            conn, request = job
            try:
                self._serve(conn, request)
            except Exception as exc:  # never lose a worker; the connection is closed
                self.faults.defect("the server failed on a request", exc)
                conn.sock.close()
                self._hand_back(conn, b"", False)

    def _serve(self, conn: Connection, request: Request) -> None:
        environ = environ_for(request, conn.peer, self._errors)
        keep_alive = request.keep_alive and not self._stopping.is_set()
        try:
            status, headers, body = call_app(self._app, environ)
            keep_alive = keep_alive and body_consumed(environ)
            answer = serialize(request.method, status, headers, body, keep_alive)
        except AppFailed as failure:
            self.faults.defect(str(failure), failure.__cause__ or failure)
            keep_alive = False
            answer = error_answer(
                request.method,
                self.settings.fault_status or 503,
                "unavailable",
                "internal error",
                extra_headers=[("Retry-After", "5")],
            )
        try:
            sent = conn.sock.send(answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            conn.sock.close()
            sent = len(answer)
        self._hand_back(conn, answer[sent:], keep_alive)
