"""Real Monero end to end: the daemon as a subprocess against a real regtest chain and real wallets.

`python -m anon_ticket` runs as a child process on real sockets, polling the merchant's real
monero-wallet-rpc; the payer's real wallet pays integrated addresses built by the buyer's client; blocks
are mined explicitly to move confirmations. The chain is the session's `regtest_chain` (booted once);
each test gets a fresh database and starts scanning at the chain's height at its start, so payments of
earlier tests are not read again.

Speed: a poll every 0.5 s, 2 confirmations, 0.1 XMR minimum. Every wait polls with a deadline; the
daemon's progress is observed through its internal status (`wallet.height` is published only after
the poll at that height was committed).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from anon_ticket.client.address import integrated_address
from anon_ticket.core.domain import ChainPaymentId, PaymentId
from anon_ticket.core.payments import TransferFlag
from tests.support.buyer import expected_token, run_client, start_client
from tests.support.daemon import DaemonProcess
from tests.support.regtest import RegtestChain, RpcCallError
from tests.support.waiting import wait_for

pytestmark = pytest.mark.regtest

T = TypeVar("T")

XMR = 10**12
MIN_AMOUNT = XMR // 10  # 0.1 XMR
CONFIRMATIONS = 2
POLL_INTERVAL = 0.5
INTERNAL_TOKEN = "regtest-e2e-internal-token-0123456789"
WAIT = 30.0  # seconds for anything the daemon should do within a few polls
NO_WALLET_OPEN = -13


# -- one shop: the daemon, its database, and the buyer's view ----------------------------------------


class Shop:
    """The daemon (a child process) on a fresh database, scanning from the chain's height at creation."""

    def __init__(self, chain: RegtestChain, workdir: Path) -> None:
        self.chain = chain
        self.workdir = workdir
        self._to_mine: set[str] = set()
        self.mined_at: dict[str, int] = {}  # txid -> height of the block holding it
        self.start_height = chain.sync_wallets(chain.merchant)
        self.daemon = DaemonProcess(
            workdir,
            wallet_url=chain.merchant.url,
            env={
                "MONERO_RPC_TIMEOUT_SECS": "10",
                "MONERO_WALLET_FILE": chain.merchant.filename,
                "MONERO_WALLET_PASSWORD": chain.merchant.password,
                "MONITOR_POLL_INTERVAL_SECS": str(POLL_INTERVAL),
                "MONITOR_MIN_CONFIRMATIONS": str(CONFIRMATIONS),
                "MONITOR_START_HEIGHT": str(self.start_height),
                "MIN_PAYMENT_AMOUNT": str(MIN_AMOUNT),
                "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
            },
        )

    @property
    def db_path(self) -> Path:
        return self.daemon.database_path

    @contextlib.contextmanager
    def running(self) -> Iterator[Shop]:
        """Started and scanning; afterwards SIGTERM must stop it with exit code 0 and no traceback."""
        try:
            self.daemon.start()
            self.daemon.wait_scanning()
            yield self
        finally:
            code = self.daemon.stop()
        assert code == 0, f"exit code {code} on SIGTERM:\n{self.daemon.log_tail()}"
        assert "Traceback" not in self.daemon.log_text(), self.daemon.log_text()

    # -- HTTP ---------------------------------------------------------------------------------------

    def redeem(self, pid: PaymentId) -> tuple[int, dict[str, Any]]:
        response = self.daemon.redeem(pid)
        return response.status_code, response.json()

    def info(self) -> dict[str, Any]:
        response = self.daemon.public("GET", "/api/v1/info")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def token_record(self, token: str) -> dict[str, Any]:
        response = self.daemon.internal("GET", f"/api/v1/token/{token}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def status(self) -> dict[str, Any]:
        return self.daemon.status()

    # -- chain --------------------------------------------------------------------------------------

    def pay(self, pid: PaymentId, amount: int, unlock_time: int = 0) -> str:
        """The payer's real `transfer` to the integrated address of `pid`; the txid (to be mined)."""
        address = integrated_address(self.chain.merchant.address, pid.chain_payment_id())
        return self.to_mine(self.chain.payer.transfer(address, amount, unlock_time=unlock_time))

    def to_mine(self, txid: str) -> str:
        """The next `mine()` makes sure that `txid` (now in monerod's pool) is in its first block."""
        self._to_mine.add(txid)
        return txid

    def mine(self, n: int = 1, *, wait: bool = True) -> int:
        """Mine `n` blocks, the first holding every transfer paid since the last `mine()`; the new height.

        monerod's block template sometimes lags its pool (measured here: about 1 transfer in 12 was
        left out of the next `generateblocks` block and went into the one after). Then one more block
        is mined first, so that those transfers still have exactly `n` confirmations afterwards.
        With `wait`, until the daemon has committed a poll at the new height.
        """
        height = self.chain.mine(1)
        extra = 0
        while True:
            left = self._to_mine & set(self.chain.pool_txids())
            self.mined_at.update(dict.fromkeys(self._to_mine - left, height - 1))
            self._to_mine = left
            if not left:
                break
            extra += 1
            assert extra <= 3, f"monerod keeps leaving {sorted(left)} in its pool"
            height = self.chain.mine(1)
        if n > 1:
            height = self.chain.mine(n - 1)
        if wait:
            self.wait_polled(height)
        return height

    def wait_polled(self, height: int, timeout: float = WAIT) -> None:
        """Until the daemon has committed a poll that saw the wallet at exactly `height`.

        Exactly: after a reorg the chain may be shorter than what the daemon saw last.
        """

        def polled() -> bool | None:
            return True if self.status()["wallet"]["height"] == height else None

        self.waiting(f"the daemon polled at height {height}", polled, timeout)

    def restart(self, *, kill: bool) -> None:
        """SIGKILL (a crash) or SIGTERM, then the same daemon again on the same database and ports."""
        if kill:
            self.daemon.kill()
        else:
            assert self.daemon.stop() == 0, self.daemon.log_tail()
        self.daemon.start()
        self.daemon.wait_scanning()

    # -- waiting on the daemon ------------------------------------------------------------------------

    def waiting(self, what: str, check: Callable[[], T | None], timeout: float = WAIT) -> T:
        """`wait_for`, with the daemon's log tail in the failure."""
        try:
            return wait_for(what, check, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- daemon log ---\n{self.daemon.log_tail()}") from None

    def wait_redeem(self, pid: PaymentId, status: int, **expected: Any) -> dict[str, Any]:
        """Redeem until the answer has `status` and the `expected` fields; that body."""
        seen: list[tuple[int, dict[str, Any]]] = []

        def answered() -> dict[str, Any] | None:
            got, body = self.redeem(pid)
            seen.append((got, body))
            if got == status and all(body.get(k) == v for k, v in expected.items()):
                return body
            return None

        try:
            return self.waiting(f"redeem answering {status} {expected}", answered)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nlast answers: {seen[-3:]}") from None

    # -- the database file, read-only -----------------------------------------------------------------

    def transfer_rows(self, *pids: PaymentId) -> list[tuple[str, str, int, int, int]]:
        """(payment id, txid, amount, height, flags) of the `transfers` rows of these PIDs (all if none).

        The flags are as the wallet reports them: without COUNTED, the bit storage adds once a
        transfer has had its confirmations.
        """
        ids = {pid.chain_payment_id().hex() for pid in pids}
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT payment_id, txid, amount, height, flags FROM transfers").fetchall()
        found = [
            (ChainPaymentId(p).hex(), bytes(t).hex(), a, h, f & ~TransferFlag.COUNTED)
            for p, t, a, h, f in rows
        ]
        return sorted(row for row in found if not ids or row[0] in ids)


def ensure_merchant_wallet_open(chain: RegtestChain) -> None:
    """Leave the session's merchant wallet usable for the next tests (open, auto-refreshing)."""
    try:
        chain.merchant.height()
    except RpcCallError as exc:
        if exc.rpc_code != NO_WALLET_OPEN:
            raise
        chain.merchant.open()
    chain.merchant.enable_auto_refresh(1)


@pytest.fixture
def shop(regtest_chain: RegtestChain, tmp_path: Path) -> Iterator[Shop]:
    """A running daemon on a fresh database, scanning from the chain's current height.

    Afterwards: SIGTERM must stop it with exit code 0, its log must hold no traceback and no error, and
    nothing mined before its MONITOR_START_HEIGHT may be in its database.
    """
    with Shop(regtest_chain, tmp_path).running() as running:
        yield running
    log = running.daemon.log_text()
    assert " CRITICAL " not in log and " ERROR " not in log, log
    rows = running.transfer_rows() if running.db_path.exists() else []
    assert all(row[3] == 0 or row[3] >= running.start_height for row in rows), rows


# -- 1. the happy path, with the real client ---------------------------------------------------------


def test_client_address_matches_the_wallet_and_a_real_payment_is_redeemed(shop: Shop) -> None:
    chain, merchant = shop.chain, shop.chain.merchant
    info = shop.info()
    assert info["primary_address"] == merchant.address
    assert (info["min_payment_amount"], info["required_confirmations"]) == (MIN_AMOUNT, CONFIRMATIONS)

    pid_file = shop.workdir / "buyer.pid"
    made = run_client("new", "--server", shop.daemon.public_url, "--out", str(pid_file), "--json")
    assert made.returncode == 0, made.stderr
    new = json.loads(made.stdout)
    pid = PaymentId.parse(pid_file.read_text().strip())
    assert (pid_file.stat().st_mode & 0o777) == 0o600
    assert new["payment_id"] == pid.chain_payment_id().hex()
    assert new["amount"] == MIN_AMOUNT
    # The client's offline address is exactly what the real wallet builds for that payment id.
    assert new["integrated_address"] == merchant.make_integrated_address(new["payment_id"])

    status, body = shop.redeem(pid)
    assert (status, body["error"]) == (404, "payment_not_found")

    txid = shop.to_mine(chain.payer.transfer(new["integrated_address"], new["amount"]))
    pending = shop.wait_redeem(pid, 202)
    assert pending == {
        "status": "pending",
        "amount": MIN_AMOUNT,
        "confirmations": 0,
        "required_confirmations": CONFIRMATIONS,
    }
    shop.mine(1)
    assert shop.redeem(pid) == (202, {**pending, "confirmations": 1})

    shop.mine(1)
    status, claimed = shop.redeem(pid)
    assert status == 200, claimed
    token = expected_token(pid, txid)
    assert claimed == {
        "status": "claimed",
        "token": token,
        "amount": MIN_AMOUNT,
        "claimed_at": claimed["claimed_at"],
    }
    assert shop.redeem(pid) == (200, {**claimed, "status": "already_claimed"})
    record = shop.token_record(token)
    assert (record["status"], record["amount"], record["issued_at"]) == (
        "active",
        MIN_AMOUNT,
        claimed["claimed_at"],
    )

    # The buyer's client, end to end: reads the PID file, checks /info, prints the same token.
    redeemed = run_client(
        "redeem", "--server", shop.daemon.public_url, "--pid-file", str(pid_file),
        "--timeout", "30", "--poll-interval", "0.2",
    )  # fmt: skip
    assert redeemed.returncode == 0, redeemed.stderr
    assert redeemed.stdout.strip() == token


# -- 2. two partial payments add up, for a client that waits from the start ------------------------


def test_two_partial_payments_add_up_for_a_waiting_client(shop: Shop) -> None:
    pid = PaymentId.generate()
    pid_file = shop.workdir / "buyer.pid"
    pid_file.write_text(pid.hex() + "\n")
    pid_file.chmod(0o600)
    client = start_client(
        "redeem", "--server", shop.daemon.public_url, "--pid-file", str(pid_file),
        "--timeout", "90", "--poll-interval", "0.2", "--json",
    )  # fmt: skip
    try:
        first = shop.pay(pid, 6 * MIN_AMOUNT // 10)
        shop.wait_redeem(pid, 202, amount=6 * MIN_AMOUNT // 10, confirmations=0)
        shop.mine(1)
        second = shop.pay(pid, 5 * MIN_AMOUNT // 10)
        # The first counts (2 confirmations) but is short; the second is still one block short.
        shop.mine(1)
        assert shop.redeem(pid) == (
            202,
            {
                "status": "pending",
                "amount": 11 * MIN_AMOUNT // 10,
                "confirmations": 1,
                "required_confirmations": CONFIRMATIONS,
            },
        )
        assert client.poll() is None, "the client stopped waiting while the payment was pending"
        shop.mine(1)
        out, err = client.communicate(timeout=WAIT)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    assert client.returncode == 0, err
    answer = json.loads(out)
    # Both transfers count; the token is bound to the earlier one (lower height).
    assert answer["token"] == expected_token(pid, first) != expected_token(pid, second)
    assert (answer["status"], answer["amount"]) == ("claimed", 11 * MIN_AMOUNT // 10)
    assert "pending" in err
    assert shop.redeem(pid) == (200, {**answer, "status": "already_claimed"})


# -- 3. an underpayment -----------------------------------------------------------------------------


def test_underpayment_is_refused_once_confirmed(shop: Shop) -> None:
    pid = PaymentId.generate()
    short = 4 * MIN_AMOUNT // 10
    shop.pay(pid, short)
    shop.wait_redeem(pid, 202, amount=short, confirmations=0)
    shop.mine(CONFIRMATIONS)
    status, body = shop.redeem(pid)
    assert status == 402, body
    assert (body["error"], body["amount"], body["min_payment_amount"]) == (
        "insufficient_payment",
        short,
        MIN_AMOUNT,
    )
    pid_file = shop.workdir / "buyer.pid"
    pid_file.write_text(pid.hex())
    pid_file.chmod(0o600)
    refused = run_client(
        "redeem", "--server", shop.daemon.public_url, "--pid-file", str(pid_file),
        "--timeout", "30", "--poll-interval", "0.2", "--json",
    )  # fmt: skip
    assert refused.returncode == 4, refused.stderr
    assert json.loads(refused.stdout)["error"] == "insufficient_payment"


# -- 4. a payment after the claim -------------------------------------------------------------------


def test_payment_after_the_claim_raises_the_tokens_amount(shop: Shop) -> None:
    pid = PaymentId.generate()
    txid = shop.pay(pid, MIN_AMOUNT)
    shop.mine(CONFIRMATIONS)
    claimed = shop.wait_redeem(pid, 200)
    token = expected_token(pid, txid)
    assert (claimed["status"], claimed["token"], claimed["amount"]) == ("claimed", token, MIN_AMOUNT)

    extra = MIN_AMOUNT // 2
    later = shop.pay(pid, extra)
    shop.waiting("the top-up in the database", lambda: True if len(shop.transfer_rows(pid)) == 2 else None)
    assert shop.token_record(token)["amount"] == MIN_AMOUNT  # pending: not credited yet
    shop.mine(1)
    assert shop.token_record(token)["amount"] == MIN_AMOUNT  # one confirmation short
    shop.mine(1)
    record = shop.token_record(token)
    assert record == {
        "token": token,
        "status": "active",
        "amount": MIN_AMOUNT + extra,
        "issued_at": claimed["claimed_at"],
        "revoked_at": None,
        "revoke_reason": None,
        # Privacy Pass: 100 tokens per minimum payment (the default), the top-up in proportion.
        "private_tokens": {"allowance": 150, "issued": 0},
    }
    # The claim txid and the token never change; the replay reports the new amount.
    assert shop.redeem(pid) == (
        200,
        {**claimed, "status": "already_claimed", "amount": MIN_AMOUNT + extra},
    )
    assert {row[1] for row in shop.transfer_rows(pid)} == {txid, later}


# -- 5. reorgs ----------------------------------------------------------------------------------------


def test_reorg_that_mines_the_payment_again_never_revokes(shop: Shop) -> None:
    """Pop the blocks and mine the same transaction again: confirmations fall, the token stays."""
    chain = shop.chain
    pid = PaymentId.generate()
    txid = shop.pay(pid, MIN_AMOUNT)
    shop.mine(CONFIRMATIONS)
    claimed = shop.wait_redeem(pid, 200)
    assert chain.pop_blocks(CONFIRMATIONS) == shop.mined_at[txid]
    assert txid in chain.pool_txids()  # popped blocks give their transactions back to the pool
    shop.to_mine(txid)
    shop.mine(1)  # the same transaction, now with 1 confirmation of the 2 required
    status, body = shop.redeem(pid)
    assert status == 200, body
    assert (body["status"], body["token"], body["claimed_at"]) == (
        "already_claimed",
        claimed["token"],
        claimed["claimed_at"],
    )
    assert shop.token_record(claimed["token"])["status"] == "active"
    shop.mine(1)
    assert shop.redeem(pid) == (200, {**claimed, "status": "already_claimed"})
    ((_, stored_txid, amount, height, flags),) = shop.transfer_rows(pid)
    assert (stored_txid, amount, height, flags) == (txid, MIN_AMOUNT, shop.mined_at[txid], 0)


def test_reorg_that_drops_the_payment_revokes_the_token_until_it_is_mined_again(shop: Shop) -> None:
    chain = shop.chain
    pid = PaymentId.generate()
    txid = shop.pay(pid, MIN_AMOUNT)
    shop.mine(CONFIRMATIONS)
    claimed = shop.wait_redeem(pid, 200)
    token = expected_token(pid, txid)
    assert claimed["token"] == token
    (raw_tx,) = chain.daemon_http("/get_transactions", txs_hashes=[txid])["txs"]

    # The payer must not relay the transaction again while it is out of the chain (REGTEST.md).
    chain.payer.call("auto_refresh", enable=False)
    try:
        assert chain.pop_blocks(CONFIRMATIONS) == shop.mined_at[txid]
        chain.flush_txpool([txid])
        assert txid not in chain.pool_txids()
        shop.mine(CONFIRMATIONS + 1)  # a longer chain without the transaction
        assert txid not in chain.pool_txids()
        with pytest.raises(RpcCallError) as gone:
            chain.merchant.call("get_transfer_by_txid", txid=txid)
        assert gone.value.rpc_code == -8
        refused = shop.wait_redeem(pid, 410)
        assert (refused["error"], refused["reason"]) == ("token_revoked", "payment_reorged")
        record = shop.token_record(token)
        assert (record["status"], record["revoke_reason"], record["amount"]) == (
            "revoked",
            "payment_reorged",
            0,
        )
        assert record["revoked_at"] is not None
        ((_, _, amount, _, flags),) = shop.transfer_rows(pid)
        assert amount == MIN_AMOUNT and flags & TransferFlag.GONE

        # The same transaction relayed and mined again: the token is reinstated. (While it is back in
        # the pool the real wallet may not list it at all: it remembers having scanned that txid in
        # the pool before, so no pending state is checked here.)
        chain.daemon_http("/send_raw_transaction", tx_as_hex=raw_tx["as_hex"], do_not_relay=False)
        shop.to_mine(txid)
        shop.mine(CONFIRMATIONS)
        assert shop.redeem(pid) == (200, {**claimed, "status": "already_claimed"})
        record = shop.token_record(token)
        assert (record["status"], record["amount"], record["revoked_at"], record["revoke_reason"]) == (
            "active",
            MIN_AMOUNT,
            None,
            None,
        )
    finally:
        chain.payer.enable_auto_refresh(1)


# -- 6. a time-locked transfer ----------------------------------------------------------------------


def test_transfer_with_unlock_time_is_never_counted(shop: Shop) -> None:
    pid = PaymentId.generate()
    unlock_at = shop.chain.height() + 1000  # a block height: locked far beyond this test
    txid = shop.pay(pid, 2 * MIN_AMOUNT, unlock_time=unlock_at)
    shop.mine(CONFIRMATIONS + 1)

    def recorded() -> tuple[str, str, int, int, int] | None:
        rows = shop.transfer_rows(pid)
        return rows[0] if rows and rows[0][3] > 0 else None

    # Recorded for the operator (confirmed, flagged locked) ...
    row = shop.waiting("the locked transfer in the database", recorded)
    assert row[1:3] == (txid, 2 * MIN_AMOUNT) and row[4] & TransferFlag.LOCKED
    # ... but invisible to redeem, however many confirmations it has.
    status, body = shop.redeem(pid)
    assert (status, body["error"]) == (404, "payment_not_found")


# -- 7. the merchant's wallet-rpc restarted, with payments made while it was down -------------------


def wallet_view(chain: RegtestChain, txid: str) -> tuple[str, str, int, int, int]:
    """The merchant wallet's own record of `txid`, shaped like `Shop.transfer_rows`."""
    entry = chain.merchant.call("get_transfer_by_txid", txid=txid)["transfer"]
    return (entry["payment_id"], txid, entry["amount"], entry["height"], 0)


def test_merchant_wallet_rpc_restart_misses_and_doubles_nothing(shop: Shop) -> None:
    chain = shop.chain
    early = PaymentId.generate()
    early_tx = shop.pay(early, MIN_AMOUNT)
    shop.mine(CONFIRMATIONS)
    claimed = shop.wait_redeem(early, 200)

    late = [PaymentId.generate() for _ in range(2)]
    try:
        # Killed, not stopped: the wallet file is not saved, so the wallet scans those blocks again.
        wallet_pid = chain.merchant.pid
        assert wallet_pid is not None
        os.kill(wallet_pid, signal.SIGKILL)
        chain.merchant.process.reap()
        shop.waiting("the daemon noticing", lambda: shop.status()["wallet"]["last_error"])
        late_txs = [shop.pay(pid, MIN_AMOUNT) for pid in late]
        top_up = shop.pay(early, MIN_AMOUNT // 2)
        height = shop.mine(CONFIRMATIONS, wait=False)
        down_at = time.monotonic()
        chain.merchant.start_process()
        chain.merchant.wait_ready()  # no wallet open (-13) until the daemon's open_wallet
        shop.wait_polled(height, timeout=90)
        recovered_after = time.monotonic() - down_at
    finally:
        if not chain.merchant.process.running():
            chain.merchant.start_process()
            chain.merchant.wait_ready()
        ensure_merchant_wallet_open(chain)
    print(f"\nwallet-rpc restart: daemon polling again {recovered_after:.1f} s after the wallet-rpc start")
    assert "reopened wallet file" in shop.daemon.log_text()
    assert shop.status()["wallet"]["last_error"] is None

    for pid, txid in zip(late, late_txs, strict=True):
        body = shop.wait_redeem(pid, 200)
        assert (body["status"], body["token"], body["amount"]) == (
            "claimed",
            expected_token(pid, txid),
            MIN_AMOUNT,
        )
    assert shop.redeem(early) == (
        200,
        {**claimed, "status": "already_claimed", "amount": MIN_AMOUNT + MIN_AMOUNT // 2},
    )
    assert shop.token_record(claimed["token"])["amount"] == MIN_AMOUNT + MIN_AMOUNT // 2
    # Exactly one row per transfer the wallet reports, with the wallet's amounts and heights.
    expected = sorted(wallet_view(chain, txid) for txid in (early_tx, top_up, *late_txs))
    assert shop.transfer_rows(early, *late) == expected


# -- 8. the daemon killed with SIGKILL ---------------------------------------------------------------


def test_daemon_sigkill_loses_and_doubles_nothing(shop: Shop) -> None:
    chain = shop.chain
    first = PaymentId.generate()
    paid: dict[PaymentId, list[str]] = {first: [shop.pay(first, MIN_AMOUNT)]}
    shop.mine(CONFIRMATIONS)
    claimed = shop.wait_redeem(first, 200)
    shop.daemon.kill()  # at once after the answer: a claim is durable before its token is returned

    # While it is dead: a new payment and a top-up of the claimed one.
    while_dead = PaymentId.generate()
    paid[while_dead] = [shop.pay(while_dead, MIN_AMOUNT)]
    paid[first].append(shop.pay(first, MIN_AMOUNT // 2))
    shop.mine(1, wait=False)
    shop.daemon.start()
    shop.daemon.wait_scanning()

    # More crashes at random points of the 0.5 s poll cycle, each with a new block and payment to apply.
    rng = random.Random()
    for _ in range(3):
        pid = PaymentId.generate()
        paid[pid] = [shop.pay(pid, MIN_AMOUNT)]
        shop.mine(1, wait=False)
        time.sleep(rng.uniform(0.0, 2 * POLL_INTERVAL))
        shop.restart(kill=True)
    shop.mine(CONFIRMATIONS)

    # The claimed token survived every crash and was credited the top-up paid while the daemon was dead.
    total = MIN_AMOUNT + MIN_AMOUNT // 2
    assert shop.redeem(first) == (200, {**claimed, "status": "already_claimed", "amount": total})
    record = shop.token_record(claimed["token"])
    assert (record["status"], record["amount"], record["issued_at"]) == (
        "active",
        total,
        claimed["claimed_at"],
    )
    for pid, txids in paid.items():
        if pid is not first:
            body = shop.wait_redeem(pid, 200)
            assert (body["status"], body["token"], body["amount"]) == (
                "claimed",
                expected_token(pid, txids[0]),
                MIN_AMOUNT,
            )
    # Exactly one row per transfer the wallet reports, with the wallet's amounts and heights.
    expected = sorted(wallet_view(chain, txid) for txids in paid.values() for txid in txids)
    assert shop.transfer_rows(*paid) == expected
