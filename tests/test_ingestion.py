"""docs/PROTOCOL.md §3 through the real poller, storage writer and database, against a scriptable wallet.

Each test reads like a rule of the contract: the wallet does something, the daemon polls, and the
redeem answer (or the stored state) shows what the rule says.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import TokenStatus
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import CONFIRMATIONS, MIN_AMOUNT, Pipeline, pipeline_config


def pay(wallet: FakeWallet, pid: PaymentId, amount: int = MIN_AMOUNT, **kwargs: object) -> str:
    return wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=amount, **kwargs)  # type: ignore[arg-type]


def test_a_pool_payment_is_pending_then_counts_after_the_confirmations(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    pid = PaymentId.generate()
    pay(wallet, pid)
    assert pipeline.poll().ok
    assert pipeline.redeem(pid) == (
        202,
        {
            "status": "pending",
            "amount": MIN_AMOUNT,
            "confirmations": 0,
            "required_confirmations": CONFIRMATIONS,
        },
    )
    wallet.mine(CONFIRMATIONS - 1)
    pipeline.poll()
    status, body = pipeline.redeem(pid)
    assert (status, body["confirmations"]) == (202, CONFIRMATIONS - 1)
    wallet.mine(1)
    pipeline.poll()
    status, body = pipeline.redeem(pid)
    assert status == 200 and body["status"] == "claimed" and body["amount"] == MIN_AMOUNT


def test_subaddress_payments_and_other_accounts_are_ignored(wallet: FakeWallet, pipeline: Pipeline) -> None:
    wallet.add_confirmed(payment_id="0" * 16, amount=MIN_AMOUNT, confirmations=20, subaddr_minor=1)
    pid = PaymentId.generate()
    wallet.add_confirmed(
        payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20, subaddr_major=1
    )
    pipeline.poll()
    assert pipeline.transfer_rows() == []
    assert pipeline.redeem(pid)[0] == 404


def test_partial_payments_add_up(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pid = PaymentId.generate()
    payment_id = pid.chain_payment_id().hex()
    wallet.add_confirmed(payment_id=payment_id, amount=MIN_AMOUNT // 2, confirmations=20)
    pipeline.poll()
    assert pipeline.redeem(pid) == (
        402,
        {"error": "insufficient_payment", "amount": MIN_AMOUNT // 2, "min_payment_amount": MIN_AMOUNT},
    )
    wallet.add_pool(payment_id=payment_id, amount=MIN_AMOUNT // 2)
    pipeline.poll()
    assert pipeline.redeem(pid)[1]["amount"] == MIN_AMOUNT  # pending shows everything visible
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    status, body = pipeline.redeem(pid)
    assert (status, body["amount"]) == (200, MIN_AMOUNT)


def test_a_payment_after_the_claim_raises_the_amount_of_the_same_token(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    pipeline.poll()
    _, first = pipeline.redeem(pid)
    pay(wallet, pid, amount=5)
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    status, replay = pipeline.redeem(pid)
    assert status == 200 and replay["status"] == "already_claimed"
    assert replay["token"] == first["token"] and replay["claimed_at"] == first["claimed_at"]
    assert replay["amount"] == MIN_AMOUNT + 5


def test_unlock_time_payments_are_recorded_but_never_count(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pid = PaymentId.generate()
    wallet.add_confirmed(
        payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20, unlock_time=10
    )
    pipeline.poll()
    assert len(pipeline.transfer_rows()) == 1
    assert pipeline.redeem(pid)[0] == 404


def test_a_double_spend_flag_hides_and_revokes(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pid = PaymentId.generate()
    txid = wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    pipeline.poll()
    assert pipeline.redeem(pid)[0] == 200
    wallet.flag_double_spend(txid)
    pipeline.poll()
    claim = pipeline.claim_of(pid)
    assert claim is not None and claim.status is TokenStatus.REORGED
    assert pipeline.redeem(pid) == (410, {"error": "token_revoked", "reason": "payment_reorged"})


@pytest.mark.parametrize("pool_entry", [True, False], ids=["listed-twice", "listed-once"])
def test_the_observed_reorg_sequence_revokes_then_a_remined_tx_reinstates(
    wallet: FakeWallet, pipeline: Pipeline, pool_entry: bool
) -> None:
    pid = PaymentId.generate()
    txid = pay(wallet, pid)
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    status, claimed = pipeline.redeem(pid)
    assert status == 200
    # Right after pop_blocks the wallet still lists the tx under `in`, and (only if it never saw it
    # in the pool) again under `pool` with amount 0: `in` wins either way.
    wallet.pop_blocks(CONFIRMATIONS, pool_entry=pool_entry)
    pipeline.poll()
    assert pipeline.redeem(pid)[1]["amount"] == MIN_AMOUNT
    claim = pipeline.claim_of(pid)
    assert claim is not None and claim.status is TokenStatus.ACTIVE
    # Flushed and re-mined without it: gone from both lists, the token is revoked.
    wallet.flush_pool([txid])
    wallet.mine(1)
    pipeline.poll()
    assert pipeline.redeem(pid) == (410, {"error": "token_revoked", "reason": "payment_reorged"})
    # The same transaction is mined again later: pending while young, then reinstated.
    wallet.add_pool(txid, payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT)
    pipeline.poll()
    assert pipeline.redeem(pid)[0] == 202
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    status, again = pipeline.redeem(pid)
    assert status == 200 and again["token"] == claimed["token"] and again["status"] == "already_claimed"


def test_falling_confirmations_alone_never_revoke(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pid = PaymentId.generate()
    pay(wallet, pid)
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    assert pipeline.redeem(pid)[0] == 200
    wallet.pop_blocks(CONFIRMATIONS)
    wallet.mine(1)  # the wallet sees the shorter chain; the tx is mined again at once
    pipeline.poll()
    claim = pipeline.claim_of(pid)
    assert claim is not None and claim.status is TokenStatus.ACTIVE
    # ... nor take counted money away: the token's amount does not fall to 0 meanwhile.
    status, body = pipeline.redeem(pid)
    assert (status, body["status"], body["amount"]) == (200, "already_claimed", MIN_AMOUNT)


def test_polls_ask_the_rescan_window_with_an_exclusive_min_height(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    pipeline.poll()
    first, latest = wallet.params_of("get_transfers")[0], wallet.params_of("get_transfers")[-1]
    assert first["min_height"] == 99  # MONITOR_START_HEIGHT 100 is inclusive, min_height exclusive
    assert latest["min_height"] == 200 - 30
    wallet.mine(200)
    pipeline.poll()  # catching up from the cursor (200) ...
    assert wallet.params_of("get_transfers")[-1]["min_height"] == 199
    pipeline.poll()  # ... then the steady window: wallet height - MONITOR_RESCAN_DEPTH
    assert wallet.params_of("get_transfers")[-1]["min_height"] == 400 - 30
    params = wallet.params_of("get_transfers")[-1]
    assert params["in"] and params["pool"] and params["filter_by_height"]


def test_transfers_below_the_start_height_are_not_asked_for(tmp_path: Path, wallet: FakeWallet) -> None:
    old = PaymentId.generate()
    new = PaymentId.generate()
    wallet.add_confirmed(payment_id=old.chain_payment_id().hex(), amount=MIN_AMOUNT, height=149)
    wallet.add_confirmed(payment_id=new.chain_payment_id().hex(), amount=MIN_AMOUNT, height=150)
    running = Pipeline(pipeline_config(tmp_path / "s.db", wallet.url, MONITOR_START_HEIGHT="150"))
    try:
        running.poll()
        assert running.redeem(old)[0] == 404
        assert running.redeem(new)[0] == 200
    finally:
        running.close()


def test_without_a_start_height_the_first_poll_starts_at_the_wallet_height(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    running = Pipeline(pipeline_config(tmp_path / "s.db", wallet.url))
    try:
        running.poll()
        state = running.state()
        assert (state.scan_floor, state.scan_cursor, state.wallet_height) == (200, 200, 200)
    finally:
        running.close()


def test_a_restart_resumes_from_the_cursor_missing_nothing_and_doubling_nothing(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    config = pipeline_config(tmp_path / "r.db", wallet.url, MONITOR_START_HEIGHT="100")
    first = Pipeline(config)
    early = PaymentId.generate()
    pay(wallet, early)
    wallet.mine(CONFIRMATIONS)
    first.poll()
    first.close()
    # While the daemon is down the chain moves far past the rescan window, with payments on the way.
    pids = [PaymentId.generate() for _ in range(5)]
    for pid in pids:
        pay(wallet, pid)
        wallet.mine(40)
    second = Pipeline(config)
    try:
        second.poll()
        assert len(second.transfer_rows()) == 6
        for pid in [early, *pids]:
            assert second.redeem(pid)[0] == 200
        second.poll()
        second.poll()
        assert len(second.transfer_rows()) == 6
    finally:
        second.close()


def test_a_different_wallet_is_refused(tmp_path: Path, wallet: FakeWallet) -> None:
    config = pipeline_config(tmp_path / "w.db", wallet.url)
    first = Pipeline(config)
    first.poll()
    first.close()
    with FakeWallet(address=wallet.address[:-4] + "AAAA") as other:
        second = Pipeline(pipeline_config(tmp_path / "w.db", other.url))
        try:
            report = second.poll()
            assert not report.ok and "belongs to the wallet" in (report.error or "")
            assert second.daemon.fatal.message is not None
        finally:
            second.close()


@pytest.mark.parametrize("fault", ["down", "garbage", "no_wallet", "slow", "error"])
def test_wallet_trouble_records_nothing_and_recovers(
    wallet: FakeWallet, pipeline: Pipeline, fault: str
) -> None:
    pipeline.poll()
    before = pipeline.state()
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    if fault == "down":
        wallet.set_down(True)
    elif fault == "garbage":
        wallet.set_garbage(True)
    elif fault == "no_wallet":
        wallet.set_no_wallet(True)
    elif fault == "slow":
        wallet.set_delay(3.0, "get_transfers")
    else:
        wallet.fail_next("get_transfers", times=1)
    report = pipeline.poll()
    assert not report.ok and report.error
    assert pipeline.state() == before
    assert pipeline.transfer_rows() == []
    assert pipeline.daemon.published.wallet.last_error
    wallet.set_down(False)
    wallet.set_garbage(False)
    wallet.set_no_wallet(False)
    wallet.set_delay(0.0, "get_transfers")
    assert pipeline.poll().ok
    assert pipeline.redeem(pid)[0] == 200
    assert pipeline.daemon.published.wallet.last_error is None


def reopening_pipeline(tmp_path: Path, wallet: FakeWallet) -> Pipeline:
    """The actors with MONERO_WALLET_FILE set: a wallet-rpc that lost its wallet is told to open it."""
    return Pipeline(
        pipeline_config(
            tmp_path / "o.db", wallet.url, MONERO_WALLET_FILE="merchant", MONERO_WALLET_PASSWORD=""
        )
    )


def test_a_restarted_wallet_rpc_is_reopened_when_the_wallet_file_is_configured(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    running = reopening_pipeline(tmp_path, wallet)
    try:
        running.poll()
        wallet.set_no_wallet(True)
        assert not running.poll().ok
        assert wallet.calls["open_wallet"] == 1
        assert running.poll().ok
    finally:
        running.close()


def test_a_wallet_that_takes_longer_than_the_call_deadline_to_open_is_still_reopened(
    tmp_path: Path, wallet: FakeWallet, caplog: pytest.LogCaptureFixture
) -> None:
    """Loading the wallet file is slow (seconds of CPU in real wallet-rpc): the daemon waits for it.

    Given up at MONERO_RPC_TIMEOUT_SECS (2 s here), the open completed in wallet-rpc anyway while the
    daemon logged that it could not reopen the wallet and backed off for longer.
    """
    running = reopening_pipeline(tmp_path, wallet)
    try:
        running.poll()
        wallet.set_no_wallet(True)
        wallet.set_delay(3.0, "open_wallet")
        with caplog.at_level(logging.INFO, logger="anon_ticket.actors.wallet_poller"):
            assert not running.poll().ok  # the -13 poll, which reopens the wallet
        assert wallet.calls["open_wallet"] == 1 and not wallet.no_wallet
        assert "reopened wallet file merchant" in caplog.text
        assert "could not reopen" not in caplog.text
        assert running.poll().ok
        assert wallet.calls["open_wallet"] == 1
    finally:
        running.close()


def test_rescan_moves_the_cursor_back_and_the_next_poll_starts_there(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    wallet.mine(100)
    pipeline.poll()
    pipeline.poll()
    pipeline.daemon.database.open_writer().rescan_from(120)
    pipeline.poll()
    assert wallet.params_of("get_transfers")[-1]["min_height"] == 119


def test_a_first_claim_after_a_reorg_waits_for_the_confirmations_again(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    pid = PaymentId.generate()
    pay(wallet, pid)
    wallet.mine(CONFIRMATIONS + 1)
    pipeline.poll()  # counted once, not redeemed yet
    wallet.pop_blocks(CONFIRMATIONS + 1)
    wallet.mine(1)  # the same tx mined again: 1 confirmation
    pipeline.poll()
    status, body = pipeline.redeem(pid)
    assert (status, body["status"], body["confirmations"]) == (202, "pending", 1)


def test_a_claimed_transfer_that_vanishes_revokes_even_with_another_payment_pending(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    """docs/PROTOCOL.md §3: the counted total decides; a large pool payment does not count yet."""
    pid = PaymentId.generate()
    first = pay(wallet, pid)
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    assert pipeline.redeem(pid)[0] == 200
    pay(wallet, pid, amount=MIN_AMOUNT * 5)  # a second payment, waiting in the pool
    wallet.pop_blocks(CONFIRMATIONS)
    wallet.flush_pool([first])
    wallet.mine(1, txids=[])  # the claimed transaction is gone for good
    pipeline.poll()
    claim = pipeline.claim_of(pid)
    assert claim is not None and claim.status is TokenStatus.REORGED
    assert pipeline.redeem(pid) == (410, {"error": "token_revoked", "reason": "payment_reorged"})
    wallet.mine(CONFIRMATIONS)  # the other payment confirms: the token stands again, same as before
    pipeline.poll()
    status, body = pipeline.redeem(pid)
    assert (status, body["status"], body["amount"]) == (200, "already_claimed", MIN_AMOUNT * 5)
