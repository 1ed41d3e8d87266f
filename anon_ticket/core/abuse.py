"""Abuse protection on the redeem path: limits in front of storage.

Over Tor every client is anonymous, so there is nobody to limit individually. What an attacker can
make expensive is the storage path: unknown PIDs are answered from the in-memory screen for free,
but a PID that passes the screen (a real payment, or a 1 % false positive) costs a read and perhaps a
write. Two limits guard it: per payment id (one PID hammered) and a global bucket (a circuit breaker
for everything together). A real buyer who meets either gets 429 with `Retry-After` and retries.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import cachetools


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


class PerKeyLimiter:
    """At most `limit` hits per key in a fixed window of `window_secs` from the key's first hit.

    Aimed at one payment id being hammered (a buyer's client polls every 15 s; a replay flood by
    whoever holds one PID does not get to spend everybody's storage budget). Memory is bounded by
    `max_keys` (cachetools evicts the oldest windows first); only PIDs that passed the screen are
    tracked, so an attacker cannot fill it without paying or hitting the 1 % false positives.
    """

    def __init__(
        self, limit: int, window_secs: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window_secs <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self._limit = limit
        self._window = window_secs
        self._clock = clock
        self._windows: cachetools.TTLCache[bytes, list[float]] = cachetools.TTLCache(
            maxsize=max_keys, ttl=window_secs, timer=clock
        )
        self._lock = threading.Lock()

    def hit(self, key: bytes) -> int:
        """0 when allowed; else the whole seconds until the key's window ends (≥ 1)."""
        with self._lock:
            now = self._clock()
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = [now, 1.0]
                return 0
            if window[1] < self._limit:
                window[1] += 1
                return 0
            return max(1, math.ceil(window[0] + self._window - now))
