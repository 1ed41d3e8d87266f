"""The redeem decision of docs/PROTOCOL.md §4, from a screened PID to an answer, without HTTP.

The order of the contract's table is the order of this code. Reads go to the calling thread's own
read connection; only a first claim is a write, sent to the storage writer and awaited with a bound,
so the token is returned only once its claim is committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.storage_writer import ask_writer, request_claim
from anon_ticket.core.abuse import PerKeyLimiter, TokenBucket
from anon_ticket.core.domain import PaymentId, TxId
from anon_ticket.core.payments import PaymentView, TokenStatus, Transfer, evaluate
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.errors import (
    InsufficientPayment,
    PaymentNotFound,
    RateLimited,
    TokenRevoked,
    Unavailable,
)
from anon_ticket.storage.protocols import ClaimRecord, ClaimRequest, Store

# While the PID screen is rebuilt the daemon cannot tell unknown PIDs from real ones.
STARTING_RETRY_AFTER = 5


@dataclass(frozen=True, slots=True)
class RedeemSettings:
    min_payment_amount: int
    min_confirmations: int
    writer_timeout_secs: float
    storage_rate: float = 2000.0
    storage_burst: int = 4000
    pid_per_minute: int = 30
    tracked_pids: int = 100_000
    circuit_per_minute: int = 120


@dataclass(frozen=True, slots=True)
class RedeemAnswer:
    status: int
    body: dict[str, Any] = field(repr=False)  # holds the service token: never in a repr


class Redeemer:
    """Callable from any request thread; holds no per-request state."""

    def __init__(
        self,
        actors: ActorLocator,
        published: PublishedState,
        reader: Callable[[], Store],
        settings: RedeemSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._actors = actors
        self._published = published
        self._reader = reader
        self._settings = settings
        self._clock = clock
        self._bucket = TokenBucket(settings.storage_rate, settings.storage_burst)
        self._per_pid = PerKeyLimiter(settings.pid_per_minute, 60.0, settings.tracked_pids)
        # With PROXY_PROTOCOL=tor the tor circuit is the only client identity (docs/PROTOCOL.md §8).
        self._per_circuit = PerKeyLimiter(settings.circuit_per_minute, 60.0, settings.tracked_pids)

    def redeem(self, pid: PaymentId, circuit: int | None = None) -> RedeemAnswer:
        screen = self._published.pid_screen
        if screen is None:
            raise Unavailable("the PID screen is being rebuilt", STARTING_RETRY_AFTER)
        payment_id = pid.chain_payment_id().raw
        if not screen.might_contain(payment_id):
            raise PaymentNotFound("no payment is known for this pid")
        retry_after = (
            (self._per_circuit.hit(circuit.to_bytes(4, "big")) if circuit is not None else 0)
            or self._per_pid.hit(payment_id)
            or self._bucket.take()
        )
        if retry_after:
            raise RateLimited(retry_after)
        snapshot = self._reader().snapshot(payment_id)
        claim = snapshot.claim
        view = evaluate(
            snapshot.transfers,
            snapshot.wallet_height,
            self._settings.min_confirmations,
            claimed=claim is not None,
        )
        if claim is not None:
            return self._claimed(pid, claim, view, snapshot.transfers)
        if not snapshot.transfers or not any(t.visible for t in snapshot.transfers):
            raise PaymentNotFound("no payment is known for this pid")
        if view.counted_total >= self._settings.min_payment_amount:
            return self._claim(pid, view)
        if view.pending_count:
            return self._pending(view)
        raise InsufficientPayment(view.counted_total, self._settings.min_payment_amount)

    def _claim(self, pid: PaymentId, view: PaymentView) -> RedeemAnswer:
        request = ClaimRequest(
            pid, int(self._clock()), self._settings.min_payment_amount, self._settings.min_confirmations
        )
        outcome = ask_writer(self._actors, request_claim, request, self._settings.writer_timeout_secs)
        if outcome is None:
            # A poll between our read and the writer's transaction took the payment below the
            # minimum (a reorg): answer from what is visible now.
            if view.pending_count:
                return self._pending(view)
            raise PaymentNotFound("the payment is no longer visible")
        if not outcome.fresh:  # another request claimed it first: a replay of that claim
            return self._claimed(pid, outcome.record, None, [])
        return RedeemAnswer(
            200,
            {
                "status": "claimed",
                "token": outcome.token.hex(),
                "amount": outcome.amount,
                "claimed_at": rfc3339(outcome.record.claimed_at),
            },
        )

    def _claimed(
        self, pid: PaymentId, claim: ClaimRecord, view: PaymentView | None, transfers: list[Transfer]
    ) -> RedeemAnswer:
        """The rows of the §4 table for a payment that has a claim (`view` None: just claimed)."""
        token = pid.service_token(TxId(claim.claim_txid))
        # The 8-byte payment id can collide; only the PID that rebuilds the stored digest owns it.
        if token.digest().raw != claim.token_digest:
            raise PaymentNotFound("no payment is known for this pid")
        if claim.status is TokenStatus.REVOKED:
            raise TokenRevoked("revoked")
        if view is None:
            snapshot = self._reader().snapshot(claim.payment_id)
            transfers = snapshot.transfers
            view = evaluate(transfers, snapshot.wallet_height, self._settings.min_confirmations, claimed=True)
        if claim.status is TokenStatus.REORGED:
            if not any(t.txid == claim.claim_txid and t.visible for t in transfers):
                raise TokenRevoked("payment_reorged")
            if view.counted_total < claim.min_amount and not view.pending_count:
                raise InsufficientPayment(view.counted_total, claim.min_amount)
            # Its transaction is back: pending until the poller reinstates the token.
            return self._pending(view)
        return RedeemAnswer(
            200,
            {
                "status": "already_claimed",
                "token": token.hex(),
                "amount": view.counted_total,
                "claimed_at": rfc3339(claim.claimed_at),
            },
        )

    def _pending(self, view: PaymentView) -> RedeemAnswer:
        return RedeemAnswer(
            202,
            {
                "status": "pending",
                "amount": view.visible_total,
                "confirmations": view.fewest_pending_confirmations,
                "required_confirmations": self._settings.min_confirmations,
            },
        )
