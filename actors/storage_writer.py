"""The storage writer: every database write in the daemon is a message to this one actor.

SQLite allows one writer at a time; making that writer an actor turns lock contention into a queue,
and gives the supervisor one thing to restart if the connection breaks. `__init__` runs in the
creating thread and only stores arguments; the connection is opened in `on_start`, in the actor's
own thread, and every method below runs in that thread.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka
from pykka import ActorDeadError
from pykka.typing import ActorMemberMixin, proxy_method

from anon_ticket.actors.locator import ActorLocator, wait
from anon_ticket.actors.refusal import refusals_as_values
from anon_ticket.core.access_time import AccessPolicy
from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer, TransferFlag
from anon_ticket.errors import AnonTicketError, Unavailable
from anon_ticket.storage.protocols import (
    BatchOutcome,
    ClaimOutcome,
    ClaimRecord,
    ClaimRequest,
    IssueOutcome,
    IssueRequest,
    MonitorState,
    SpendRequest,
    Store,
    TransferBatch,
)
from anon_ticket.wallet.ingest import ReportedTransfer, plan_changes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, repr=False)
class QueuedClaim:
    """A claim sent with `request_claim`; answered through `reply` once its batch has committed."""

    request: ClaimRequest
    reply: pykka.Future[ClaimOutcome | None]


@dataclass(frozen=True, slots=True, repr=False)
class QueuedIssue:
    """A Privacy Pass issuance sent with `request_issue` (group-committed like claims)."""

    request: IssueRequest
    reply: pykka.Future[IssueOutcome]


@dataclass(frozen=True, slots=True, repr=False)
class QueuedSpend:
    """A Privacy Pass spend sent with `request_spend` (group-committed like claims)."""

    request: SpendRequest
    reply: pykka.Future[bool]


Queued = QueuedClaim | QueuedIssue | QueuedSpend
_KINDS: tuple[type[Queued], ...] = (QueuedClaim, QueuedIssue, QueuedSpend)


class _FlushClaims:
    """Self-addressed: commit the writes gathered so far (queued behind the messages before it)."""


def request_claim(ref: pykka.ActorRef[Any], request: ClaimRequest) -> pykka.Future[ClaimOutcome | None]:
    """Ask the writer for a claim, to be group-committed with the others queued at the same time.

    Raises `pykka.ActorDeadError` if the writer is gone; the future fails with it if the writer
    stops before answering.
    """
    reply: pykka.Future[ClaimOutcome | None] = pykka.ThreadingFuture()
    ref.tell(QueuedClaim(request, reply))
    return reply


def request_issue(ref: pykka.ActorRef[Any], request: IssueRequest) -> pykka.Future[IssueOutcome]:
    """Ask the writer to count one blinded message against its claim's allowance (see `request_claim`).

    The verdict (granted, repeated, exhausted, revoked, unknown) is a value: only trouble with the
    database fails the future.
    """
    reply: pykka.Future[IssueOutcome] = pykka.ThreadingFuture()
    ref.tell(QueuedIssue(request, reply))
    return reply


def request_spend(ref: pykka.ActorRef[Any], request: SpendRequest) -> pykka.Future[bool]:
    """Ask the writer to record a spend: True for the first, False for a second (see `request_claim`)."""
    reply: pykka.Future[bool] = pykka.ThreadingFuture()
    ref.tell(QueuedSpend(request, reply))
    return reply


Asked = TypeVar("Asked")
Answer = TypeVar("Answer")


def ask_writer(
    actors: ActorLocator,
    send: Callable[[pykka.ActorRef[Any], Asked], pykka.Future[Answer]],
    request: Asked,
    timeout: float,
) -> Answer:
    """`send` (`request_claim`, `request_issue`, `request_spend`) to the current writer and its answer
    within `timeout` seconds. A writer that is gone, restarting or slow is `Unavailable` (storage),
    the contract's 503, the same for every request thread that writes."""
    ref = actors.ref("storage_writer")
    try:
        if ref is None:
            raise pykka.ActorDeadError("no storage writer")
        future = send(ref, request)
    except pykka.ActorDeadError:
        raise Unavailable("storage writer is restarting", component="storage") from None
    return wait(future, timeout, "storage writer", "storage")


class StorageWriter(pykka.ThreadingActor):
    def __init__(self, open_store: Callable[[], Store], access: AccessPolicy | None = None) -> None:
        """`access`: the paid-time policy (ACCESS_SECONDS_PER_PAYMENT), applied to every claim and
        poll this writer makes, so no caller can forget it (docs/PROTOCOL.md §13)."""
        super().__init__()
        self._open_store = open_store
        self._access = access
        self._store: Store | None = None
        self._queued: dict[type[Queued], list[Any]] = {kind: [] for kind in _KINDS}
        self._flush_queued = False

    def _db(self) -> Store:
        # Private on purpose: Pykka's proxy introspection reads every public attribute.
        assert self._store is not None, "on_start has not run"
        return self._store

    def on_start(self) -> None:
        self._store = self._open_store()

    def on_stop(self) -> None:
        self._fail_waiting()
        if self._store is not None:
            self._store.close()
            self._store = None

    def on_failure(self, *_: object) -> None:
        self.on_stop()

    def on_receive(self, message: object) -> object:
        """Group commit: claims (and issuances, spends) are gathered while more messages wait, then
        committed together, one transaction per kind.

        With an empty inbox a write commits at once (no added latency when idle); under load the
        writes queued behind each other share one transaction and one fsync, and each caller is
        answered only after that commit.
        """
        if isinstance(message, _KINDS):
            self._queued[type(message)].append(message)
            if self.actor_inbox.empty():
                self._commit_all()
            elif not self._flush_queued:
                self._flush_queued = True
                self.actor_ref.tell(_FlushClaims())
            return None
        if isinstance(message, _FlushClaims):
            self._flush_queued = False
            self._commit_all()
            return None
        return super().on_receive(message)

    def _commit_all(self) -> None:
        store = self._db()
        self._commit(QueuedClaim, self._claim_many)
        self._commit(QueuedIssue, store.issue_many)
        self._commit(QueuedSpend, store.spend_many)

    def _claim_many(self, requests: list[ClaimRequest]) -> list[ClaimOutcome | None]:
        """Claims under this writer's access policy: the claim starts the paid time (§13)."""
        return self._db().claim_many(
            [dataclasses.replace(request, access=self._access) for request in requests]
        )

    def _commit(self, kind: type[Queued], write: Callable[[list[Any]], list[Any]]) -> None:
        batch, self._queued[kind] = self._queued[kind], []
        if not batch:
            return
        try:
            outcomes = write([queued.request for queued in batch])
        except AnonTicketError:
            # Expected trouble (disk full, database locked): every waiting caller answers 503,
            # and the writer lives on.
            for queued in batch:
                queued.reply.set_exception(sys.exc_info())
            return
        except Exception:
            for queued in batch:
                queued.reply.set_exception(sys.exc_info())
            raise  # a bug: crash, and let the supervisor restart the writer
        for queued, outcome in zip(batch, outcomes, strict=True):
            queued.reply.set(outcome)

    def _fail_waiting(self) -> None:
        """Nobody may wait for an answer that will never come: fail writes not yet committed."""
        dead = (ActorDeadError, ActorDeadError("the storage writer stopped before the write"), None)
        for kind in _KINDS:
            waiting, self._queued[kind] = self._queued[kind], []
            for queued in waiting:
                queued.reply.set_exception(dead)
        # Writes still in the inbox would be dropped silently by Pykka (they carry their own reply).
        others = []
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            if isinstance(envelope.message, _KINDS):
                envelope.message.reply.set_exception(dead)
            else:
                others.append(envelope)
        for envelope in others:
            self.actor_inbox.put(envelope)

    def ping(self) -> bool:
        return True

    @refusals_as_values
    def claim(self, pid: PaymentId, now: int, min_amount: int, min_confirmations: int) -> ClaimOutcome | None:
        return self._db().claim(pid, now, min_amount, min_confirmations)

    @refusals_as_values
    def revoke(self, token_digest: bytes, reason: str | None, now: int) -> ClaimRecord | None:
        return self._db().revoke(token_digest, reason, now)

    @refusals_as_values
    def bind_wallet(self, address: str) -> None:
        self._db().bind_wallet(address)

    @refusals_as_values
    def start_scan(self, height: int) -> MonitorState:
        return self._db().start_scan(height)

    @refusals_as_values
    def rescan_from(self, height: int, reset_highest: int | None = None) -> MonitorState:
        """The operator's rescan through the daemon (`POST /api/v1/rescan`): the one writer makes it.

        A poll already under way finds the cursor moved and is dropped (`CursorMoved`); the next
        one starts from `height`. `RescanRefused` goes back to the caller as a value (no traceback
        in the log: actors/refusal.py) and the writer lives on.
        """
        before = self._db().monitor_state()
        state = self._db().rescan_from(height, reset_highest)
        log.warning(
            "operator rescan: scan cursor moved from %s to %s (floor %s)",
            before.scan_cursor,
            state.scan_cursor,
            state.scan_floor,
        )
        if reset_highest is not None:
            log.warning(
                "operator rescan: highest wallet height lowered from %s to %s",
                before.highest_height,
                state.highest_height,
            )
        return state

    @refusals_as_values
    def apply_poll(
        self,
        reported: list[ReportedTransfer],
        *,
        wallet_height: int,
        min_height: int,
        expected_cursor: int | None,
        polled_at: int,
        min_confirmations: int,
    ) -> BatchOutcome:
        """Plan against the stored window and apply it with the cursor, in one transaction.

        The writer asks no other actor: the wallet poller has put the batch's payment ids on the
        PID screen before it sent this message (see `WalletPoller._poll`).
        """
        plan = plan_changes(reported, self._db().unsettled_transfers(), min_height, wallet_height)
        _log_flagged(plan.upserts)
        outcome = self._db().apply_batch(
            TransferBatch(
                upserts=plan.upserts,
                gone=plan.gone,
                wallet_height=wallet_height,
                settle_at_or_below=min_height,
                expected_cursor=expected_cursor,
                # A poll never moves the cursor down: only `rescan --from` does (docs/PROTOCOL.md §9).
                new_cursor=max(wallet_height, expected_cursor or 0),
                polled_at=polled_at,
                min_confirmations=min_confirmations,
                access=self._access,
            )
        )
        for payment_id in outcome.revoked:
            log.warning("payment %s… fell below its minimum (reorg): token revoked", payment_id.hex()[:6])
        for payment_id in outcome.reinstated:
            log.info("payment %s… stands again: token reinstated", payment_id.hex()[:6])
        return outcome


def _log_flagged(upserts: tuple[tuple[bytes, Transfer], ...]) -> None:
    """docs/PROTOCOL.md §3: locked and double-spent transfers are recorded for the operator, never counted."""
    for payment_id, transfer in upserts:
        reasons = []
        if transfer.flags & TransferFlag.LOCKED:
            reasons.append("a non-zero unlock_time")
        if transfer.flags & TransferFlag.DOUBLE_SPEND:
            reasons.append("a double spend seen")
        if reasons:
            log.warning(
                "transfer %s… for payment %s… has %s: recorded, not counted",
                transfer.txid.hex()[:12],
                payment_id.hex()[:6],
                " and ".join(reasons),
            )


class StorageWriterProxy(ActorMemberMixin, pykka.ActorProxy[StorageWriter]):
    ping = proxy_method(StorageWriter.ping)
    claim = proxy_method(StorageWriter.claim)
    revoke = proxy_method(StorageWriter.revoke)
    bind_wallet = proxy_method(StorageWriter.bind_wallet)
    start_scan = proxy_method(StorageWriter.start_scan)
    rescan_from = proxy_method(StorageWriter.rescan_from)
    apply_poll = proxy_method(StorageWriter.apply_poll)
