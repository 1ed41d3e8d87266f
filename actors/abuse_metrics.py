"""Abuse metrics: counts what requests did, feeds statsd, and judges the abuse level.

Request threads and the poller `tell` events here (~0.5M/s, never blocking anyone); this actor
aggregates them and flushes counters to statsd once a second, so a flood costs one UDP packet per
counter per second rather than one per request, together with gauges of what is already known
(wallet height, actor restarts). The level is published (`PublishedState`) for the status endpoint,
and the last hour is kept minute by minute (`history`) for the admin panel: a small ring, no storage.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

import pykka
import statsd
from pykka.typing import ActorMemberMixin, proxy_method

from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.ticker import Ticker

FLUSH_INTERVAL_SECS = 1.0
LEVEL_WINDOW_SECS = 10
HISTORY_MINUTES = 60
LEVELS = ("normal", "elevated", "under_attack")  # in rising order

# Public outcomes that cost an attacker nothing and a real buyer rarely produces. The internal
# listener's are counted too but never raise the level: only the operator's own services reach it.
SUSPICIOUS = frozenset(
    {
        "payment_not_found",
        "invalid_pid",
        "invalid_request",
        "unsupported_media_type",
        "payload_too_large",
        "request_timeout",
        "method_not_allowed",
        "not_found",
    }
)


@dataclass(frozen=True, slots=True)
class AbuseSettings:
    elevated_per_sec: float = 20.0
    under_attack_per_sec: float = 200.0
    # Put before every gauge's name: `node.<NODE_NAME>.` on PostgreSQL, where several nodes may send
    # to one statsd (docs/PROTOCOL.md §11); counters add up across nodes and keep their names.
    gauge_prefix: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: `name` becomes the statsd counter `<prefix>.<name>`."""

    name: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class MinuteSample:
    """One wall-clock minute: the worst level judged in it and the suspicious answers counted."""

    minute: int  # unix time of the minute's start
    level: str
    suspicious: int


class _Flush:
    pass


class AbuseMetrics(pykka.ThreadingActor):
    def __init__(
        self,
        actors: ActorLocator,
        published: PublishedState,
        statsd_client: Callable[[], statsd.StatsClient],
        settings: AbuseSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._actors = actors
        self._published = published
        self._make_client = statsd_client
        self._settings = settings or AbuseSettings()
        self._clock = clock
        self._wall_clock = wall_clock
        self._history: collections.deque[MinuteSample] = collections.deque(maxlen=HISTORY_MINUTES)
        self._minute_suspicious = 0
        self._pending: collections.Counter[str] = collections.Counter()
        self._suspicious: collections.deque[tuple[int, int]] = collections.deque()
        self._client: statsd.StatsClient | None = None
        self._ticker: Ticker | None = None
        self._pool_counted = (0, 0)  # the pool's waits and timeouts already sent as counters
        self.totals: collections.Counter[str] = collections.Counter()

    def on_start(self) -> None:
        self._client = self._make_client()
        self._ticker = Ticker(self.actor_ref, _Flush())
        self._ticker.schedule(FLUSH_INTERVAL_SECS)

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        self.flush()
        if self._client is not None:
            self._client.close()
            self._client = None

    def on_failure(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        if self._client is not None:
            self._client.close()
            self._client = None

    def on_receive(self, message: object) -> object:
        if isinstance(message, Event):
            self.record(message.name, message.count)
            return None
        if isinstance(message, _Flush):
            self.flush()
            assert self._ticker is not None
            self._ticker.schedule(FLUSH_INTERVAL_SECS)
            return None
        return super().on_receive(message)

    def ping(self) -> bool:
        return True

    def record(self, name: str, count: int = 1) -> None:
        self._pending[name] += count
        self.totals[name] += count
        listener, _, outcome = name.rpartition(".")
        # Only what anonymous clients do counts: the public app's answers and the public server's faults.
        if listener in ("public", "http.public") and outcome in SUSPICIOUS:
            self._minute_suspicious += count
            second = int(self._clock())
            if self._suspicious and self._suspicious[-1][0] == second:
                self._suspicious[-1] = (second, self._suspicious[-1][1] + count)
            else:
                self._suspicious.append((second, count))

    def level(self) -> str:
        horizon = int(self._clock()) - LEVEL_WINDOW_SECS
        while self._suspicious and self._suspicious[0][0] <= horizon:
            self._suspicious.popleft()
        rate = sum(n for _, n in self._suspicious) / LEVEL_WINDOW_SECS
        if rate >= self._settings.under_attack_per_sec:
            return "under_attack"
        if rate >= self._settings.elevated_per_sec:
            return "elevated"
        return "normal"

    def history(self) -> tuple[MinuteSample, ...]:
        """The last hour, oldest first; minutes in which the daemon did not run are absent."""
        return tuple(self._history)

    def _note_minute(self, level: str) -> None:
        minute = int(self._wall_clock()) // 60 * 60
        suspicious, self._minute_suspicious = self._minute_suspicious, 0
        last = self._history[-1] if self._history else None
        if last is not None and last.minute == minute:
            worst = max(last.level, level, key=LEVELS.index)
            self._history[-1] = MinuteSample(minute, worst, last.suspicious + suspicious)
        else:
            self._history.append(MinuteSample(minute, level, suspicious))

    def flush(self) -> None:
        """Send the counters gathered since the last flush and publish the level."""
        level = self.level()
        self._published.abuse_level = level
        self._note_minute(level)
        if self._client is None:
            return
        pending, self._pending = self._pending, collections.Counter()
        with self._client.pipeline() as pipe:
            for name, count in pending.items():
                pipe.incr(name, count)
            node = self._settings.gauge_prefix
            pipe.gauge(f"{node}abuse_level", {"normal": 0, "elevated": 1, "under_attack": 2}[level])
            # What is already known, so a dashboard needs no second source.
            wallet = self._published.wallet
            if wallet.height is not None:
                pipe.gauge(f"{node}wallet.height", wallet.height)
            # docs/PROTOCOL.md §9: 0 when polls are stale, and while the last poll failed or faulted.
            pipe.gauge(f"{node}wallet.up", 1 if wallet.up() else 0)
            pipe.gauge(f"{node}wallet.stale", 1 if wallet.stale() else 0)
            pipe.gauge(f"{node}poller.leader", 1 if self._published.node_role == "leader" else 0)
            for name, health in list(self._actors.health.items()):
                pipe.gauge(f"{node}actors.{name}.restarts", health.restarts)
                pipe.gauge(f"{node}actors.{name}.running", 1 if health.state == "running" else 0)
            self._send_pool(pipe, node)

    def _send_pool(self, pipe: statsd.PipelineBase, node: str) -> None:
        """The PostgreSQL pool (docs/PROTOCOL.md §11): its gauges, and its waits and timeouts as
        counters of what happened since the last flush (they add up across nodes)."""
        figures = self._published.storage_pool()
        if figures is None:
            return
        pipe.gauge(f"{node}storage.pool.size", figures.size)
        pipe.gauge(f"{node}storage.pool.in_use", figures.in_use)
        pipe.gauge(f"{node}storage.pool.waiting", figures.waiting)
        waits, timeouts = self._pool_counted
        if figures.waits > waits:
            pipe.incr("storage.pool.wait", figures.waits - waits)
        if figures.timeouts > timeouts:
            pipe.incr("storage.pool.timeout", figures.timeouts - timeouts)
        self._pool_counted = (figures.waits, figures.timeouts)


class AbuseMetricsProxy(ActorMemberMixin, pykka.ActorProxy[AbuseMetrics]):
    ping = proxy_method(AbuseMetrics.ping)
    flush = proxy_method(AbuseMetrics.flush)
    level = proxy_method(AbuseMetrics.level)
    history = proxy_method(AbuseMetrics.history)
