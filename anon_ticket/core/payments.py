"""The payment rules of docs/PROTOCOL.md §3 as pure functions over stored transfers.

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


def evaluate(
    transfers: Iterable[Transfer], wallet_height: int, min_confirmations: int, *, claimed: bool = False
) -> PaymentView:
    """Add up one payment's transfers (docs/PROTOCOL.md §3).

    A transfer counts when it is visible (not locked, not double-spent, not gone) and has at least
    `min_confirmations`; other visible transfers are pending. The earliest counted transfer (lowest
    height, ties by txid bytes) is the one a first claim is bound to.

    For a `claimed` payment a transfer that counted once (COUNTED) keeps counting while visible:
    falling confirmations alone, as in a reorg that mines the same transaction again, neither revoke
    its token nor take its amount down to 0 for the minutes the chain needs. A first claim never
    relies on that: it needs the confirmations now.
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
        if confirmed or (claimed and transfer.flags & TransferFlag.COUNTED):
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


def reorg_decision(status: TokenStatus, claim_min_amount: int, view: PaymentView) -> TokenStatus:
    """The token status a claimed payment should have after its transfers changed (docs/PROTOCOL.md §3).

    `view` is the claimed view (`evaluate(..., claimed=True)`): there only a transfer that disappeared
    or was flagged as double-spent stops counting, so only that can revoke. The token comes back when
    the counted total is at the claim's minimum again (the tx re-mined and confirmed, or another
    payment). Only the poller's own revocation is ever undone: an operator revocation is final.
    """
    if status is TokenStatus.ACTIVE and view.counted_total < claim_min_amount:
        return TokenStatus.REORGED
    if status is TokenStatus.REORGED and view.counted_total >= claim_min_amount:
        return TokenStatus.ACTIVE
    return status
