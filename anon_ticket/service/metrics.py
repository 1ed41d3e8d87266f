"""Counting what happens, and the last hour of the abuse level, for callers that know no actor.

The HTTP apps count every answer (`<listener>.<outcome>`, docs/PROTOCOL.md §8) and the panel charts
the abuse level of the last hour; both reach the abuse metrics actor through this service, as every
use case reaches the actors. Counting is a `tell`, never awaited: no request waits on statsd.
"""

from __future__ import annotations

from anon_ticket.actors.abuse_metrics import AbuseMetricsProxy, Event, MinuteSample
from anon_ticket.actors.locator import ActorLocator, wait
from anon_ticket.errors import AnonTicketError

__all__ = ["Metrics", "MinuteSample"]


class Metrics:
    def __init__(self, actors: ActorLocator, timeout_secs: float) -> None:
        self._actors = actors
        self._timeout_secs = timeout_secs

    def count(self, event: str, n: int = 1) -> None:
        """Add `n` to the statsd counter `<prefix>.<event>`; dropped if the actor is down (restarting)."""
        self._actors.tell("abuse_metrics", Event(event, n))

    def abuse_history(self) -> tuple[MinuteSample, ...] | None:
        """The last hour, oldest first; None when the actor does not answer in time (the chart says so)."""
        try:
            proxy = self._actors.proxy("abuse_metrics", AbuseMetricsProxy)
            return wait(proxy.history(), self._timeout_secs, "abuse metrics")
        except AnonTicketError:
            return None
