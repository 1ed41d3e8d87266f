"""The regtest harness against real monerod / monero-wallet-rpc, and the fake wallet checked against them."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from monero import address as monero_address

from tests.support.fake_wallet import FakeWallet
from tests.support.regtest import RegtestChain, RpcCallError, json_rpc
from tests.support.shapes import shape

pytest_plugins = ("tests.support.fixtures",)

pytestmark = pytest.mark.regtest

XMR = 10**12
POLL = {"in": True, "pool": True, "filter_by_height": True}


def entries(answer: dict[str, Any], txid: str) -> dict[str, list[dict[str, Any]]]:
    """The entries of `txid` in a get_transfers answer, per list."""
    return {kind: [e for e in answer.get(kind, []) if e["txid"] == txid] for kind in ("in", "pool")}


def view(answer: dict[str, Any], txid: str) -> dict[str, list[tuple[int, int | None]]]:
    """(amount, confirmations) of `txid` per list: what a reorg test compares between real and fake."""
    return {
        kind: [(e["amount"], e.get("confirmations")) for e in found]
        for kind, found in entries(answer, txid).items()
    }


def test_payment_goes_from_pool_to_confirmed_with_the_fakes_shapes(regtest_chain: RegtestChain) -> None:
    chain, merchant = regtest_chain, regtest_chain.merchant
    payment_id = secrets.token_hex(8)
    integrated = merchant.make_integrated_address(payment_id)
    assert str(monero_address.address(merchant.address).with_payment_id(payment_id)) == integrated

    started = time.monotonic()
    txid = chain.payer.transfer(integrated, 2 * XMR)
    pooled = chain.wait_for_pool(merchant, txid)
    assert pooled["payment_id"] == payment_id and pooled["amount"] == 2 * XMR
    assert pooled["type"] == "pool" and pooled["height"] == 0 and "confirmations" not in pooled
    assert pooled["address"] == merchant.address and pooled["subaddr_index"] == {"major": 0, "minor": 0}

    height = chain.mine(1, include=[txid])  # in the top block
    chain.sync_wallets(merchant)
    answer = merchant.get_transfers(**POLL, min_height=height - 2)
    (confirmed,) = entries(answer, txid)["in"]
    assert entries(answer, txid)["pool"] == []
    assert (
        confirmed["height"] == height - 1 and confirmed["confirmations"] == 1 and confirmed["locked"] is True
    )
    assert merchant.height() == height
    seen_after = time.monotonic() - started

    chain.mine(9)
    chain.sync_wallets(merchant)
    (unlocked,) = entries(merchant.get_transfers(**{"in": True}), txid)["in"]
    assert unlocked["confirmations"] == 10 and unlocked["locked"] is False

    # The fake answers with exactly the real wallet's keys and value types.
    with FakeWallet(address=merchant.address, height=height - 1) as fake:
        fake_txid = fake.add_pool(payment_id=payment_id, amount=2 * XMR)
        assert shape(fake.get_transfers(pool=True)["pool"][0]) == shape(pooled)
        fake.mine()
        (fake_confirmed,) = entries(fake.get_transfers(**POLL, min_height=height - 2), fake_txid)["in"]
        assert shape(fake_confirmed) == shape(confirmed)
        assert {k: v for k, v in fake_confirmed.items() if k not in ("txid", "timestamp", "fee")} == {
            k: v for k, v in confirmed.items() if k not in ("txid", "timestamp", "fee")
        }
    print(f"\nregtest: payment confirmed and seen {seen_after:.2f} s after transfer; boot {chain.timings}")


def test_min_height_is_exclusive_on_the_real_wallet(regtest_chain: RegtestChain) -> None:
    chain, merchant = regtest_chain, regtest_chain.merchant
    txid = chain.payer.transfer(merchant.make_integrated_address(secrets.token_hex(8)), XMR)
    chain.mine(1, include=[txid])
    chain.sync_wallets(merchant)
    [entry] = entries(merchant.get_transfers(**{"in": True}), txid)["in"]
    tx_height = int(entry["height"])

    def listed(**params: Any) -> bool:
        return bool(entries(merchant.get_transfers(**{"in": True, **params}), txid)["in"])

    assert not listed(filter_by_height=True, min_height=tx_height)
    assert listed(filter_by_height=True, min_height=tx_height - 1)
    assert listed(filter_by_height=True, min_height=tx_height - 1, max_height=tx_height)
    assert not listed(filter_by_height=True, min_height=tx_height - 2, max_height=tx_height - 1)


def test_reorg_sequence_matches_the_fake(regtest_chain: RegtestChain) -> None:
    """Pop, flush, re-mine without the transfer: the real wallet and the fake list the same things."""
    chain, merchant = regtest_chain, regtest_chain.merchant
    merchant.call("auto_refresh", enable=False)  # it must not scan the pool before the transfer is mined
    try:
        txid = chain.payer.transfer(merchant.make_integrated_address(secrets.token_hex(8)), XMR)
        height = chain.mine(1, include=[txid])  # the transfer is in the top block
        merchant.refresh()
        window = {**POLL, "min_height": height - 2}
        with FakeWallet(address=merchant.address, height=height - 1) as fake:
            fake_txid = fake.add_pool(payment_id="00000000000000aa", amount=XMR)
            fake.mine()
            steps: list[tuple[str, Any, Any]] = []

            def step(name: str) -> None:
                real = view(merchant.get_transfers(**window), txid)
                steps.append((name, real, view(fake.get_transfers(**window), fake_txid)))

            step("mined")
            chain.pop_blocks(1)
            fake.pop_blocks(1)
            step("popped")
            chain.flush_txpool([txid])
            fake.flush_pool([fake_txid])
            step("flushed")
            merchant.refresh()
            fake.apply_refresh()
            step("flushed+refreshed")
            chain.mine(1)
            merchant.refresh()
            fake.mine()
            step("re-mined without it")
            with pytest.raises(RpcCallError) as gone:
                merchant.call("get_transfer_by_txid", txid=txid)
            assert gone.value.rpc_code == -8
        for name, real, faked in steps:
            assert real == faked, name
        assert steps[1][1] == {"in": [(XMR, 1)], "pool": [(0, None)]}  # listed twice, pool amount 0
        assert steps[-1][1] == {"in": [], "pool": []}
    finally:
        merchant.enable_auto_refresh(1)


def test_restarted_wallet_rpc_answers_minus_13_until_open_wallet(regtest_chain: RegtestChain) -> None:
    chain, merchant = regtest_chain, regtest_chain.merchant
    old_pid = merchant.pid
    chain.restart_merchant_wallet()
    assert merchant.pid != old_pid and old_pid not in chain.pids
    with pytest.raises(RpcCallError) as no_wallet:
        merchant.height()
    with FakeWallet(no_wallet=True) as fake, pytest.raises(RpcCallError) as fake_no_wallet:
        json_rpc(fake.url, "get_height")
    assert (no_wallet.value.rpc_code, no_wallet.value.message) == (-13, "No wallet file")
    assert (fake_no_wallet.value.rpc_code, fake_no_wallet.value.message) == (-13, "No wallet file")
    merchant.open()
    assert chain.sync_wallets(merchant) == merchant.height()
