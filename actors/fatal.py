"""The one channel from an actor to the daemon for trouble no restart can fix.

An actor that finds, say, that monero-wallet-rpc now serves another wallet cannot stop the daemon
itself (it runs in its own thread, under the supervisor); it raises this signal, and the daemon's
watch thread stops the process with exit code 1.
"""

from __future__ import annotations

import threading


class FatalSignal:
    def __init__(self) -> None:
        self.message: str | None = None  # the first reason given; later ones are dropped
        self._raised = threading.Event()

    def raise_(self, message: str) -> None:
        """Ask the daemon to stop (from any thread; idempotent)."""
        if self.message is None:
            self.message = message
        self._raised.set()

    def wait(self, timeout: float) -> bool:
        """True once the signal has been raised; False after `timeout` seconds without it."""
        return self._raised.wait(timeout)
