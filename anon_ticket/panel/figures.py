"""The operator's daily figures over the last 30 days, from storage times (never a PID or token).

- claims per day: by `claimed_at`;
- XMR counted per day: transfers by the poll that counted them (a transfer that disappeared or was
  flagged no longer counts, and one that counts again is counted on its new day);
- payments waiting at the end of each day (today: now): a payment with a visible transfer that the
  poller had seen but that did not yet have its confirmations;
- Privacy Pass tokens issued and spent per day (docs/PROTOCOL.md §12): day totals only, which is all
  storage keeps of them.

Days are UTC. Transfers recorded before first-seen and counted times were kept (schema version 4)
have no day and are left out.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from anon_ticket.storage.protocols import SECONDS_PER_DAY, FiguresStore, PendingSpan, PrivateTokenStore

DAYS = 30
ATOMIC_PER_XMR = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: datetime.date
    claims: int
    counted_amount: int  # atomic units
    counted_transfers: int
    waiting_payments: int  # at the end of the day (today: now)
    private_tokens_issued: int = 0
    private_tokens_spent: int = 0


class DailyFiguresStore(FiguresStore, PrivateTokenStore, Protocol):
    """What the daily figures read: times and amounts, and the Privacy Pass day totals."""


def xmr(amount: int) -> str:
    """Atomic units as XMR, exact, without trailing zeros (`0.01`, `1`, `0.000000000001`)."""
    text = format(Decimal(amount) / ATOMIC_PER_XMR, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def waiting_by_day(spans: Iterable[PendingSpan], first_day: int, today: int, now: int) -> dict[int, int]:
    """Distinct payments waiting at the end of each day in [first_day, today] (for today: at `now`).

    A span waits at instant T when first_seen_at ≤ T < counted_at (or it has not counted yet).
    """
    waiting: dict[int, set[bytes]] = {day: set() for day in range(first_day, today + 1)}
    for span in spans:
        # End-of-day instants T_d = (d + 1) * 86400 with first_seen_at ≤ T_d, for days before today.
        start = max(first_day, -(-span.first_seen_at // SECONDS_PER_DAY) - 1)
        stop = today - 1
        if span.counted_at is not None:
            stop = min(stop, -(-span.counted_at // SECONDS_PER_DAY) - 2)
        for day in range(start, stop + 1):
            waiting[day].add(span.payment_id)
        if span.first_seen_at <= now and (span.counted_at is None or span.counted_at > now):
            waiting[today].add(span.payment_id)
    return {day: len(ids) for day, ids in waiting.items()}


def daily_figures(store: DailyFiguresStore, now: int, days: int = DAYS) -> list[DayFigures]:
    """The last `days` UTC days, today included, oldest first; days without activity are zeros."""
    today = now // SECONDS_PER_DAY
    first = today - days + 1
    since = first * SECONDS_PER_DAY
    totals = {t.day: t for t in store.day_totals(since, (today + 1) * SECONDS_PER_DAY)}
    waiting = waiting_by_day(store.pending_spans(since), first, today, now)
    private = {t.day: t for t in store.private_token_days(first, today + 1)}
    figures = []
    for day in range(first, today + 1):
        total = totals.get(day)
        figures.append(
            DayFigures(
                day=datetime.date(1970, 1, 1) + datetime.timedelta(days=day),
                claims=total.claims if total else 0,
                counted_amount=total.counted_amount if total else 0,
                counted_transfers=total.counted_transfers if total else 0,
                waiting_payments=waiting[day],
                private_tokens_issued=private[day].issued if day in private else 0,
                private_tokens_spent=private[day].spent if day in private else 0,
            )
        )
    return figures


CSV_COLUMNS = (
    "date",
    "claims",
    "counted_atomic",
    "counted_xmr",
    "counted_transfers",
    "waiting_payments",
    "private_tokens_issued",
    "private_tokens_spent",
)


def to_csv(figures: Sequence[DayFigures]) -> str:
    """RFC 4180 CSV (CRLF line ends), one row per day, amounts in atomic units and in XMR."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in figures:
        writer.writerow(
            [
                f.day.isoformat(),
                f.claims,
                f.counted_amount,
                xmr(f.counted_amount),
                f.counted_transfers,
                f.waiting_payments,
                f.private_tokens_issued,
                f.private_tokens_spent,
            ]
        )
    return out.getvalue()
