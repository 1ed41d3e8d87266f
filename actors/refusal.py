"""Expected errors an actor hands back to its caller as values, not as exceptions.

Pykka logs every exception an `ask` returns to its caller ("Exception returned from … to caller", at
INFO, with the whole traceback), so a refused rescan, a batch dropped because a rescan moved the
cursor, or a database that is down would each write a traceback to the daemon's log — against the
rule that nothing a client sends causes one. Those errors are part of the contract (each has its
code in `anon_ticket/errors.py`); a method decorated with `refusals_as_values` returns them wrapped
in `Refused`, and `actors.locator.wait` raises them again in the caller's thread, where the request
or the poll handles them as before. Anything else an actor raises is a bug: pykka still logs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from anon_ticket.errors import AnonTicketError

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Refused:
    """An expected error, crossing from an actor's thread to its caller as a value."""

    error: AnonTicketError


def refusals_as_values(method: Callable[P, T]) -> Callable[P, T | Refused]:
    """Wrap an actor method so that an `AnonTicketError` it raises is returned as `Refused`."""

    @functools.wraps(method)
    def answering(*args: P.args, **kwargs: P.kwargs) -> T | Refused:
        try:
            return method(*args, **kwargs)
        except AnonTicketError as error:
            return Refused(error.with_traceback(None))  # the actor's frames are not kept alive

    return answering
