"""The admin panel's figures from storage, on SQLite and PostgreSQL alike (docs/PROTOCOL.md §5).

Daily figures come from the times storage keeps (when a claim was made, when the poller first saw a
transfer and when it counted), and the funds report from amounts and flags: never a PID or a token.
"""

from __future__ import annotations

from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer, TransferFlag
from anon_ticket.storage.protocols import DayTotals, PendingSpan, Store
from tests.support.stores import CONF, MIN, TX1, TX2, TX3, batch
from tests.test_store_contract import db, store  # noqa: F401 (the fixtures, parametrised by backend)

DAY = 86_400
DAY0 = 1_800_000_000 // DAY  # a UTC day number
T0 = DAY0 * DAY  # its midnight


def _pid() -> tuple[PaymentId, bytes]:
    pid = PaymentId.generate()
    return pid, pid.chain_payment_id().raw


def test_first_seen_is_kept_and_counted_at_is_the_poll_that_counted(store: Store) -> None:  # noqa: F811
    _, payment_id = _pid()
    batch(store, [(payment_id, Transfer(TX1, 500, 0))], height=200, polled_at=T0 + 100)
    assert store.pending_spans(T0) == [PendingSpan(payment_id, T0 + 100, None)]
    batch(store, [(payment_id, Transfer(TX1, 500, 201))], height=205, polled_at=T0 + 200)
    assert store.pending_spans(T0) == [PendingSpan(payment_id, T0 + 100, None)]  # 4 of 10 confirmations
    batch(store, [(payment_id, Transfer(TX1, 500, 201))], height=211, polled_at=T0 + DAY + 300)
    assert store.pending_spans(T0) == [PendingSpan(payment_id, T0 + 100, T0 + DAY + 300)]
    assert store.pending_spans(T0 + DAY + 300) == []  # counted before `since`, and no longer waiting
    assert store.day_totals(T0, T0 + 2 * DAY) == [DayTotals(DAY0 + 1, 0, 500, 1)]


def test_day_totals_count_claims_and_counted_xmr_per_utc_day(store: Store) -> None:  # noqa: F811
    first, first_id = _pid()
    second, second_id = _pid()
    _, third_id = _pid()
    batch(
        store,
        [(first_id, Transfer(TX1, MIN, 150)), (second_id, Transfer(TX2, MIN + 5, 150))],
        polled_at=T0 + 10,
    )
    batch(store, [(third_id, Transfer(TX3, 7, 150))], height=201, polled_at=T0 + DAY + 10)
    assert store.claim(first, T0 + 50, MIN, CONF) is not None
    assert store.claim(second, T0 + 2 * DAY + 1, MIN, CONF) is not None
    assert store.day_totals(T0, T0 + 3 * DAY) == [
        DayTotals(DAY0, claims=1, counted_amount=2 * MIN + 5, counted_transfers=2),
        DayTotals(DAY0 + 1, claims=0, counted_amount=7, counted_transfers=1),
        DayTotals(DAY0 + 2, claims=1, counted_amount=0, counted_transfers=0),
    ]
    # The window is half-open and in whole seconds.
    assert store.day_totals(T0 + DAY, T0 + 2 * DAY) == [DayTotals(DAY0 + 1, 0, 7, 1)]
    assert store.day_totals(T0 + 51, T0 + DAY) == []


def test_a_transfer_that_disappears_no_longer_counts_in_the_figures(store: Store) -> None:  # noqa: F811
    _, payment_id = _pid()
    batch(store, [(payment_id, Transfer(TX1, 900, 150))], polled_at=T0 + 10)
    assert store.day_totals(T0, T0 + DAY) == [DayTotals(DAY0, 0, 900, 1)]
    batch(store, gone=[(payment_id, TX1)], height=201, polled_at=T0 + 20)
    assert store.day_totals(T0, T0 + DAY) == []
    # Mined again and confirmed: counted once more, at the poll that counted it again.
    batch(store, [(payment_id, Transfer(TX1, 900, 195))], height=205, polled_at=T0 + DAY + 5)
    batch(store, [(payment_id, Transfer(TX1, 900, 195))], height=206, polled_at=T0 + DAY + 6)
    assert store.day_totals(T0, T0 + 2 * DAY) == [DayTotals(DAY0 + 1, 0, 900, 1)]


def test_underpaid_payments_are_those_fully_counted_below_the_minimum(store: Store) -> None:  # noqa: F811
    _, short_id = _pid()
    _, split_id = _pid()
    _, waiting_id = _pid()
    _, enough_id = _pid()
    claimed, claimed_id = _pid()
    _, locked_id = _pid()
    batch(
        store,
        [
            (short_id, Transfer(TX1, MIN - 1, 150)),
            (split_id, Transfer(TX1, 100, 140)),
            (split_id, Transfer(TX2, 200, 160)),
            (waiting_id, Transfer(TX1, 5, 150)),
            (waiting_id, Transfer(TX2, 5, 0)),  # still in the pool: may yet reach the minimum
            (enough_id, Transfer(TX1, MIN, 150)),
            (claimed_id, Transfer(TX1, MIN, 150)),
            (locked_id, Transfer(TX1, 3, 150, TransferFlag.LOCKED)),
        ],
        polled_at=T0 + 10,
    )
    assert store.claim(claimed, T0 + 20, MIN, CONF) is not None
    batch(store, [(claimed_id, Transfer(TX2, 4, 150))], polled_at=T0 + 30)  # credited to the token
    report = store.underpaid_payments(CONF, MIN, 10)
    assert (report.count, report.total_amount) == (2, MIN - 1 + 300)
    assert [
        (p.payment_id, p.counted_total, p.transfers, p.last_height, p.first_seen_at) for p in report.items
    ] == [
        (short_id, MIN - 1, 1, 150, T0 + 10),
        (split_id, 300, 2, 160, T0 + 10),
    ]
    top = store.underpaid_payments(CONF, MIN, 1)
    assert (len(top.items), top.count, top.total_amount) == (1, 2, MIN - 1 + 300)
    assert store.underpaid_payments(CONF, 300, 10).count == 0  # at a lower minimum both are redeemable


def test_never_counted_lists_locked_and_double_spent_transfers_with_totals(store: Store) -> None:  # noqa: F811
    _, a = _pid()
    _, b = _pid()
    _, c = _pid()
    batch(
        store,
        [
            (a, Transfer(TX1, 11, 150, TransferFlag.LOCKED)),
            (b, Transfer(TX2, 22, 0, TransferFlag.DOUBLE_SPEND)),
            (c, Transfer(TX3, 33, 160, TransferFlag.LOCKED)),
            (c, Transfer(TX1, 44, 160)),
        ],
        polled_at=T0 + 7,
    )
    report = store.never_counted(10)
    assert (report.count, report.total_amount) == (3, 66)
    assert [(n.payment_id, n.transfer.txid, n.transfer.amount, n.first_seen_at) for n in report.items] == [
        (b, TX2, 22, T0 + 7),  # the pool first
        (c, TX3, 33, T0 + 7),  # then the newest
        (a, TX1, 11, T0 + 7),
    ]
    assert report.items[0].transfer.flags & TransferFlag.DOUBLE_SPEND
    batch(store, gone=[(a, TX1)], height=201, polled_at=T0 + 8)
    assert store.never_counted(1).count == 2  # a transfer that vanished is no money received
    assert store.never_counted(10).items[-1].payment_id == c


def test_empty_figures(store: Store) -> None:  # noqa: F811
    assert store.day_totals(0, 2**40) == []
    assert store.pending_spans(0) == []
    assert store.underpaid_payments(CONF, MIN, 10).items == []
    assert store.never_counted(10).count == 0
