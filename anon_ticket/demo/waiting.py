"""Waiting for real processes: poll a check until it answers, with a deadline and never a fixed sleep.

One loop for every harness (the regtest chain, the demo's daemon, the test suite's Tor network), so all
of them say the same thing when a deadline passes: what was awaited, how long, and the last error a
tolerated failure gave.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    interval: float = 0.1,
    *,
    tolerate: tuple[type[Exception], ...] = (),
    error: Callable[[str], Exception] = TimeoutError,
) -> T:
    """`check()` until it returns something other than None or False; `error(message)` at the deadline.

    An exception of a `tolerate`d type counts as "not yet" (a process still starting refuses
    connections), and the last one is named in the message; any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except tolerate as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise error(f"{what}: not within {timeout:g} s{detail}")
        time.sleep(interval)
