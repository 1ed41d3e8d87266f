"""The storage writer: every database write in the daemon is a message to this one actor.

SQLite allows one writer at a time; making that writer an actor turns lock contention into a queue,
and gives the supervisor one thing to restart if the connection breaks. `__init__` runs in the
creating thread and only stores arguments; the connection is opened in `on_start`, in the actor's
own thread, and every method below runs in that thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from anon_ticket.domain import PaymentId
from anon_ticket.ingest import ReportedTransfer, plan_changes
from anon_ticket.payments import Transfer, TransferFlag
from anon_ticket.storage.base import (
    BatchOutcome,
    ClaimOutcome,
    ClaimRecord,
    MonitorState,
    Store,
    TransferBatch,
)

log = logging.getLogger(__name__)

ScreenAdder = Callable[[Iterable[bytes]], None]


class StorageWriter(pykka.ThreadingActor):
    def __init__(self, open_store: Callable[[], Store], add_to_screen: ScreenAdder) -> None:
        super().__init__()
        self._open_store = open_store
        self._add_to_screen = add_to_screen
        self._store: Store | None = None

    def _db(self) -> Store:
        # Private on purpose: Pykka's proxy introspection reads every public attribute.
        assert self._store is not None, "on_start has not run"
        return self._store

    def on_start(self) -> None:
        self._store = self._open_store()

    def on_stop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def on_failure(self, *_: object) -> None:
        self.on_stop()

    def ping(self) -> bool:
        return True

    def claim(
        self, pid: PaymentId, now: int, min_amount: int, min_confirmations: int
    ) -> ClaimOutcome | None:
        return self._db().claim(pid, now, min_amount, min_confirmations)

    def revoke(self, token_digest: bytes, reason: str | None, now: int) -> ClaimRecord | None:
        return self._db().revoke(token_digest, reason, now)

    def bind_wallet(self, address: str) -> None:
        self._db().bind_wallet(address)

    def start_scan(self, height: int) -> MonitorState:
        return self._db().start_scan(height)

    def rescan_from(self, height: int) -> MonitorState:
        return self._db().rescan_from(height)

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

        New payment ids reach the PID screen *before* the commit: once a redeem can see the
        payment in storage, the screen already lets it through.
        """
        plan = plan_changes(reported, self._db().unsettled_transfers(), min_height)
        payment_ids = {payment_id for payment_id, _ in plan.upserts}
        _log_flagged(plan.upserts)
        self._add_to_screen(payment_ids)
        outcome = self._db().apply_batch(
            TransferBatch(
                upserts=plan.upserts,
                gone=plan.gone,
                wallet_height=wallet_height,
                settle_at_or_below=min_height,
                expected_cursor=expected_cursor,
                new_cursor=wallet_height,
                polled_at=polled_at,
                min_confirmations=min_confirmations,
            )
        )
        # Once more after the commit (adding is idempotent): a PID cache that restarted between the
        # first add and the commit rebuilt its screen without these ids.
        self._add_to_screen(payment_ids)
        for payment_id in outcome.revoked:
            log.warning("payment %s… fell below its minimum (reorg): token revoked", payment_id.hex()[:6])
        for payment_id in outcome.reinstated:
            log.info("payment %s… stands again: token reinstated", payment_id.hex()[:6])
        return outcome


def _log_flagged(upserts: tuple[tuple[bytes, Transfer], ...]) -> None:
    """CONTRACT §3: locked and double-spent transfers are recorded for the operator, never counted."""
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
