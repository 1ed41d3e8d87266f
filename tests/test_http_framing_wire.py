"""Every framing hole of issue 20, from outside: raw bytes on a real socket to the real HTTP engine.

Each case is sent as an anonymous client would, and must be answered at once (never left for the
request deadline, which is 30 s here while a read gives up after 10 s) with the status the contract
gives, then the connection closed; nothing a client sends may put a traceback in the log. The same
request sent whole and in pieces must get the same answer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.config import BindAddress
from anon_ticket.httpd import engine
from anon_ticket.httpd.framing import MAX_LINE_BYTES
from anon_ticket.httpd.listener import Listener
from tests.support.attack import connect, read_answer

READ_SECS = 10.0
POST = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


class EchoApp:
    """Answers 200 with the body it got; `/held` waits until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/held":
            self.entered.set()
            self.release.wait(60)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


@pytest.fixture
def served(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[EchoApp, int]]:
    app = EchoApp()
    listener = Listener("test", BindAddress("127.0.0.1", 0), app, threads=2, request_deadline=30)
    listener.bind()
    listener.serve_in_thread()
    caplog.set_level(logging.INFO)
    try:
        yield app, listener.bound_port or 0
    finally:
        app.release.set()
        listener.stop()
    assert [r.getMessage() for r in caplog.records if r.exc_info is not None] == []  # no traceback


def exchange(port: int, data: bytes, pieces: int = 1) -> tuple[int, dict[str, Any] | bytes, bool]:
    """Send `data` (in `pieces`, a moment apart); (status, JSON error or body, closed after it)."""
    with connect(("127.0.0.1", port), READ_SECS) as sock:
        step = -(-len(data) // pieces)
        try:
            for start in range(0, len(data), step):
                sock.sendall(data[start : start + step])
                if pieces > 1:
                    time.sleep(0.02)
        except OSError:
            pass  # refused before all of it went out: the answer is waiting
        started = time.monotonic()
        status, headers, body = read_answer(sock)
        assert time.monotonic() - started < READ_SECS  # answered at once, not at the deadline
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        answer: dict[str, Any] | bytes = (
            json.loads(body) if headers.get("content-type", "").startswith("application/json") else body
        )
    return status, answer, closed


@pytest.mark.parametrize(
    ("name", "raw", "status"),
    [
        ("trailer flood", CHUNKED + b"0\r\n" + (b"X-T: " + b"v" * 8000 + b"\r\n") * 3, 431),
        ("trailer count", CHUNKED + b"0\r\n" + b"X: v\r\n" * 40 + b"\r\n", 431),
        ("nbsp before chunked", POST + b"Transfer-Encoding: \xa0chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
        ("NEL after chunked", POST + b"Transfer-Encoding: chunked\x85\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
        ("nbsp before length", POST + b"Content-Length: \xa074\r\n\r\n" + b"x" * 74, 400),
        ("space before chunk size", CHUNKED + b" 4a\r\n" + b"x" * 0x4A + b"\r\n0\r\n\r\n", 400),
        ("bare LF in extension", CHUNKED + b"2;\nXX\r\n{}\r\n0\r\n\r\nGET /second HTTP/1.1\r\n\r\n", 400),
        ("control in extension", CHUNKED + b"2;a=\x01\r\n{}\r\n0\r\n\r\n", 400),
        ("extension grammar", CHUNKED + b"2;a=b c\r\n{}\r\n0\r\n\r\n", 400),
        ("4,301-digit length", POST + b"Content-Length: " + b"9" * 4301 + b"\r\n\r\n", 400),
        ("chunk line over its limit", CHUNKED + b"1;e=" + b"x" * 1100 + b"\r\nx\r\n0\r\n\r\n", 400),
        ("tiny chunks, long extensions", CHUNKED + (b"1;" + b"e" * 1000 + b"\r\nx\r\n") * 20, 400),
        ("64 KiB target", b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("bare LF head", b"GET /echo HTTP/1.1\nHost: x\n\n", 400),
        ("bare CR head", b"GET /echo HTTP/1.1\rHost: x\r\n\r\n", 400),
        ("header line over its limit", b"GET /echo HTTP/1.1\r\nX: " + b"v" * 9000 + b"\r\n\r\n", 431),
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
    ],
)
def test_each_hole_is_answered_at_once_and_closed_whole_or_in_pieces(
    served: tuple[EchoApp, int], name: str, raw: bytes, status: int
) -> None:
    _, port = served
    for pieces in (1, 5):
        got, answer, closed = exchange(port, raw, pieces)
        assert (got, closed) == (status, True), (name, pieces, answer)
        assert isinstance(answer, dict) and answer["error"] in ("invalid_request", "payload_too_large"), (
            answer
        )


def test_a_valid_chunked_body_with_extensions_and_trailers_still_arrives(served: tuple[EchoApp, int]) -> None:
    _, port = served
    raw = CHUNKED + b'2;a=b;c="d \\" e"\r\n{}\r\n1 ; x\r\n!\r\n0\r\nX-T: v\r\n\r\n'
    for pieces in (1, 7, len(raw)):
        with connect(("127.0.0.1", port), READ_SECS) as sock:
            for start in range(0, len(raw), -(-len(raw) // pieces)):
                sock.sendall(raw[start : start + -(-len(raw) // pieces)])
            status, _, body = read_answer(sock)
        assert (status, body) == (200, b"{}!")


def test_nothing_is_read_while_a_worker_has_the_request(served: tuple[EchoApp, int]) -> None:
    """A pipelining flood behind a request a worker holds stops at the kernel's socket buffers:
    the server reads nothing more until it has answered (docs/ARCHITECTURE.md "Memory per
    connection"), so what it holds stays within one read and one unfinished line."""
    app, port = served
    kernel = sum(
        int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2]) for name in ("tcp_rmem", "tcp_wmem")
    )
    flood = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
    with connect(("127.0.0.1", port), 2) as sock:
        sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        assert app.entered.wait(READ_SECS)
        sent = 0
        with pytest.raises(TimeoutError):  # the kernel's buffers fill: the server reads no more
            while sent < 1024 * 1024 * 1024:
                sock.sendall(flood)
                sent += len(flood)
        assert sent <= kernel + engine._RECV_BYTES + MAX_LINE_BYTES + len(flood), (sent, kernel)
        app.release.set()
        sock.settimeout(READ_SECS)
        status, _, _body = read_answer(sock)  # the held request is answered, then the flood
        assert status == 200 and read_answer(sock)[0] == 200
