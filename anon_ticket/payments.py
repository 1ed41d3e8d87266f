"""The payment rules of CONTRACT §3 as pure functions over stored transfers.

Nothing here touches storage or the wallet, so the rules can be read in one place and tested with
plain values. Confirmations are always computed from heights at the moment of asking; they are never
stored, so they cannot go stale.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class TransferFlag(enum.IntFlag):
    """Why a stored transfer does not count. Stored as a small integer."""

    LOCKED = 1  # non-zero unlock_time: recorded for the operator, never counted
    DOUBLE_SPEND = 2  # the wallet saw a double spend: invisible while flagged
    GONE = 4  # vanished from the wallet's lists inside the rescan window (reorg, dropped)
    COUNTED = 8  # reached the required confirmations once: keeps counting while visible (storage-set)


HIDDEN = TransferFlag.LOCKED | TransferFlag.DOUBLE_SPEND | TransferFlag.GONE
POOL_HEIGHT = 0
_POOL_ORDER = 2**62  # a counted transfer back in the pool sorts after every mined one


class TokenStatus(enum.IntEnum):
    """A claim's token state. Stored as a small integer."""

    ACTIVE = 1
    REVOKED = 2  # by the operator: final
    REORGED = 3  # by the poller (`payment_reorged`): reinstated when the payment stands again


@dataclass(frozen=True, slots=True)
class Transfer:
    """One incoming transaction for one payment id, as last reported by the wallet."""

    txid: bytes
    amount: int
    height: int  # POOL_HEIGHT while in the pool
    flags: int = 0

    @property
    def visible(self) -> bool:
        return not self.flags & HIDDEN

    def as_reported(self) -> Transfer:
        """Without what storage adds (the sticky COUNTED bit): comparable with a wallet entry."""
        if not self.flags & TransferFlag.COUNTED:
            return self
        return Transfer(self.txid, self.amount, self.height, self.flags & ~TransferFlag.COUNTED)

    def confirmations(self, wallet_height: int) -> int:
        if self.height == POOL_HEIGHT:
            return 0
        return max(0, wallet_height - self.height)


@dataclass(frozen=True, slots=True)
class PaymentView:
    """What the visible transfers of one payment add up to at one wallet height."""

    counted_total: int
    visible_total: int
    pending_count: int
    fewest_pending_confirmations: int
    earliest_counted_txid: bytes | None

    @property
    def anything_visible(self) -> bool:
        return self.counted_total > 0 or self.pending_count > 0 or self.visible_total > 0


def evaluate(transfers: Iterable[Transfer], wallet_height: int, min_confirmations: int) -> PaymentView:
    """Add up one payment's transfers (CONTRACT §3).

    A transfer counts when it is visible (not locked, not double-spent, not gone) and has at least
    `min_confirmations`, or had them once (COUNTED): falling confirmations alone, as in a reorg that
    mines the same transaction again, never take counted money away, so a token's amount does not
    drop to 0 for the minutes the chain needs. Other visible transfers are pending. The earliest
    counted transfer (lowest height, ties by txid bytes) is the one a first claim is bound to.
    """
    counted = visible = pending = 0
    fewest: int | None = None
    earliest: tuple[int, bytes] | None = None
    for transfer in transfers:
        if not transfer.visible:
            continue
        visible += transfer.amount
        confirmations = transfer.confirmations(wallet_height)
        confirmed = transfer.height != POOL_HEIGHT and confirmations >= min_confirmations
        if confirmed or transfer.flags & TransferFlag.COUNTED:
            counted += transfer.amount
            key = (transfer.height or _POOL_ORDER, transfer.txid)
            if earliest is None or key < earliest:
                earliest = key
        else:
            pending += 1
            fewest = confirmations if fewest is None else min(fewest, confirmations)
    return PaymentView(
        counted_total=counted,
        visible_total=visible,
        pending_count=pending,
        fewest_pending_confirmations=fewest or 0,
        earliest_counted_txid=earliest[1] if earliest else None,
    )


def standing_total(transfers: Iterable[Transfer]) -> int:
    """The total that still stands whatever the confirmations: what a reorg revocation is judged on.

    Falling confirmations alone never revoke (a popped block puts its transaction back in the pool);
    only a transfer that disappeared or was flagged as double-spent stops standing.
    """
    return sum(t.amount for t in transfers if t.visible)


def reorg_decision(
    status: TokenStatus, claim_min_amount: int, view: PaymentView, standing: int
) -> TokenStatus:
    """The token status a claimed payment should have after its transfers changed.

    Only the poller's own revocation is ever undone: an operator revocation is final.
    """
    if status is TokenStatus.ACTIVE and standing < claim_min_amount:
        return TokenStatus.REORGED
    if status is TokenStatus.REORGED and view.counted_total >= claim_min_amount:
        return TokenStatus.ACTIVE
    return status
