"""The abuse level over the last hour, minute by minute, as the admin panel shows it.

The actor is instantiated directly (its methods run in the test's thread, no statsd client), with
clocks the test moves.
"""

from __future__ import annotations

import itertools

import statsd

from anon_ticket.actors.abuse_metrics import HISTORY_MINUTES, AbuseMetrics, AbuseSettings, MinuteSample
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState

START = 1_800_000_000 // 60 * 60


def _no_client() -> statsd.StatsClient:
    raise AssertionError("not started: no statsd client is made")


def test_each_minute_keeps_its_worst_level_and_its_suspicious_count() -> None:
    now = [float(START)]
    published = PublishedState()
    metrics = AbuseMetrics(
        ActorLocator(),
        published,
        _no_client,
        AbuseSettings(elevated_per_sec=1, under_attack_per_sec=5),
        clock=lambda: now[0],
        wall_clock=lambda: now[0],
    )
    metrics.flush()
    assert metrics.history() == (MinuteSample(START, "normal", 0),)
    metrics.record("public.payment_not_found", 20)  # 2/s over the 10 s window: elevated
    metrics.record("public.claimed", 3)  # not suspicious
    now[0] += 1
    metrics.flush()
    assert published.abuse_level == "elevated"
    now[0] += 30  # the window has passed: normal again, but the minute remembers the worst
    metrics.flush()
    assert published.abuse_level == "normal"
    assert metrics.history() == (MinuteSample(START, "elevated", 20),)
    now[0] = START + 60
    metrics.record("public.invalid_pid", 70)  # 7/s: under attack
    metrics.flush()
    assert metrics.history()[-1] == MinuteSample(START + 60, "under_attack", 70)
    assert len(metrics.history()) == 2


def test_only_the_last_hour_is_kept() -> None:
    now = [float(START)]
    metrics = AbuseMetrics(
        ActorLocator(), PublishedState(), _no_client, clock=lambda: now[0], wall_clock=lambda: now[0]
    )
    for minute in range(HISTORY_MINUTES + 15):
        now[0] = START + 60 * minute
        metrics.flush()
    history = metrics.history()
    assert len(history) == HISTORY_MINUTES == 60
    assert history[0].minute == START + 60 * 15
    assert [b.minute - a.minute for a, b in itertools.pairwise(history)] == [60] * 59
