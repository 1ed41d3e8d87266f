"""The two listeners: can the daemon bind them, or does a running daemon hold them already?

A TCP address is bound for a moment (with SO_REUSEADDR, as the daemon binds) and released. When it is
in use, the holder is asked `GET /api/v1/info` (public) or `GET /api/v1/status` (internal, which
answers 401 without the token): an answer in anon_ticket's JSON shape means a running daemon, which
is fine; anything else is another program in the daemon's way. Unix sockets the same way.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import socket
import stat
from pathlib import Path

from anon_ticket.commands.check.report import Finding, ok, problem
from anon_ticket.config import BindAddress, Config

PROBE_TIMEOUT_SECS = 3.0


def check(config: Config) -> list[Finding]:
    found = [
        _listener("public listener", "API", config.api_unix_socket, config.api_bind_address, "/api/v1/info"),
        _listener(
            "internal listener",
            "INTERNAL",
            config.internal_unix_socket,
            config.internal_bind_address,
            "/api/v1/status",
        ),
    ]
    if config.access_gateway_unix_socket is not None or config.access_gateway_bind_address is not None:
        found.append(
            _listener(
                "access gateway",
                "ACCESS_GATEWAY",
                config.access_gateway_unix_socket,
                config.access_gateway_bind_address,
                "/",
            )
        )
    return found


def _listener(subject: str, prefix: str, unix: Path | None, tcp: BindAddress | None, probe: str) -> Finding:
    if unix is not None:
        return _unix(subject, f"{prefix}_UNIX_SOCKET", unix, probe)
    assert tcp is not None
    return _tcp(subject, f"{prefix}_BIND_ADDRESS", tcp, probe)


def _tcp(subject: str, variable: str, address: BindAddress, probe: str) -> Finding:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            host = (
                "127.0.0.1"
                if address.host in ("0.0.0.0", "")  # noqa: S104 (a comparison, not a bind)
                else "::1"
                if address.host == "::"
                else address.host
            )
            if _answers_like_us(
                lambda: http.client.HTTPConnection(host, address.port, timeout=PROBE_TIMEOUT_SECS), probe
            ):
                return ok(subject, f"{address} is bound by a running anon_ticket daemon")
            return problem(
                subject,
                f"{address} is in use by another program",
                f"stop it (ss -ltnp 'sport = :{address.port}' names it) or change {variable}",
            )
        if exc.errno == errno.EACCES:
            return problem(
                subject,
                f"{address}: no permission to bind port {address.port}",
                f"use a port above 1023 in {variable} (tor and a proxy can reach any port)",
            )
        return problem(
            subject,
            f"{address} cannot be bound: {exc.strerror}",
            f"check {variable} (an address of this machine)",
        )
    return ok(subject, f"{address} can be bound")


def _unix(subject: str, variable: str, path: Path, probe: str) -> Finding:
    folder = path.parent
    if not folder.is_dir():
        return problem(
            subject, f"the folder of {path} does not exist", f"create {folder} or change {variable}"
        )
    try:
        info = path.lstat()
    except FileNotFoundError:
        if not os.access(folder, os.W_OK | os.X_OK):
            return problem(
                subject,
                f"{folder} is not writable by this user",
                f"run as the daemon's user or fix {folder}'s owner",
            )
        return ok(subject, f"{path} can be created")
    if not stat.S_ISSOCK(info.st_mode):
        return problem(subject, f"{path} exists and is not a socket", f"remove it or change {variable}")

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(PROBE_TIMEOUT_SECS)
            try:
                sock.connect(str(path))
            except BaseException:
                sock.close()
                raise
            self.sock = sock

    if _answers_like_us(lambda: UnixConnection("localhost", timeout=PROBE_TIMEOUT_SECS), probe):
        return ok(subject, f"{path} is served by a running anon_ticket daemon")
    return ok(subject, f"{path} is a stale socket: the daemon replaces it at start")


def _answers_like_us(connect: object, probe: str) -> bool:
    """Does whatever listens there answer `probe` with one of our JSON bodies?"""
    assert callable(connect)
    conn: http.client.HTTPConnection | None = None
    try:
        conn = connect()
        assert conn is not None
        conn.request("GET", probe, headers={"Host": "localhost"})
        body = json.loads(conn.getresponse().read(65536))
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
    return isinstance(body, dict) and ("primary_address" in body or "error" in body)
