"""The HTTP engine in-process, where a test must act at a precise moment of a connection's life.

A WSGI application that waits for the test holds a request inside a worker, so what the server does
with the rest of the connection meanwhile (a stop, pipelined requests behind it) is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from anon_ticket.config import BindAddress
from anon_ticket.httpd.listener import Listener
from tests.support.attack import connect, read_answer
from tests.support.waiting import wait_for

WAIT_SECS = 30


class HeldApp:
    """Answers 200 with the path; `/held` waits until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/held":
            self.entered.set()
            self.release.wait(WAIT_SECS)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [path.encode()]


@pytest.fixture
def held() -> Iterator[tuple[HeldApp, Listener]]:
    app = HeldApp()
    listener = Listener("test", BindAddress("127.0.0.1", 0), app, threads=2, request_deadline=WAIT_SECS)
    listener.bind()
    listener.serve_in_thread()
    try:
        yield app, listener
    finally:
        app.release.set()
        if listener.serving:
            listener.stop()


def test_pipelined_requests_that_arrived_before_a_stop_are_answered_then_the_connection_closes(
    held: tuple[HeldApp, Listener],
) -> None:
    app, listener = held
    port = listener.bound_port
    assert port is not None
    with connect(("127.0.0.1", port), WAIT_SECS) as sock:
        sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        assert app.entered.wait(WAIT_SECS)
        stopper = threading.Thread(target=listener.stop)
        stopper.start()

        def refused() -> bool | None:
            try:
                connect(("127.0.0.1", port), 2).close()
            except ConnectionError:  # refused, or reset when the listening socket closed on it
                return True
            return None

        wait_for("the listener to stop accepting", refused, WAIT_SECS)
        app.release.set()
        first = read_answer(sock)
        second = read_answer(sock)
        assert sock.recv(1) == b""  # it said close: the third request is not served
        stopper.join(WAIT_SECS)
    assert (first[0], first[2]) == (200, b"/held")
    assert (second[0], second[2], second[1].get("connection")) == (200, b"/next", "close")
