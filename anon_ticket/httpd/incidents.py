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


class CountsByInterval:
    """Counts events by kind and hands the counts over at most once per interval. Thread-safe.

    The one mechanism behind both summaries: the application's 4xx answers (`ClientErrorSummary`)
    and the HTTP engine's client faults (`anon_ticket/httpd/client_faults.py`). With `first_at_once` the first
    `take_if_due()` hands over at once (an operator trying things sees the first mistake); without it
    the first hand-over comes one interval after creation.
    """

    def __init__(
        self,
        interval: float = SUMMARY_INTERVAL_SECS,
        clock: Callable[[], float] = time.monotonic,
        *,
        first_at_once: bool,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._counts: collections.Counter[str] = collections.Counter()
        self._next_at = clock() if first_at_once else clock() + interval
        self._lock = threading.Lock()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] += n

    def take_if_due(self) -> collections.Counter[str] | None:
        """None within the interval; else what was counted since the last hand-over (maybe nothing)."""
        with self._lock:
            now = self._clock()
            if now < self._next_at:
                return None
            counts, self._counts = self._counts, collections.Counter()
            self._next_at = now + self.interval
            return counts


def describe(counts: collections.Counter[str]) -> str:
    """`5000 invalid_request, 4999 not_found`: most frequent first, the same in every summary line."""
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())


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
        self._counts = CountsByInterval(interval, clock, first_at_once=True)

    def note(self, code: str) -> None:
        self._counts.add(code)
        counts = self._counts.take_if_due()
        if not counts:
            return
        self._log.info(
            "%s listener: %d client error(s) since the last summary (%s); counted in statsd, "
            "next summary in %ds at the earliest",
            self._listener,
            counts.total(),
            describe(counts),
            int(self._counts.interval),
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
