"""What clients do wrong, counted instead of logged (docs/PROTOCOL.md §4, §8).

A malformed request, a timed-out body or a refused PROXY line is not an application error: each is
counted (statsd, through the abuse metrics actor) and the log gets at most one summary line a minute
per listener, so no client can grow the log faster than that, whatever it sends.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("anon_ticket.http")

SUMMARY_INTERVAL_SECS = 60.0

Counter = Callable[[str, int], None]


class Noise:
    """Counts events by kind; `summarise()` logs them at most once per interval. Thread-safe."""

    def __init__(
        self,
        listener: str,
        count: Counter | None = None,
        interval: float = SUMMARY_INTERVAL_SECS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listener = listener
        self._count = count
        self._interval = interval
        self._clock = clock
        self._pending: collections.Counter[str] = collections.Counter()
        self._last = clock()
        self._lock = threading.Lock()
        self._defect_logged = float("-inf")

    def record(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._pending[kind] += n
        if self._count is not None:
            # Counting must never break serving (e.g. while the metrics actor restarts).
            with contextlib.suppress(Exception):
                self._count(kind, n)

    def summarise(self) -> None:
        """Log one line with what was counted since the last line, if the interval has passed."""
        now = self._clock()
        if now - self._last < self._interval:
            return
        with self._lock:
            pending, self._pending = self._pending, collections.Counter()
            self._last = now
        if pending:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(pending.items()))
            log.warning("%s listener, client faults in the last minute: %s", self._listener, kinds)

    def defect(self, message: str, exc: BaseException) -> None:
        """An application defect: counted always, logged with its traceback at most once a minute."""
        self.record("app_error")
        now = self._clock()
        with self._lock:
            if now - self._defect_logged < self._interval:
                return
            self._defect_logged = now
        log.error(
            "%s listener: %s (more this minute are only counted)", self._listener, message, exc_info=exc
        )
