"""What a get_transfers answer becomes (docs/PROTOCOL.md §3), on shapes captured from the real wallet."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.core.payments import Transfer, TransferFlag
from anon_ticket.errors import WalletUnreachable
from anon_ticket.wallet.ingest import height_fault, parse_transfers, plan_changes, scan_window

SAMPLES = Path(__file__).resolve().parent / "support" / "samples"


def sample(name: str) -> dict[str, Any]:
    """The `result` of a wallet answer captured on real regtest (tests/support/samples/README.md)."""
    result: dict[str, Any] = json.loads((SAMPLES / name).read_text())["response"]["result"]
    return result


def test_an_integrated_payment_in_the_pool() -> None:
    result = sample("get_transfers_pool_integrated_random.json")
    [item] = parse_transfers(result)
    entry = result["pool"][0]
    assert item.payment_id.hex() == entry["payment_id"]
    assert item.transfer == Transfer(bytes.fromhex(entry["txid"]), entry["amount"], 0, 0)


def test_a_confirmed_integrated_payment() -> None:
    result = sample("get_transfers_integrated_random_1conf.json")
    [item] = parse_transfers(result)
    entry = result["in"][0]
    assert item.transfer.height == entry["height"] > 0


def test_subaddress_payments_are_ignored() -> None:
    result = sample("get_transfers_pool_explicit_pid_and_subaddress.json")
    parsed = parse_transfers(result)
    assert all(item.payment_id != bytes(8) for item in parsed)
    zero = [e for kind in ("in", "pool") for e in result.get(kind, []) if e["payment_id"] == "0" * 16]
    assert zero, "the sample should hold a subaddress payment"


def test_in_wins_over_pool_right_after_a_reorg() -> None:
    result = sample("reorg_2_after_pop.json")
    [item] = parse_transfers(result)
    assert item.transfer.height == result["in"][0]["height"]
    assert item.transfer.amount == result["in"][0]["amount"] > 0


def test_unlock_time_and_double_spend_are_flagged() -> None:
    entry = dict(sample("get_transfers_integrated_random_1conf.json")["in"][0])
    entry.update(unlock_time=300, double_spend_seen=True)
    [item] = parse_transfers({"in": [entry]})
    assert item.transfer.flags == TransferFlag.LOCKED | TransferFlag.DOUBLE_SPEND


def test_an_unlock_time_beyond_64_signed_bits_is_recorded_as_locked() -> None:
    """A payer chooses unlock_time (uint64): 2**64 - 1 was accepted, mined and listed on real regtest."""
    entry = dict(sample("get_transfers_integrated_random_1conf.json")["in"][0])
    entry["unlock_time"] = 2**64 - 1
    [item] = parse_transfers({"in": [entry]})
    assert item.transfer.flags == TransferFlag.LOCKED


def test_entries_that_are_not_ours_are_skipped_before_their_fields_are_judged() -> None:
    entry = dict(sample("get_transfers_integrated_random_1conf.json")["in"][0])
    odd = {**entry, "payment_id": "0" * 16, "unlock_time": -1, "amount": "lots", "txid": None}
    assert parse_transfers({"in": [odd, entry]})[0].transfer.amount == entry["amount"]


def test_other_accounts_and_long_payment_ids_are_not_ours() -> None:
    entry = dict(sample("get_transfers_integrated_random_1conf.json")["in"][0])
    other_account = {**entry, "subaddr_index": {"major": 1, "minor": 0}}
    long_id = {**entry, "payment_id": "ab" * 32}
    assert parse_transfers({"in": [other_account, long_id]}) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.pop("txid"),
        lambda e: e.update(txid="zz" * 32),
        lambda e: e.update(amount="1000"),
        lambda e: e.update(amount=-1),
        lambda e: e.update(height=None),
        lambda e: e.update(double_spend_seen="no"),
        lambda e: e.pop("subaddr_index"),
        lambda e: e.update(payment_id=7),
    ],
)
def test_garbage_rejects_the_whole_answer(damage: Any) -> None:
    result = copy.deepcopy(sample("get_transfers_integrated_random_1conf.json"))
    good = copy.deepcopy(result["in"][0])
    damage(result["in"][0])
    result["in"].append(good)
    with pytest.raises(WalletUnreachable):
        parse_transfers(result)


@pytest.mark.parametrize("result", [None, [], {"in": {}}, {"pool": "x"}, {"in": [1]}])
def test_malformed_results_are_rejected(result: object) -> None:
    with pytest.raises(WalletUnreachable):
        parse_transfers(result)


def test_an_empty_answer_is_nothing() -> None:
    assert parse_transfers(sample("get_transfers_min_height_equal_tx_height_EXCLUSIVE.json")) == []


PID = b"\x11" * 8
TX_A, TX_B = b"\xaa" * 32, b"\xbb" * 32


def test_plan_upserts_only_what_changed_and_marks_the_vanished() -> None:
    [reported_a] = parse_transfers({"in": [_entry(TX_A, height=150)]})
    unsettled = [(PID, Transfer(TX_A, 5, 150)), (PID, Transfer(TX_B, 5, 0))]
    plan = plan_changes([reported_a], unsettled, min_height=120)
    assert plan.upserts == ()
    assert plan.gone == ((PID, TX_B),)


def test_plan_ignores_stored_transfers_below_the_window_and_already_gone() -> None:
    unsettled = [(PID, Transfer(TX_A, 5, 100)), (PID, Transfer(TX_B, 5, 150, TransferFlag.GONE))]
    assert plan_changes([], unsettled, min_height=120).gone == ()


def test_the_scan_window() -> None:
    assert scan_window(floor=1, cursor=1000, wallet_height=1000, rescan_depth=30) == 970
    assert scan_window(floor=990, cursor=1000, wallet_height=1000, rescan_depth=30) == 989
    # After an outage longer than the window, the scan reaches back to the cursor.
    assert scan_window(floor=1, cursor=500, wallet_height=1000, rescan_depth=30) == 499
    assert scan_window(floor=0, cursor=0, wallet_height=5, rescan_depth=30) == 0


def _entry(txid: bytes, height: int) -> dict[str, Any]:
    return {
        "amount": 5,
        "double_spend_seen": False,
        "height": height,
        "payment_id": PID.hex(),
        "subaddr_index": {"major": 0, "minor": 0},
        "txid": txid.hex(),
        "type": "in",
        "unlock_time": 0,
    }


def test_a_height_far_below_the_highest_or_below_the_floor_is_a_wallet_fault() -> None:
    assert height_fault(1000, floor=100, highest=1003, rescan_depth=30) is None
    assert height_fault(973, floor=100, highest=1003, rescan_depth=30) is None  # a reorg's reach
    message = height_fault(500, floor=100, highest=1003, rescan_depth=30)
    assert message is not None and "503 blocks below" in message and "until it reaches 973" in message
    message = height_fault(90, floor=100, highest=None, rescan_depth=30)
    assert message is not None and "below the scan floor 100" in message
    assert height_fault(100, floor=100, highest=None, rescan_depth=30) is None
    assert height_fault(5, floor=None, highest=None, rescan_depth=30) is None  # nothing seen yet


def test_transfers_in_blocks_the_wallet_has_not_scanned_are_not_judged_gone() -> None:
    a, b = b"\x0a" * 8, b"\x0b" * 8
    unsettled = [(a, Transfer(b"\x01" * 32, 5, 150)), (b, Transfer(b"\x02" * 32, 5, 158))]
    # The wallet is at 155 (resyncing, or just after a reorg): block 158 is not scanned yet.
    plan = plan_changes([], unsettled, min_height=120, wallet_height=155)
    assert plan.gone == ((a, b"\x01" * 32),)
    # Once past it, silence about it means it is gone.
    assert len(plan_changes([], unsettled, min_height=120, wallet_height=159).gone) == 2
