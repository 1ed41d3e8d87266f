"""What the rest of the daemon may ask of storage, whatever the backend.

Storage never holds a PID or a service token (docs/PROTOCOL.md §2): payment ids (8 bytes), txids, amounts,
heights, small-integer statuses and token digests only. A claim receives the PID in memory to derive
the token inside its transaction and forgets it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, Protocol, TypeVar

from anon_ticket.core.access_time import AccessPolicy
from anon_ticket.core.domain import PaymentId, ServiceToken
from anon_ticket.core.payments import TokenStatus, Transfer

OPERATOR_REASON_DEFAULT = "revoked"
SECONDS_PER_DAY = 86_400
REORG_REASON = "payment_reorged"


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A payment that has been redeemed, and the state of the token it produced."""

    payment_id: bytes
    claim_txid: bytes
    token_digest: bytes
    claimed_at: int
    min_amount: int
    status: TokenStatus
    revoked_at: int | None
    operator_reason: str | None
    # The end of the paid time (docs/PROTOCOL.md §13), None when no access policy applied at the
    # claim; and the counted amount already turned into time, so no transfer is credited twice.
    access_until: int | None = None
    access_credited: int | None = None

    @property
    def revoke_reason(self) -> str | None:
        """The reason as the APIs show it: the operator's words, `revoked`, or `payment_reorged`."""
        if self.status is TokenStatus.REORGED:
            return REORG_REASON
        if self.status is TokenStatus.REVOKED:
            return self.operator_reason or OPERATOR_REASON_DEFAULT
        return None


@dataclass(frozen=True, slots=True, repr=False)
class ClaimRequest:
    """One claim to make: the PID (in memory only) and the rules in force when it was asked."""

    pid: PaymentId
    now: int
    min_amount: int
    min_confirmations: int
    access: AccessPolicy | None = None  # ACCESS_SECONDS_PER_PAYMENT: the claim starts the paid time


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """What a claim attempt did: `fresh` is True only for the call that created the claim."""

    record: ClaimRecord
    token: ServiceToken
    fresh: bool
    amount: int


@dataclass(frozen=True, slots=True)
class PaymentSnapshot:
    """One payment as a redeem sees it, read in one transaction so the parts agree."""

    claim: ClaimRecord | None
    transfers: list[Transfer]
    wallet_height: int


@dataclass(frozen=True, slots=True)
class MonitorState:
    """The poller's persisted state; every field is None until first learned."""

    wallet_address: str | None
    scan_floor: int | None
    scan_cursor: int | None
    wallet_height: int | None
    last_poll_at: int | None
    # The highest wallet height any applied poll reported (docs/PROTOCOL.md §9): never lowered.
    highest_height: int | None = None


@dataclass(frozen=True, slots=True)
class TransferBatch:
    """One poll's changes, applied in one transaction together with the cursor that covers them.

    `expected_cursor` makes the write conditional: an operator's `rescan` that moved the cursor in
    the meantime wins, and the batch is refused (`CursorMoved`) and polled again.
    """

    upserts: tuple[tuple[bytes, Transfer], ...]
    gone: tuple[tuple[bytes, bytes], ...]
    wallet_height: int
    settle_at_or_below: int
    expected_cursor: int | None
    new_cursor: int
    polled_at: int
    min_confirmations: int
    access: AccessPolicy | None = None  # ACCESS_SECONDS_PER_PAYMENT: later transfers extend the time


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    revoked: tuple[bytes, ...] = ()
    reinstated: tuple[bytes, ...] = ()
    changed_transfers: int = 0


@dataclass(frozen=True, slots=True)
class Counts:
    """Totals for the status endpoint and the admin panel."""

    payments_pending: int = 0
    payments_redeemable: int = 0
    payments_claimed: int = 0
    tokens_active: int = 0
    tokens_revoked: int = 0


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One UTC day's claims and counted transfers; `day` counts days since 1970-01-01."""

    day: int
    claims: int = 0
    counted_amount: int = 0
    counted_transfers: int = 0


@dataclass(frozen=True, slots=True)
class PendingSpan:
    """When a visible transfer waited for its confirmations: from first seen until counted (None: still)."""

    payment_id: bytes
    first_seen_at: int
    counted_at: int | None


@dataclass(frozen=True, slots=True)
class UnderpaidPayment:
    """An unclaimed payment whose transfers all count, yet add up to less than the minimum."""

    payment_id: bytes
    counted_total: int
    transfers: int
    last_height: int
    first_seen_at: int | None  # None: recorded before first-seen times were kept


@dataclass(frozen=True, slots=True)
class NeverCounted:
    """A transfer recorded but never counted (unlock_time, double spend: docs/PROTOCOL.md §3)."""

    payment_id: bytes
    transfer: Transfer
    first_seen_at: int | None


class IssueVerdict(Enum):
    """What the writer decided for one blinded message (docs/PROTOCOL.md §12): a value, never an error."""

    GRANTED = "granted"  # new: one taken from the allowance, durably
    REPEATED = "repeated"  # this claim had it signed before: answer again, take nothing
    EXHAUSTED = "exhausted"  # new, and the allowance is used up
    REVOKED = "revoked"  # the service token is revoked (operator or reorg)
    UNKNOWN = "unknown"  # no claim has this service token


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """One blinded message to count against a claim's allowance.

    Only digests: the service token's (to find the claim) and the blinded message's (SHA-256), never
    the message, the token or the signature. The allowance rule's inputs travel with it so that the
    decision is made inside the write transaction, against the amount counted at that moment.
    """

    token_digest: bytes
    request_digest: bytes
    day: int
    tokens_per_payment: int
    min_amount: int
    min_confirmations: int


@dataclass(frozen=True, slots=True)
class IssueOutcome:
    verdict: IssueVerdict
    allowance: int = 0
    issued: int = 0


@dataclass(frozen=True, slots=True)
class SpendRequest:
    """One token's spend: the key it was signed with (SHA-256 of the SPKI) and SHA-256 of its nonce."""

    key_id: bytes
    nonce_digest: bytes
    day: int


@dataclass(frozen=True, slots=True)
class PrivateTokenDay:
    """Private tokens issued and spent in one UTC day (days since 1970-01-01): totals only."""

    day: int
    issued: int = 0
    spent: int = 0


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """The first `items` of a report, with the count and amount of all of them."""

    items: list[T]
    count: int
    total_amount: int


class PaymentStore(Protocol):
    def transfers_for(self, payment_id: bytes) -> list[Transfer]: ...

    def snapshot(self, payment_id: bytes) -> PaymentSnapshot: ...

    def known_payment_ids(self) -> Iterator[bytes]: ...

    def unsettled_transfers(self) -> list[tuple[bytes, Transfer]]: ...

    def counts(self, min_confirmations: int, min_amount: int) -> Counts: ...


class TokenStore(Protocol):
    def claim_for(self, payment_id: bytes) -> ClaimRecord | None: ...

    def claim_by_digest(self, token_digest: bytes) -> ClaimRecord | None: ...

    def claim(
        self, pid: PaymentId, now: int, min_amount: int, min_confirmations: int
    ) -> ClaimOutcome | None: ...

    def claim_many(self, requests: Sequence[ClaimRequest]) -> list[ClaimOutcome | None]: ...

    def revoke(self, token_digest: bytes, reason: str | None, now: int) -> ClaimRecord | None: ...


class MonitorStateStore(Protocol):
    def monitor_state(self) -> MonitorState: ...

    def bind_wallet(self, address: str) -> None: ...

    def start_scan(self, height: int) -> MonitorState: ...

    def rescan_from(self, height: int, reset_highest: int | None = None) -> MonitorState:
        """Move the cursor (and floor) back to `height`, and with `reset_highest` lower the highest
        height seen; `RescanRefused` when anon_ticket/core/rescan.py's rules forbid it."""
        ...

    def apply_batch(self, batch: TransferBatch) -> BatchOutcome: ...


class FiguresStore(Protocol):
    """The operator's figures (admin panel): read-only, from times and amounts, never a PID or token."""

    def day_totals(self, since: int, until: int) -> list[DayTotals]:
        """Claims (by `claimed_at`) and counted transfers (by `counted_at`) per UTC day in [since, until).

        Only days with something are returned, oldest first.
        """
        ...

    def pending_spans(self, since: int) -> list[PendingSpan]:
        """Visible transfers still waiting, and those counted after `since`, with their first-seen time."""
        ...

    def underpaid_payments(
        self, min_confirmations: int, min_amount: int, limit: int
    ) -> Listing[UnderpaidPayment]: ...

    def never_counted(self, limit: int) -> Listing[NeverCounted]: ...


class PrivateTokenStore(Protocol):
    """Privacy Pass issuance counts and spent nonces (docs/PROTOCOL.md §12): two halves, never joined."""

    def issue_many(self, requests: Sequence[IssueRequest]) -> list[IssueOutcome]:
        """Decide each blinded message in one durable transaction (group commit), in order."""
        ...

    def issued_count(self, payment_id: bytes, request_digest: bytes | None = None) -> tuple[int, bool]:
        """How many tokens this claim has had signed, and whether `request_digest` is among them."""
        ...

    def spend_many(self, requests: Sequence[SpendRequest]) -> list[bool]:
        """Record each spend in one durable transaction: True for a first spend, False for a second."""
        ...

    def private_token_days(self, since_day: int, until_day: int) -> list[PrivateTokenDay]:
        """Issued and spent per UTC day in [since_day, until_day), days with something only, oldest first."""
        ...


class Store(PaymentStore, TokenStore, MonitorStateStore, FiguresStore, PrivateTokenStore, Protocol):
    """Everything one connection offers; `close()` releases it."""

    def close(self) -> None: ...
