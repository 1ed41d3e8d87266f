"""A statsd server on a real UDP socket, for tests that check what the daemon sends."""

from __future__ import annotations

import socket
import threading

from tests.support.waiting import wait_for


class StatsdSink:
    """Keeps every line it receives; `gauges()` gives the last value of each gauge."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            with self._lock:
                self._lines.extend(data.decode("utf-8", "replace").splitlines())

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def gauges(self) -> dict[str, str]:
        """`name → value` of every gauge received, the latest value winning."""
        latest: dict[str, str] = {}
        for line in self.lines():
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if kind == "g":
                latest[name] = value
        return latest

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()

    def wait_for(self, line: str, timeout: float = 15.0) -> None:
        wait_for(f"statsd line {line!r}", lambda: True if line in self.lines() else None, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
