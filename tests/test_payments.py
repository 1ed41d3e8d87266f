"""docs/PROTOCOL.md §3 payment rules over plain values: counting, pending, hidden, reorgs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.core.payments import (
    TokenStatus,
    Transfer,
    TransferFlag,
    evaluate,
    reorg_decision,
)

TX_A, TX_B, TX_C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


def test_confirmations_come_from_heights() -> None:
    assert Transfer(TX_A, 5, 100).confirmations(110) == 10
    assert Transfer(TX_A, 5, 0).confirmations(110) == 0  # in the pool
    assert Transfer(TX_A, 5, 120).confirmations(110) == 0  # wallet behind the stored height


def test_a_transfer_counts_at_the_required_confirmations() -> None:
    view = evaluate([Transfer(TX_A, 7, 100)], wallet_height=109, min_confirmations=10)
    assert (view.counted_total, view.pending_count, view.fewest_pending_confirmations) == (0, 1, 9)
    view = evaluate([Transfer(TX_A, 7, 100)], wallet_height=110, min_confirmations=10)
    assert (view.counted_total, view.pending_count, view.earliest_counted_txid) == (7, 0, TX_A)


def test_locked_double_spent_and_gone_transfers_are_invisible() -> None:
    transfers = [
        Transfer(TX_A, 1, 100, TransferFlag.LOCKED),
        Transfer(TX_B, 2, 0, TransferFlag.DOUBLE_SPEND),
        Transfer(TX_C, 4, 100, TransferFlag.GONE),
    ]
    view = evaluate(transfers, 200, 10)
    assert (view.counted_total, view.visible_total, view.pending_count) == (0, 0, 0)


def test_partial_payments_add_up_and_the_earliest_counted_is_chosen() -> None:
    transfers = [Transfer(TX_C, 3, 101), Transfer(TX_B, 3, 100), Transfer(TX_A, 3, 101), Transfer(TX_A, 9, 0)]
    view = evaluate(transfers, 120, 10)
    assert view.counted_total == 9
    assert view.visible_total == 18
    assert view.pending_count == 1 and view.fewest_pending_confirmations == 0
    assert view.earliest_counted_txid == TX_B


def test_ties_in_height_go_to_the_lowest_txid_bytes() -> None:
    view = evaluate([Transfer(TX_C, 1, 100), Transfer(TX_A, 1, 100)], 200, 1)
    assert view.earliest_counted_txid == TX_A


def test_falling_confirmations_never_revoke() -> None:
    transfers = [Transfer(TX_A, 10, 0, TransferFlag.COUNTED)]  # counted, then popped back into the pool
    view = evaluate(transfers, 100, 10, claimed=True)
    assert reorg_decision(TokenStatus.ACTIVE, 10, view) is TokenStatus.ACTIVE


def test_a_disappeared_transfer_below_the_claim_minimum_revokes() -> None:
    transfers = [Transfer(TX_A, 10, 100, TransferFlag.GONE)]
    view = evaluate(transfers, 200, 10, claimed=True)
    assert reorg_decision(TokenStatus.ACTIVE, 10, view) is TokenStatus.REORGED


def test_an_unconfirmed_payment_does_not_hold_up_a_claim_whose_transfer_vanished() -> None:
    """docs/PROTOCOL.md §3: the counted total decides; a pending transfer, however large, does not count."""
    transfers = [Transfer(TX_A, 10, 100, TransferFlag.GONE), Transfer(TX_B, 50, 0)]
    view = evaluate(transfers, 200, 10, claimed=True)
    assert reorg_decision(TokenStatus.ACTIVE, 10, view) is TokenStatus.REORGED


def test_reinstated_only_when_counted_again_and_never_an_operator_revocation() -> None:
    pending = [Transfer(TX_A, 10, 195)]
    counted = [Transfer(TX_A, 10, 150)]
    for status, transfers, expected in [
        (TokenStatus.REORGED, pending, TokenStatus.REORGED),
        (TokenStatus.REORGED, counted, TokenStatus.ACTIVE),
        (TokenStatus.REVOKED, counted, TokenStatus.REVOKED),
        (TokenStatus.REVOKED, [], TokenStatus.REVOKED),
    ]:
        view = evaluate(transfers, 200, 10, claimed=True)
        assert reorg_decision(status, 10, view) is expected


amounts = st.integers(min_value=0, max_value=10**13)
heights = st.integers(min_value=0, max_value=1000)
flags = st.sampled_from([0, 1, 2, 4, 3, 7])


@given(st.lists(st.tuples(amounts, heights, flags), max_size=12), heights, st.integers(1, 30))
def test_totals_partition_the_visible_transfers(
    items: list[tuple[int, int, int]], height: int, conf: int
) -> None:
    transfers = [Transfer(i.to_bytes(32, "big"), a, h, f) for i, (a, h, f) in enumerate(items)]
    view = evaluate(transfers, height, conf)
    visible = [t for t in transfers if t.visible]
    assert view.visible_total == sum(t.amount for t in visible)
    counted = [t for t in visible if t.height and height - t.height >= conf]
    assert view.counted_total == sum(t.amount for t in counted)
    assert view.pending_count == len(visible) - len(counted)


def test_for_a_claimed_payment_a_transfer_that_counted_once_keeps_counting_while_visible() -> None:
    remined = Transfer(TX_A, 10, 199, TransferFlag.COUNTED)  # 1 confirmation after a reorg
    in_pool = Transfer(TX_B, 10, 0, TransferFlag.COUNTED)  # popped back into the pool
    view = evaluate([remined, in_pool], 200, 10, claimed=True)
    assert (view.counted_total, view.pending_count) == (20, 0)
    assert view.earliest_counted_txid == TX_A  # a mined transfer before one in the pool
    hidden = Transfer(TX_C, 10, 150, TransferFlag.COUNTED | TransferFlag.GONE)
    assert evaluate([hidden], 200, 10, claimed=True).counted_total == 0


def test_a_first_claim_needs_the_confirmations_now() -> None:
    """The sticky bit is for tokens already issued: an unclaimed payment waits for its confirmations."""
    remined = Transfer(TX_A, 10, 199, TransferFlag.COUNTED)
    view = evaluate([remined], 200, 10)
    assert (view.counted_total, view.pending_count, view.fewest_pending_confirmations) == (0, 1, 1)


def test_as_reported_drops_only_the_storage_bit() -> None:
    stored = Transfer(TX_A, 1, 5, TransferFlag.COUNTED | TransferFlag.LOCKED)
    assert stored.as_reported() == Transfer(TX_A, 1, 5, TransferFlag.LOCKED)
