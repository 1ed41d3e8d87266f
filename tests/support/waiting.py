"""The suite's one way to wait: `wait_for(what, check, timeout)`, polling `check` with a deadline.

`check` returns None or False for "not yet" and anything else to stop (that value is returned). At
the deadline the test fails with TimeoutError naming `what` and the last tolerated error. It is the
package's own loop (`anon_ticket/demo/waiting.py`, which the demo and the regtest chain use), with
a default interval fit for in-process checks; never a fixed sleep, and never a loop that falls
through silently when the condition does not come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anon_ticket.demo import waiting

T = TypeVar("T")

__all__ = ["wait_for"]


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    *,
    tolerate: tuple[type[Exception], ...] = (),
    error: Callable[[str], Exception] = TimeoutError,
) -> T:
    """`error` (TimeoutError by default) is what a harness raises at the deadline, e.g. its own type."""
    return waiting.wait_for(what, check, timeout, interval, tolerate=tolerate, error=error)
