"""Bounded logging of what requests go through (docs/PROTOCOL.md §4, "HTTP details").

Whatever a client sends must not decide how much the daemon logs: a client's mistakes are counted in
statsd and summarised here at most once a minute, and the operator-facing detail of a failure (a
component down, a defect) is logged once a minute per kind, with a count of what was held back. Keys
come from our code (error codes, component names), never from the request, so the memory is bounded.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

SUMMARY_INTERVAL_SECS = 60.0


class ClientErrorSummary:
    """Counts a listener's 4xx answers by code; logs one summary line at most once per interval.

    The first mistake after a quiet interval is logged at once (so an operator trying things sees
    it), later ones are folded into the next summary line.
    """

    def __init__(
        self,
        logger: logging.Logger,
        listener: str,
        interval: float = SUMMARY_INTERVAL_SECS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._listener = listener
        self._interval = interval
        self._clock = clock
        self._counts: collections.Counter[str] = collections.Counter()
        self._next_at = clock()
        self._lock = threading.Lock()

    def note(self, code: str) -> None:
        with self._lock:
            self._counts[code] += 1
            now = self._clock()
            if now < self._next_at:
                return
            counts, self._counts = self._counts, collections.Counter()
            self._next_at = now + self._interval
        total = sum(counts.values())
        detail = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        self._log.info(
            "%s listener: %d client error(s) since the last summary (%s); counted in statsd, "
            "next summary in %ds at the earliest",
            self._listener,
            total,
            detail,
            int(self._interval),
        )


class OncePerInterval:
    """Lets one log record per key through per interval and counts the ones held back."""

    def __init__(
        self, interval: float = SUMMARY_INTERVAL_SECS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._next_at: dict[str, float] = {}
        self._held: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def admit(self, key: str) -> int | None:
        """None to stay quiet; else how many records of `key` were held back since the last one."""
        with self._lock:
            now = self._clock()
            if now < self._next_at.get(key, now):
                self._held[key] += 1
                return None
            self._next_at[key] = now + self._interval
            return self._held.pop(key, 0)
