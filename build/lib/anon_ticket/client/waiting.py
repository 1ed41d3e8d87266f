"""Waiting for the server with a deadline: the one loop behind `redeem_until` and `wait_for_info`.

Payments take minutes (10 confirmations ≈ 20 minutes), so the buyer polls. Polls back off while the
answer stays the same and start again from the base interval when it changes; a small jitter keeps a
buyer's requests from forming an exact, recognisable rhythm. 429/503 are obeyed through Retry-After,
bounded so a hostile or confused server cannot park us for hours, and always cut at the deadline.
One last attempt is made at the deadline itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from anon_ticket.client.answers import NotSeen, Pending
from anon_ticket.client.errors import NetworkError, ServerBusy, WaitTimedOut

T = TypeVar("T")

DEFAULT_POLL_INTERVAL = 15.0
BACKOFF_FACTOR = 1.5
BACKOFF_CAP_FACTOR = 8.0  # with the default interval: at most 2 minutes, about one Monero block
MAX_RETRY_AFTER = 300.0
MIN_REQUEST_TIMEOUT = 1.0
JITTER = 0.1

Cause = NotSeen | Pending | ServerBusy | NetworkError


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why we wait (the last answer, or the transient problem) and how long until the next try."""

    cause: Cause
    delay: float

    @property
    def situation(self) -> str:
        """The cause in words, without the delay: what a progress display compares to avoid repeats."""
        return describe_cause(self.cause)

    def describe(self) -> str:
        shown = f"{self.delay:.0f}" if self.delay >= 1 else f"{self.delay:.1f}"
        return f"{self.situation}; next try in {shown} s"


def describe_cause(cause: Cause) -> str:
    return cause.describe() if isinstance(cause, NotSeen | Pending) else str(cause)


ProgressCallback = Callable[[Waiting], None]


class Backoff:
    """Capped exponential delays starting at `base`; `reset()` when the situation changes."""

    def __init__(self, base: float, cap: float) -> None:
        self._base = base
        self._cap = max(cap, base)
        self._next = base

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * BACKOFF_FACTOR, self._cap)
        return delay * random.uniform(1 - JITTER, 1 + JITTER)

    def reset(self) -> None:
        self._next = self._base


def _same_situation(before: Cause | None, now: Cause) -> bool:
    if isinstance(now, Exception) or isinstance(before, Exception):
        return type(before) is type(now)
    return before == now


def poll_until(
    attempt: Callable[[float], T | NotSeen | Pending],
    deadline: float,
    on_progress: ProgressCallback | None = None,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    request_timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `attempt(timeout)` until it returns a final answer, or give up at `deadline` (a `clock()` time).

    At the deadline: if the last try failed at the network, or the server said 503, that problem is
    raised (it persisted: exit 5); if the server kept saying "not yet" (404, 202, 429), `WaitTimedOut`.
    Errors that are not transient propagate at once.
    """
    backoff = Backoff(poll_interval, poll_interval * BACKOFF_CAP_FACTOR)
    last: Cause | None = None
    while True:
        remaining = deadline - clock()
        timeout = min(request_timeout, max(remaining, MIN_REQUEST_TIMEOUT))
        try:
            answer = attempt(timeout)
        except (ServerBusy, NetworkError) as exc:
            cause: Cause = exc
        else:
            if not isinstance(answer, NotSeen | Pending):
                return answer
            cause = answer
        if not _same_situation(last, cause):
            backoff.reset()
        last = cause
        delay = _delay_for(cause, backoff)
        remaining = deadline - clock()
        if remaining <= 0:
            raise _gave_up(cause)
        step = Waiting(cause, min(delay, remaining))
        if on_progress is not None:
            on_progress(step)
        sleep(step.delay)


def _delay_for(cause: Cause, backoff: Backoff) -> float:
    if isinstance(cause, ServerBusy) and cause.retry_after is not None:
        return min(max(float(cause.retry_after), 1.0), MAX_RETRY_AFTER)
    return backoff.next()


def _gave_up(cause: Cause) -> Exception:
    if isinstance(cause, NetworkError) or (isinstance(cause, ServerBusy) and cause.status == 503):
        return cause
    return WaitTimedOut(f"timed out waiting; last answer: {describe_cause(cause)}", cause)
