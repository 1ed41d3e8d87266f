"""systemd readiness and watchdog (`Type=notify`): datagrams to `NOTIFY_SOCKET`, no library needed.

The protocol is one `AF_UNIX` datagram per message (sd_notify(3)); a path starting with `@` is an
abstract socket. The daemon sends `READY=1` once both listeners are bound and serving and the actors
are up, `STOPPING=1` when it starts to stop, and `WATCHDOG=1` from the supervisor's watch loop at half
of `WATCHDOG_USEC`, so a daemon whose supervision hangs is killed and restarted by systemd
(`WatchdogSec=` in conf/anon_ticket.service). Without `NOTIFY_SOCKET` every call does nothing.
A failed send is logged once and never stops the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from cherrypy.process import plugins, wspbus

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to the socket systemd gave us, if any (thread-safe)."""

    def __init__(
        self,
        socket_path: str | None,
        watchdog_interval_secs: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address = _address(socket_path) if socket_path else None
        self.watchdog_interval_secs = watchdog_interval_secs
        self._clock = clock
        self._last_watchdog: float | None = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "").strip()
        watchdog_pid = env.get("WATCHDOG_PID", "").strip()
        # WATCHDOG_PID names the process the watchdog is meant for: not us, e.g. in a child.
        if usec.isdigit() and int(usec) > 0 and watchdog_pid in ("", str(os.getpid())):
            interval = int(usec) / 1_000_000 / 2
        return cls(env.get("NOTIFY_SOCKET", "").strip() or None, interval)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, message: str) -> bool:
        """One datagram; False when there is no socket or the send failed (logged once)."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at NOTIFY_SOCKET: %s", exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1\nSTATUS=stopping")

    def watchdog(self) -> None:
        """Called on every round of the supervisor's watch loop; sends at most once per interval."""
        if self._address is None or self.watchdog_interval_secs is None:
            return
        now = self._clock()
        with self._lock:
            if self._last_watchdog is not None and now - self._last_watchdog < self.watchdog_interval_secs:
                return
            self._last_watchdog = now
        self.send("WATCHDOG=1")


def _address(path: str) -> str:
    # "@name" is Linux's abstract namespace: a leading NUL byte instead of the "@".
    return "\0" + path[1:] if path.startswith("@") else path


class NotifyPlugin(plugins.SimplePlugin):
    """READY=1 after the listeners have started serving (priority 75), STOPPING=1 before they stop."""

    def __init__(self, bus: wspbus.Bus, notifier: Notifier, status: Callable[[], str]) -> None:
        super().__init__(bus)
        self.notifier = notifier
        self.status = status

    def start(self) -> None:
        self.notifier.ready(self.status())

    start.priority = 90  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.notifier.stopping()

    stop.priority = 10  # type: ignore[attr-defined]
