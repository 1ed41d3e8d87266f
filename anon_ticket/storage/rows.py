"""What both storage backends share: the claim columns, flag values in SQL, and the reorg judgement.

Kept apart from `base` (the protocols callers use) because only backends need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anon_ticket.errors import WalletMismatch
from anon_ticket.payments import (
    TokenStatus,
    Transfer,
    TransferFlag,
    evaluate,
    reorg_decision,
)
from anon_ticket.storage.base import ClaimRecord, DayTotals, TransferBatch

CLAIM_COLUMNS = (
    "payment_id, claim_txid, token_digest, claimed_at, min_amount, status, revoked_at, revoke_reason"
)
HIDDEN_MASK = int(TransferFlag.LOCKED | TransferFlag.DOUBLE_SPEND | TransferFlag.GONE)
COUNTED = int(TransferFlag.COUNTED)
DOUBLE_SPEND = int(TransferFlag.DOUBLE_SPEND)
GONE = int(TransferFlag.GONE)


def claim_from_row(row: Sequence[Any]) -> ClaimRecord:
    """A `ClaimRecord` from the columns of `CLAIM_COLUMNS`, in that order."""
    return ClaimRecord(
        payment_id=bytes(row[0]),
        claim_txid=bytes(row[1]),
        token_digest=bytes(row[2]),
        claimed_at=row[3],
        min_amount=row[4],
        status=TokenStatus(row[5]),
        revoked_at=row[6],
        operator_reason=row[7],
    )


def day_totals_from_rows(rows: Sequence[Sequence[Any]]) -> list[DayTotals]:
    """Merge `('claims'|'counted', day, count, amount)` rows into one `DayTotals` per day, oldest first."""
    days: dict[int, DayTotals] = {}
    for kind, day, count, amount in rows:
        seen = days.get(int(day), DayTotals(int(day)))
        if kind == "claims":
            days[int(day)] = DayTotals(seen.day, int(count), seen.counted_amount, seen.counted_transfers)
        else:
            days[int(day)] = DayTotals(seen.day, seen.claims, int(amount), int(count))
    return [days[day] for day in sorted(days)]


def judged_status(record: ClaimRecord, transfers: list[Transfer], batch: TransferBatch) -> TokenStatus:
    """The status a claim should have once `batch` is applied (docs/PROTOCOL.md §3, reorgs)."""
    view = evaluate(transfers, batch.wallet_height, batch.min_confirmations, claimed=True)
    return reorg_decision(record.status, record.min_amount, view)


def wallet_mismatch(bound: str, serving: str) -> WalletMismatch:
    """The error for a database bound to another wallet; both ends of each address, to tell them apart."""

    def short(address: str) -> str:
        return f"{address[:8]}…{address[-8:]}"

    return WalletMismatch(
        f"this database belongs to the wallet {short(bound)}, but monero-wallet-rpc serves "
        f"{short(serving)}; point MONERO_RPC_URL at the original wallet or use a new database"
    )
