"""Failed sign-ins are throttled (docs/PROTOCOL.md §5): after 5 in a minute, 429 until the minute ends.

One throttle for the whole panel, not per client: the internal listener sees loopback or a Unix socket
(every client has the same address), and guessing the token must be slow for everybody. A correct
token is refused too while the throttle holds, or a guesser would learn when it guessed right.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECS = 60.0


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_secs: float = WINDOW_SECS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures: collections.deque[float] = collections.deque(maxlen=max_failures)
        self._window = window_secs
        self._clock = clock
        self._lock = threading.Lock()
        self._announced = False

    def retry_after(self) -> int:
        """0 when a sign-in may be tried now; else the whole seconds to wait (≥ 1)."""
        with self._lock:
            return self._retry_after(self._clock())

    def _retry_after(self, now: float) -> int:
        failures = self._failures
        if len(failures) < (failures.maxlen or 0):
            return 0
        wait = failures[0] + self._window - now
        if wait <= 0:
            return 0
        return max(1, math.ceil(wait))

    def failed(self) -> None:
        with self._lock:
            now = self._clock()
            if self._retry_after(now) == 0:
                self._announced = False  # not throttled before this failure: a new spell may start
            self._failures.append(now)

    def first_refusal(self) -> bool:
        """True once per throttled spell: the caller logs it then, and not for every refusal."""
        with self._lock:
            if self._announced:
                return False
            self._announced = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures.clear()
            self._announced = False
