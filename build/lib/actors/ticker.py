"""Self-scheduled messages for actors: Pykka has no timers, and sleeping in an actor blocks its inbox."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pykka


class Ticker:
    """Sends `message` to `ref` once after a delay; rescheduling cancels the previous one."""

    def __init__(self, ref: pykka.ActorRef[Any], message: object) -> None:
        self._ref = ref
        self._message = message
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def schedule(self, delay: float) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        # The actor may have stopped between scheduling and firing: nothing to do then.
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(self._message)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
