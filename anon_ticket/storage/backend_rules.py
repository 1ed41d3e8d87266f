"""What both storage backends share: the claim columns, flag values in SQL, turning rows into
records, the claim decision and the reorg judgement.

Everything here is independent of the SQL dialect: a backend runs its own statements (placeholders,
locks and booleans differ) and hands the rows here, so SQLite and PostgreSQL cannot drift apart in
what a row means or in what a claim or a reorg decides. Kept apart from `protocols` (what callers
use) because only backends need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from anon_ticket.core.domain import ServiceToken, TxId
from anon_ticket.core.payments import (
    PaymentView,
    TokenStatus,
    Transfer,
    TransferFlag,
    evaluate,
    reorg_decision,
)
from anon_ticket.errors import WalletMismatch
from anon_ticket.storage.protocols import (
    ClaimOutcome,
    ClaimRecord,
    ClaimRequest,
    DayTotals,
    IssueOutcome,
    IssueRequest,
    IssueVerdict,
    Listing,
    NeverCounted,
    PaymentSnapshot,
    PendingSpan,
    PrivateTokenDay,
    SpendRequest,
    TransferBatch,
    UnderpaidPayment,
)

T = TypeVar("T")

CLAIM_COLUMNS = (
    "payment_id, claim_txid, token_digest, claimed_at, min_amount, status, revoked_at, revoke_reason, "
    "access_until, access_credited"
)
CLAIM_WIDTH = len(CLAIM_COLUMNS.split(","))
# The claim columns prefixed with the `c` alias, for the one-statement payment snapshot's join.
JOINED_CLAIM_COLUMNS = ", ".join("c." + name.strip() for name in CLAIM_COLUMNS.split(","))
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
        access_until=row[8],
        access_credited=None if row[9] is None else int(row[9]),
    )


def snapshot_from_rows(rows: Sequence[Sequence[Any]]) -> PaymentSnapshot:
    """A `PaymentSnapshot` from the snapshot join: `wallet_height, <claim columns>, txid, amount,
    height, flags`, one row per transfer (claim columns repeated), or one row with NULL transfer
    columns when the payment has none."""
    first = rows[0]
    txid = 1 + CLAIM_WIDTH  # where the transfer columns start
    claim = claim_from_row(first[1:txid]) if first[1] is not None else None
    transfers = [
        Transfer(bytes(row[txid]), *row[txid + 1 : txid + 4]) for row in rows if row[txid] is not None
    ]
    return PaymentSnapshot(claim, transfers, int(first[0] or 0))


def pending_spans_from_rows(rows: Iterable[Sequence[Any]]) -> list[PendingSpan]:
    """`PendingSpan`s from `payment_id, first_seen_at, counted_at` rows."""
    return [PendingSpan(bytes(row[0]), int(row[1]), row[2]) for row in rows]


def underpaid_from_rows(rows: Sequence[Sequence[Any]]) -> Listing[UnderpaidPayment]:
    """From `payment_id, total, n, last_height, first_seen`, then the two window totals.

    `int()` because PostgreSQL's sum of a bigint is a numeric (a Decimal in Python)."""
    items = [UnderpaidPayment(bytes(row[0]), int(row[1]), row[2], row[3], row[4]) for row in rows]
    return _listing(items, rows, 5)


def never_counted_from_rows(rows: Sequence[Sequence[Any]]) -> Listing[NeverCounted]:
    """From `payment_id, txid, amount, height, flags, first_seen_at`, then the two window totals."""
    items = [NeverCounted(bytes(row[0]), Transfer(bytes(row[1]), *row[2:5]), row[5]) for row in rows]
    return _listing(items, rows, 6)


def _listing(items: list[T], rows: Sequence[Sequence[Any]], totals_at: int) -> Listing[T]:
    """The window-function totals (count, then amount) ride on every row; no row, no totals."""
    if not rows:
        return Listing(items, 0, 0)
    return Listing(items, int(rows[0][totals_at]), int(rows[0][totals_at + 1]))


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


def claim_view(seen: PaymentSnapshot, request: ClaimRequest) -> PaymentView:
    """The payment as the claim being decided sees it, read inside the write transaction."""
    return evaluate(
        seen.transfers, seen.wallet_height, request.min_confirmations, claimed=seen.claim is not None
    )


# The columns of a new claim's row, in the order of `new_claim`'s values.
NEW_CLAIM_COLUMNS = (
    "payment_id, claim_txid, token_digest, claimed_at, min_amount, status, access_until, access_credited"
)


def new_claim(view: PaymentView, request: ClaimRequest) -> tuple[ServiceToken, tuple[Any, ...]] | None:
    """The token of a first claim and the values of its row (`NEW_CLAIM_COLUMNS`); None when the
    payment is not redeemable."""
    txid = view.earliest_counted_txid
    if txid is None or view.counted_total < request.min_amount:
        return None
    token = request.pid.service_token(TxId(txid))
    payment_id = request.pid.chain_payment_id().raw
    policy = request.access
    access_until = None if policy is None else policy.first_end(request.now, view.counted_total)
    access_credited = None if policy is None else view.counted_total
    values = (
        payment_id,
        txid,
        token.digest().raw,
        request.now,
        request.min_amount,
        int(TokenStatus.ACTIVE),
        access_until,
        access_credited,
    )
    return token, values


def access_credits(
    claims: Iterable[tuple[ClaimRecord, list[Transfer]]], batch: TransferBatch
) -> list[tuple[int, int, bytes]]:
    """`(access_until, access_credited, payment_id)` for each claim whose payment has more counted
    than was turned into time, once `batch` is applied (docs/PROTOCOL.md §13).

    What is new is the counted total less what was credited, so a transfer is credited once even if
    a reorg hides it and brings it back; it counted at this poll, so its share runs from the later
    of `polled_at` and the current end. Claims made without a policy (no end) stay good until
    revoked; without a policy in the batch nothing is credited.
    """
    policy = batch.access
    if policy is None:
        return []
    credits = []
    for record, transfers in claims:
        if record.access_until is None or record.status is not TokenStatus.ACTIVE:
            continue
        view = evaluate(transfers, batch.wallet_height, batch.min_confirmations, claimed=True)
        new = view.counted_total - (record.access_credited or 0)
        if new > 0:
            end = policy.extended(record.access_until, batch.polled_at, new)
            credits.append((end, view.counted_total, record.payment_id))
    return credits


def replayed_claim(record: ClaimRecord, view: PaymentView, request: ClaimRequest) -> ClaimOutcome:
    """A claim already made answers again with the same token (rebuilt from the PID, never stored)."""
    token = request.pid.service_token(TxId(record.claim_txid))
    return ClaimOutcome(record, token, False, view.counted_total)


def rejudge(
    claims: Iterable[tuple[ClaimRecord, list[Transfer]]], batch: TransferBatch
) -> tuple[list[bytes], list[bytes]]:
    """Judge each claim against its payment's transfers after `batch`: the payment ids whose claims a
    reorg revokes, and those it reinstates (to active). The caller writes the changes.

    An operator's revocation is final: such claims are passed over whatever their transfers say.
    """
    revoked: list[bytes] = []
    reinstated: list[bytes] = []
    for record, transfers in claims:
        if record.status is TokenStatus.REVOKED:
            continue
        status = judged_status(record, transfers, batch)
        if status is TokenStatus.REORGED and record.status is not status:
            revoked.append(record.payment_id)
        elif status is TokenStatus.ACTIVE and record.status is not status:
            reinstated.append(record.payment_id)
    return revoked, reinstated


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


# -- Privacy Pass (docs/PROTOCOL.md §12) -----------------------------------------------------------

# The per-day figures are spread over this many rows per day on PostgreSQL (see 0005_private_tokens.sql).
DAY_SHARDS = 16


def allowance(counted_total: int, tokens_per_payment: int, min_amount: int) -> int:
    """floor(amount × PRIVACY_PASS_TOKENS_PER_PAYMENT / MIN_PAYMENT_AMOUNT), in integers (no float)."""
    return counted_total * tokens_per_payment // min_amount


def issue_decision(
    claim: ClaimRecord | None,
    seen: PaymentSnapshot | None,
    issued: int,
    known: bool,
    request: IssueRequest,
) -> IssueOutcome:
    """The verdict for one blinded message, from what the write transaction read (claim first, then
    retry, then allowance: the order of the §12 error list). The caller writes a GRANTED one."""
    if claim is None or seen is None:
        return IssueOutcome(IssueVerdict.UNKNOWN)
    counted = evaluate(seen.transfers, seen.wallet_height, request.min_confirmations, claimed=True)
    granted = allowance(counted.counted_total, request.tokens_per_payment, request.min_amount)
    if claim.status is not TokenStatus.ACTIVE:
        return IssueOutcome(IssueVerdict.REVOKED, granted, issued)
    if known:
        return IssueOutcome(IssueVerdict.REPEATED, granted, issued)
    if issued >= granted:
        return IssueOutcome(IssueVerdict.EXHAUSTED, granted, issued)
    return IssueOutcome(IssueVerdict.GRANTED, granted, issued + 1)


def per_day(requests: Sequence[IssueRequest | SpendRequest], counted: Iterable[bool]) -> dict[int, int]:
    """How many of the requests count (granted, or spent for the first time), by day: what a batch
    adds to the per-day figures, tallied once here so both backends count alike."""
    days: dict[int, int] = {}
    for request, counts in zip(requests, counted, strict=True):
        if counts:
            days[request.day] = days.get(request.day, 0) + 1
    return days


def private_token_days_from_rows(rows: Iterable[Sequence[Any]]) -> list[PrivateTokenDay]:
    """From `day, issued, spent` rows (summed over shards by the query)."""
    return [PrivateTokenDay(int(day), int(issued), int(spent)) for day, issued, spent in rows]
