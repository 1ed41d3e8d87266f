"""Abuse protection on the redeem path: a global token bucket in front of storage.

Over Tor every client is anonymous, so there is nobody to limit individually. What an attacker can
make expensive is the storage path: unknown PIDs are answered from the in-memory screen for free,
but a PID that passes the screen (a real payment, or a 1 % false positive) costs a read and perhaps a
write. The bucket bounds that work for everyone together; a real buyer who meets it gets 429 with
`Retry-After` and the client retries.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; thread-safe, ~1 µs a call."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> int:
        """0 when a token was taken; else the whole seconds until one is available (≥ 1)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0
            return max(1, math.ceil((1 - self._tokens) / self._rate))
