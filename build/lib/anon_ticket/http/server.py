"""One cheroot HTTP server per listener, each with its own WSGI application.

CherryPy's own `Server` serves the global `cherrypy.tree` on every port, which would put
the internal API on the Tor-facing port. Each listener here is a separate `cheroot.wsgi.Server` with its
own app, bound explicitly (so the daemon decides what a bind failure means) and run by a CherryPy bus
plugin (so it starts after the actors and stops before them).
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import cheroot.wsgi
from cherrypy.process import plugins, wspbus

from anon_ticket.config import BindAddress
from anon_ticket.http.deadline import DeadlineConnection
from anon_ticket.http.wsgi import WsgiApp

log = logging.getLogger(__name__)

# Bodies this large are refused by cheroot itself (plain 413) before any application code runs, so a
# client cannot make a worker drain megabytes of a body we would never read. Our own JSON 413 covers
# everything from the contract's 1,024 bytes up to this.
HARD_BODY_LIMIT = 64 * 1024
SERVER_NAME = "anon_ticket"  # the Server header: no version, no host name


class _Server(cheroot.wsgi.Server):
    """cheroot's WSGI server whose connections hold each request to a deadline (see deadline.py)."""

    ConnectionClass = DeadlineConnection
    request_deadline: float = 10.0  # seconds for a whole request to arrive, however it is dripped


class Listener:
    """A bound, not yet serving, HTTP server."""

    def __init__(
        self,
        name: str,
        address: BindAddress | Path,
        app: WsgiApp,
        *,
        threads: int,
        keepalive_limit: int,
        socket_mode: int | None = None,
        request_timeout: float = 10.0,
        request_deadline: float = 10.0,
    ) -> None:
        self.name = name
        bind: Any = str(address) if isinstance(address, Path) else (address.host, address.port)
        self.server = _Server(
            bind,
            app,
            numthreads=threads,
            server_name=SERVER_NAME,
            request_queue_size=128,
            timeout=int(request_timeout),
            shutdown_timeout=5,
        )
        self.server.max_request_body_size = HARD_BODY_LIMIT
        self.server.max_request_header_size = 16 * 1024
        # cheroot keeps 10 idle keep-alive connections by default and then answers `Connection: close`
        # (measured: 400-970 reconnects/s at 32 clients). Tor multiplexes many buyers over few
        # connections, so we allow more, each costing one idle slot, not a thread.
        self.server.keep_alive_conn_limit = keepalive_limit
        self.server.request_deadline = request_deadline
        self.address = address
        self._socket_mode = socket_mode
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        """Bind the socket now; raises OSError when the address cannot be used."""
        if not isinstance(self.address, Path):
            self.server.prepare()
            return
        _clear_stale_socket(self.address)
        mode = self._socket_mode if self._socket_mode is not None else 0o600
        # Created with its final mode: no moment in which others could connect.
        previous = os.umask(0o777 & ~mode)
        try:
            self.server.prepare()
        finally:
            os.umask(previous)
        os.chmod(self.address, mode)

    @property
    def bound_port(self) -> int | None:
        if isinstance(self.address, Path):
            return None
        return int(self.server.bind_addr[1])

    def describe(self) -> str:
        if isinstance(self.address, Path):
            return f"unix:{self.address}"
        host = self.address.host
        return f"{host}:{self.bound_port}" if ":" not in host else f"[{host}]:{self.bound_port}"

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.server.serve, name=f"http-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to 5 s), and remove a socket file."""
        if not self.server.ready:
            return
        self.server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if isinstance(self.address, Path):
            self.address.unlink(missing_ok=True)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a crash; refuse anything else found at the path.

    cheroot would unlink whatever is there: a mistyped path could take a database file or another
    daemon's live socket with it.
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
        if self.listener.server.ready:
            self.listener.stop()
            log.info("%s listener stopped", self.listener.name)

    stop.priority = 25  # type: ignore[attr-defined]
