"""One HTTP server per listener, each with its own WSGI application, run by the CherryPy bus.

CherryPy's own `Server` serves the global `cherrypy.tree` on every port, which would put the internal
API on the Tor-facing port. Each listener here is its own `HttpServer` (engine.py: whole requests are
read before a worker sees them, docs/PROTOCOL.md §8) with its own app, bound explicitly (so the daemon
decides what a bind failure means) and run by a CherryPy bus plugin (so it starts after the actors
and stops before them).
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

from cherrypy.process import plugins, wspbus

from anon_ticket.config import BindAddress
from anon_ticket.httpd.engine import HttpServer, ServerSettings
from anon_ticket.httpd.framing import HARD_BODY_LIMIT
from anon_ticket.httpd.wsgi_bridge import SERVER_NAME, WsgiCallable

log = logging.getLogger(__name__)

# HARD_BODY_LIMIT and SERVER_NAME were defined here before the engine: still importable from here.
__all__ = ["HARD_BODY_LIMIT", "SERVER_NAME", "Listener", "ListenerPlugin"]

LISTEN_BACKLOG = 1024


class Listener:
    """A bound, not yet serving, HTTP server."""

    def __init__(
        self,
        name: str,
        address: BindAddress | Path,
        app: WsgiCallable,
        *,
        threads: int,
        socket_mode: int | None = None,
        request_deadline: float = 10.0,
        max_connections: int = 4096,
        proxy_protocol: bool = False,
        max_connections_per_circuit: int = 16,
        count: Callable[[str, int], None] | None = None,
        fault_status: int | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.settings = ServerSettings(
            threads=threads,
            max_connections=max_connections,
            request_deadline=request_deadline,
            proxy_protocol=proxy_protocol,
            max_connections_per_circuit=max_connections_per_circuit,
            fault_status=fault_status,
        )
        self._app = app
        self._count = count
        self._socket_mode = socket_mode
        self._socket: socket.socket | None = None
        self._port: int | None = None  # the port actually bound (port 0 picks one)
        self.server: HttpServer | None = None

    def bind(self) -> None:
        """Bind the socket now; raises OSError when the address cannot be used."""
        if not isinstance(self.address, Path):
            host = self.address.host
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._socket = socket.create_server(
                (host, self.address.port), family=family, backlog=LISTEN_BACKLOG
            )
            self._port = int(self._socket.getsockname()[1])
            return
        _clear_stale_socket(self.address)
        mode = self._socket_mode if self._socket_mode is not None else 0o600
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Created with its final mode: no moment in which others could connect.
        previous = os.umask(0o777 & ~mode)
        try:
            sock.bind(str(self.address))
            sock.listen(LISTEN_BACKLOG)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(previous)
        os.chmod(self.address, mode)
        self._socket = sock

    @property
    def bound_port(self) -> int | None:
        return self._port

    def describe(self) -> str:
        if isinstance(self.address, Path):
            return f"unix:{self.address}"
        host = self.address.host
        return f"{host}:{self.bound_port}" if ":" not in host else f"[{host}]:{self.bound_port}"

    @property
    def serving(self) -> bool:
        return self.server is not None and self.server.running

    def serve_in_thread(self) -> None:
        assert self._socket is not None, "bind() first"
        self.server = HttpServer(self.name, self._socket, self._app, self.settings, self._count)
        self.server.start()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to 5 s), and remove a socket file."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        elif self._socket is not None:
            self._socket.close()  # bound but never served
        self._socket = None
        if isinstance(self.address, Path):
            self.address.unlink(missing_ok=True)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a crash; refuse anything else found at the path.

    Unlinking whatever is there would let a mistyped path take a database file or another daemon's
    live socket with it.
    """
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(found.st_mode):
        raise OSError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by another process")


class ListenerPlugin(plugins.SimplePlugin):
    """Serves a bound listener while the bus runs: starts after the supervisor, stops before it."""

    def __init__(self, bus: wspbus.Bus, listener: Listener) -> None:
        super().__init__(bus)
        self.listener = listener

    def start(self) -> None:
        self.listener.serve_in_thread()
        log.info("%s listener serving on %s", self.listener.name, self.listener.describe())

    start.priority = 75  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self.listener.serving:
            self.listener.stop()
            log.info("%s listener stopped", self.listener.name)

    stop.priority = 25  # type: ignore[attr-defined]
