"""Helpers for storage tests: a poll batch and a paid payment, in as few words as the tests need."""

from __future__ import annotations

from collections.abc import Sequence

from anon_ticket.core.access_time import AccessPolicy
from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer
from anon_ticket.storage.protocols import BatchOutcome, Store, TransferBatch

MIN = 1000
CONF = 10
TX1, TX2, TX3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def batch(
    store: Store,
    upserts: Sequence[tuple[bytes, Transfer]] = (),
    gone: Sequence[tuple[bytes, bytes]] = (),
    height: int = 200,
    settle: int = 0,
    polled_at: int = 1_800_000_000,
    access: AccessPolicy | None = None,
) -> BatchOutcome:
    state = store.monitor_state()
    if state.scan_cursor is None:
        state = store.start_scan(100)
    return store.apply_batch(
        TransferBatch(
            upserts=tuple(upserts),
            gone=tuple(gone),
            wallet_height=height,
            settle_at_or_below=settle,
            expected_cursor=state.scan_cursor,
            new_cursor=height,
            polled_at=polled_at,
            min_confirmations=CONF,
            access=access,
        )
    )


def paid(store: Store, amount: int = MIN, height: int = 150, txid: bytes = TX1) -> PaymentId:
    pid = PaymentId.generate()
    batch(store, [(pid.chain_payment_id().raw, Transfer(txid, amount, height))])
    return pid
