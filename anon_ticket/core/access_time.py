"""Paid time (docs/PROTOCOL.md §13): how long an amount buys access, and how a top-up extends it.

Pure arithmetic on whole seconds and atomic units, so the claim (which starts the time) and the poll
(which credits a later transfer) on either storage backend compute the same end, and a test can check
it without a database. Only the *end* is stored: changing `ACCESS_SECONDS_PER_PAYMENT` later never
takes back time already granted, it prices what is credited from then on.
"""

from __future__ import annotations

from dataclasses import dataclass

# 9999-12-31T23:59:59Z: an end no RFC 3339 writer chokes on, however large a payment.
LATEST_END = 253_402_300_799


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """`ACCESS_SECONDS_PER_PAYMENT` seconds for each `MIN_PAYMENT_AMOUNT` paid, in proportion."""

    seconds_per_payment: int
    min_payment_amount: int

    def seconds_for(self, amount: int) -> int:
        """`amount × seconds_per_payment / min_payment_amount`, rounded down to whole seconds."""
        return max(0, amount) * self.seconds_per_payment // self.min_payment_amount

    def first_end(self, claimed_at: int, counted_total: int) -> int:
        """What counted by the claim runs from the claim."""
        return min(LATEST_END, claimed_at + self.seconds_for(counted_total))

    def extended(self, end: int, counted_at: int, amount: int) -> int:
        """A later transfer adds its share from the later of the moment it counted and the current
        end: a top-up before the end extends it, one after a lapse starts afresh, none is lost."""
        return min(LATEST_END, max(counted_at, end) + self.seconds_for(amount))
