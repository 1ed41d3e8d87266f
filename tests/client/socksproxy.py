"""A minimal SOCKS5 proxy (no auth, CONNECT only) that sends every connection to one fixed server.

It records the host names clients ask for, which proves that `socks5h://` leaves name resolution to
the proxy: a `.onion` name reaches it as a name and never touches the local resolver.
"""

from __future__ import annotations

import select
import socket
import socketserver
import struct
import threading


class SocksProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.target = target
        self.asked: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        return f"socks5h://127.0.0.1:{self.server_address[1]}"


class _Relay(socketserver.BaseRequestHandler):
    server: SocksProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        _version, count = client.recv(2)
        client.recv(count)
        client.sendall(b"\x05\x00")  # no authentication
        _version, _command, _reserved, kind = client.recv(4)
        if kind == 3:  # a domain name: what socks5h sends
            host = client.recv(client.recv(1)[0]).decode()
        elif kind == 1:
            host = socket.inet_ntoa(client.recv(4))
        else:
            client.sendall(b"\x05\x08\x00\x01" + bytes(6))
            return
        (port,) = struct.unpack("!H", client.recv(2))
        self.server.asked.append((host, port))
        with socket.create_connection(self.server.target) as upstream:
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            _pipe(client, upstream)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 5)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


def start_proxy(target: tuple[str, int]) -> tuple[SocksProxy, threading.Thread]:
    proxy = SocksProxy(target)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    return proxy, thread
