"""What clients do wrong, counted instead of logged (docs/PROTOCOL.md §4, §8).

A malformed request, a timed-out body or a refused PROXY line is not an application error: each is
counted (statsd, through the abuse metrics actor) and the log gets at most one summary line a minute
per listener, so no client can grow the log faster than that, whatever it sends.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from anon_ticket.httpd.incidents import SUMMARY_INTERVAL_SECS, CountsByInterval, OncePerInterval, describe

log = logging.getLogger("anon_ticket.httpd")

Counter = Callable[[str, int], None]


class ClientFaults:
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
        self._pending = CountsByInterval(interval, clock, first_at_once=False)
        self._defects = OncePerInterval(interval, clock)

    def record(self, kind: str, n: int = 1) -> None:
        self._pending.add(kind, n)
        if self._count is not None:
            # Counting must never break serving (e.g. while the metrics actor restarts).
            with contextlib.suppress(Exception):
                self._count(kind, n)

    def summarise(self) -> None:
        """Log one line with what was counted since the last line, if the interval has passed."""
        pending = self._pending.take_if_due()
        if pending:
            log.warning(
                "%s listener, client faults in the last minute: %s", self._listener, describe(pending)
            )

    def defect(self, message: str, exc: BaseException) -> None:
        """An application defect: counted always, logged with its traceback at most once a minute."""
        self.record("app_error")
        held = self._defects.admit("defect")
        if held is not None:
            log.error(
                "%s listener: %s (%d more held back in the last minute)",
                self._listener,
                message,
                held,
                exc_info=exc,
            )
