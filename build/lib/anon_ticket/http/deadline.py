"""A whole-request deadline for cheroot: a client that drips bytes cannot hold a worker for long.

cheroot's `timeout` bounds each socket read, so a client sending one byte every few seconds keeps a
worker thread forever; a few dozen such clients (cheap over Tor) would take every thread. Here each
request gets a deadline when a worker starts on it, and every read of that request (line, headers,
body) may only wait for what is left of it. Past it the read times out like any other, and cheroot
answers 408 and closes the connection.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import cheroot.server
from cheroot.makefile import MakeFile, StreamReader


class _DeadlineSocket:
    """The connection's socket, as its reader sees it: reads are bounded by the request deadline."""

    def __init__(self, sock: socket.socket, per_read_timeout: float) -> None:
        self._sock = sock
        self._per_read_timeout = per_read_timeout
        self.deadline: float | None = None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")  # the text cheroot recognises as a timeout
            self._sock.settimeout(min(self._per_read_timeout, remaining))
        return self._sock.recv_into(buffer, nbytes, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineConnection(cheroot.server.HTTPConnection):
    """cheroot's connection with a deadline per request (`server.request_deadline`, seconds)."""

    def __init__(self, server: Any, sock: socket.socket, makefile: Any = MakeFile) -> None:
        super().__init__(server, sock, makefile)
        self._deadline_socket = _DeadlineSocket(sock, float(server.timeout))
        plain_reader = self.rfile
        self.rfile = StreamReader(self._deadline_socket, "rb", self.rbufsize)
        plain_reader.detach()  # the socket stays open: only the unused reader goes

    def communicate(self) -> Any:
        self._deadline_socket.deadline = time.monotonic() + self.server.request_deadline
        try:
            return super().communicate()  # type: ignore[no-untyped-call]  # cheroot's stub lacks types
        finally:
            self._deadline_socket.deadline = None
