"""The SQLite store on real files: claims, revocations, batches, binding, durability, secrecy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from anon_ticket.domain import PaymentId, TxId
from anon_ticket.errors import CursorMoved, WalletMismatch
from anon_ticket.payments import TokenStatus, Transfer, TransferFlag
from anon_ticket.storage.base import TransferBatch
from anon_ticket.storage.database import Database
from anon_ticket.storage.sqlite import SqliteStore, connect

MIN = 1000
CONF = 10
TX1, TX2, TX3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def batch(
    store: SqliteStore,
    upserts: list[tuple[bytes, Transfer]] = (),  # type: ignore[assignment]
    gone: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    height: int = 200,
    settle: int = 0,
    new_cursor: int | None = None,
) -> object:
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
            new_cursor=height if new_cursor is None else new_cursor,
            polled_at=1_800_000_000,
            min_confirmations=CONF,
        )
    )


def paid(store: SqliteStore, amount: int = MIN, height: int = 150, txid: bytes = TX1) -> PaymentId:
    pid = PaymentId.generate()
    batch(store, [(pid.chain_payment_id().raw, Transfer(txid, amount, height))])
    return pid


def test_a_schema_is_in_place_with_wal_and_normal_sync(database: Database) -> None:
    conn = connect(database.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"transfers", "claims", "monitor_state", "schema_migrations"} <= tables
    conn.close()


def test_first_claim_binds_the_earliest_counted_transfer(store: SqliteStore) -> None:
    pid = PaymentId.generate()
    payment_id = pid.chain_payment_id().raw
    batch(store, [(payment_id, Transfer(TX2, 600, 150)), (payment_id, Transfer(TX1, 600, 160))])
    outcome = store.claim(pid, 1_800_000_100, MIN, CONF)
    assert outcome is not None and outcome.fresh
    assert outcome.record.claim_txid == TX2
    assert outcome.token == pid.service_token(TxId(TX2))
    assert outcome.record.token_digest == outcome.token.digest().raw
    assert outcome.amount == 1200
    replay = store.claim(pid, 1_800_000_999, MIN, CONF)
    assert replay is not None and not replay.fresh
    assert replay.token == outcome.token
    assert replay.record.claimed_at == 1_800_000_100


def test_nothing_is_claimed_below_the_minimum_or_confirmations(store: SqliteStore) -> None:
    short = paid(store, amount=MIN - 1)
    young = paid(store, height=195, txid=TX2)
    assert store.claim(short, 1, MIN, CONF) is None
    assert store.claim(young, 1, MIN, CONF) is None
    assert store.claim_for(short.chain_payment_id().raw) is None


def test_concurrent_claims_on_separate_connections_make_one_claim(
    database: Database, store: SqliteStore
) -> None:
    pid = paid(store)
    stores = [SqliteStore(database.path) for _ in range(8)]
    results: list[object] = []
    barrier = threading.Barrier(len(stores))

    def claim(s: SqliteStore) -> None:
        barrier.wait()
        results.append(s.claim(pid, 1_800_000_000, MIN, CONF))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    fresh = [r for r in results if r is not None and r.fresh]  # type: ignore[attr-defined]
    assert len(fresh) == 1
    assert len({r.token for r in results}) == 1  # type: ignore[attr-defined]


def test_revocation_rules(store: SqliteStore) -> None:
    pid = paid(store)
    outcome = store.claim(pid, 10, MIN, CONF)
    assert outcome is not None
    digest = outcome.token.digest().raw
    first = store.revoke(digest, "abuse", 20)
    assert first is not None and first.status is TokenStatus.REVOKED
    again = store.revoke(digest, "other", 30)
    assert again is not None and (again.revoked_at, again.revoke_reason) == (20, "abuse")
    assert store.revoke(b"\x00" * 32, None, 40) is None
    assert store.claim_by_digest(digest) == again


def test_a_reorg_revokes_and_a_remined_transfer_reinstates(store: SqliteStore) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    assert store.claim(pid, 10, MIN, CONF) is not None
    outcome = batch(store, gone=[(payment_id, TX1)], height=201)
    assert outcome.revoked == (payment_id,)  # type: ignore[attr-defined]
    record = store.claim_for(payment_id)
    assert record is not None and record.revoke_reason == "payment_reorged"
    # Re-mined at a new height: visible again but not yet counted: still revoked.
    batch(store, [(payment_id, Transfer(TX1, MIN, 202))], height=203)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REORGED
    outcome = batch(store, height=212)
    assert outcome.reinstated == (payment_id,)  # type: ignore[attr-defined]
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.ACTIVE and record.revoked_at is None


def test_an_operator_revocation_is_never_reinstated(store: SqliteStore) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    outcome = store.claim(pid, 10, MIN, CONF)
    assert outcome is not None
    batch(store, gone=[(payment_id, TX1)], height=201)
    revoked = store.revoke(outcome.token.digest().raw, None, 30)
    assert (
        revoked is not None and revoked.status is TokenStatus.REVOKED and revoked.revoke_reason == "revoked"
    )
    batch(store, [(payment_id, Transfer(TX1, MIN, 150))], height=300)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REVOKED


def test_a_double_spend_flag_stops_counting(store: SqliteStore) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    assert store.claim(pid, 10, MIN, CONF) is not None
    batch(store, [(payment_id, Transfer(TX1, MIN, 150, TransferFlag.DOUBLE_SPEND))], height=201)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REORGED


def test_the_cursor_guards_a_batch_against_a_concurrent_rescan(store: SqliteStore) -> None:
    store.start_scan(100)
    state = store.monitor_state()
    store.rescan_from(50)
    with pytest.raises(CursorMoved):
        store.apply_batch(TransferBatch((), (), 200, 0, state.scan_cursor, 200, 1, CONF))
    assert store.monitor_state().scan_cursor == 50
    assert store.monitor_state().scan_floor == 50


def test_a_persisted_cursor_wins_over_a_new_start_height(store: SqliteStore) -> None:
    assert store.start_scan(100).scan_cursor == 100
    assert store.start_scan(5).scan_cursor == 100


def test_settled_transfers_leave_the_window_and_a_rescan_brings_them_back(store: SqliteStore) -> None:
    paid(store, height=150)
    assert len(store.unsettled_transfers()) == 1
    batch(store, height=300, settle=170)
    assert store.unsettled_transfers() == []
    store.rescan_from(140)
    assert len(store.unsettled_transfers()) == 1


def test_the_database_is_bound_to_one_wallet(store: SqliteStore) -> None:
    store.bind_wallet("4AAA")
    store.bind_wallet("4AAA")
    with pytest.raises(WalletMismatch):
        store.bind_wallet("4BBB")
    assert store.monitor_state().wallet_address == "4AAA"


def test_counts(store: SqliteStore) -> None:
    claimed = paid(store)
    paid(store, txid=TX2)  # redeemable
    paid(store, height=0, txid=TX3)  # pending
    paid(store, amount=1, txid=TX3)  # counted, too small: neither
    outcome = store.claim(claimed, 1, MIN, CONF)
    assert outcome is not None
    counts = store.counts(CONF, MIN)
    assert (counts.payments_pending, counts.payments_redeemable, counts.payments_claimed) == (1, 1, 1)
    assert (counts.tokens_active, counts.tokens_revoked) == (1, 0)
    store.revoke(outcome.token.digest().raw, None, 2)
    assert store.counts(CONF, MIN).tokens_revoked == 1


def test_no_pid_or_token_bytes_reach_the_database_files(database: Database, store: SqliteStore) -> None:
    pids = [paid(store, txid=bytes([i]) * 32) for i in range(1, 20)]
    tokens = []
    for pid in pids:
        outcome = store.claim(pid, 10, MIN, CONF)
        assert outcome is not None
        tokens.append(outcome.token)
    store.revoke(tokens[0].digest().raw, "x", 11)
    files = b"".join(
        p.read_bytes() for p in database.path.parent.iterdir() if p.name.startswith("anon_ticket.db")
    )
    for pid, token in zip(pids, tokens, strict=True):
        for needle in (pid.raw, token.raw, pid.hex().encode(), token.hex().encode()):
            assert needle not in files
    # …while what must be there, is.
    assert tokens[1].digest().raw in files


CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from anon_ticket.storage.sqlite import SqliteStore
    store = SqliteStore(Path(sys.argv[1]))
    conn = store._conn
    for i in range(50):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO transfers (payment_id, txid, amount, height) VALUES (?, ?, 1, 5)",
                     (i.to_bytes(8, "big"), bytes(32)))
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    for i in range(1000, 200000):
        conn.execute("INSERT INTO transfers (payment_id, txid, amount, height) VALUES (?, ?, 1, 5)",
                     (i.to_bytes(8, "big"), bytes(32)))
        if i == 5000:
            print("mid-transaction", flush=True)
    """
)


def test_a_process_killed_mid_transaction_loses_nothing_committed(database: Database) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(database.path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "mid-transaction"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    conn = connect(database.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM transfers").fetchone()[0] == 50
    conn.close()
