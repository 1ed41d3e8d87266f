"""Fixtures of the client tests: a scripted server (see fakeserver.py) and a port where nothing listens."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .fakeserver import FakeServer, start_server
from .socksproxy import SocksProxy, start_proxy


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake, httpd, thread = start_server()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: the port was bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def socks_proxy(server: FakeServer) -> Iterator[SocksProxy]:
    """A SOCKS5 proxy in front of the scripted server, whatever host name the client asks for."""
    host, port = server.url.removeprefix("http://").split(":")
    proxy, thread = start_proxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
