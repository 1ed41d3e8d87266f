"""One behaviour, every backend: the storage protocols checked against SQLite and PostgreSQL alike.

Each test runs once per backend through `Database` (the daemon's own way in), so a difference between
the stores is a failing test, not a surprise in production. Backend-specific checks stay in
test_storage_sqlite.py and test_storage_postgres.py; the PostgreSQL runs skip only if no server answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.config import DatabaseUrl
from anon_ticket.core.access_time import AccessPolicy
from anon_ticket.core.domain import PaymentId, TxId
from anon_ticket.core.payments import TokenStatus, Transfer, TransferFlag
from anon_ticket.errors import CursorMoved, DatabaseLocked, RescanRefused, StorageError, WalletMismatch
from anon_ticket.storage.database import Database
from anon_ticket.storage.protocols import ClaimOutcome, ClaimRequest, Store, TransferBatch
from anon_ticket.storage.sqlite import connect as sqlite_connect
from tests.support.stores import CONF, MIN, TX1, TX2, TX3, batch, paid


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(DatabaseUrl("sqlite", tmp_path / "anon_ticket.db", None))
    else:
        from tests.support.postgres import database_for, fresh_schema_url  # noqa: PLC0415

        database = database_for(fresh_schema_url(request.config))
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> Iterator[Store]:
    writer = db.open_writer()
    yield writer
    writer.close()


def rows_of(db: Database, query: str) -> list[tuple[Any, ...]]:
    """Rows read behind the store's back, for checks the protocols do not expose."""
    if db.backend == "sqlite":
        conn = sqlite_connect(db.path)
        try:
            return [tuple(row) for row in conn.execute(query)]
        finally:
            conn.close()
    import psycopg  # noqa: PLC0415

    assert db.url.postgres_dsn is not None
    with psycopg.connect(db.url.postgres_dsn.reveal()) as pg:
        return [tuple(row) for row in pg.execute(query.encode())]


def claimed(store: Store, pid: PaymentId, now: int = 10) -> ClaimOutcome:
    outcome = store.claim(pid, now, MIN, CONF)
    assert outcome is not None
    return outcome


# -- claims ---------------------------------------------------------------------------------------


def test_first_claim_binds_the_earliest_counted_transfer(store: Store) -> None:
    pid = PaymentId.generate()
    payment_id = pid.chain_payment_id().raw
    batch(store, [(payment_id, Transfer(TX2, 600, 150)), (payment_id, Transfer(TX1, 600, 160))])
    outcome = claimed(store, pid, 1_800_000_100)
    assert outcome.fresh
    assert outcome.record.claim_txid == TX2
    assert outcome.token == pid.service_token(TxId(TX2))
    assert outcome.record.token_digest == outcome.token.digest().raw
    assert outcome.amount == 1200
    replay = claimed(store, pid, 1_800_000_999)
    assert not replay.fresh
    assert replay.token == outcome.token
    assert replay.record.claimed_at == 1_800_000_100


def test_ties_on_height_go_to_the_lowest_txid(store: Store) -> None:
    pid = PaymentId.generate()
    payment_id = pid.chain_payment_id().raw
    batch(store, [(payment_id, Transfer(TX3, 500, 150)), (payment_id, Transfer(TX2, 500, 150))])
    assert claimed(store, pid).record.claim_txid == TX2


def test_nothing_is_claimed_below_the_minimum_or_confirmations(store: Store) -> None:
    short = paid(store, amount=MIN - 1)
    young = paid(store, height=195, txid=TX2)
    locked = PaymentId.generate()
    batch(store, [(locked.chain_payment_id().raw, Transfer(TX3, MIN, 150, TransferFlag.LOCKED))])
    for pid in (short, young, locked):
        assert store.claim(pid, 1, MIN, CONF) is None
        assert store.claim_for(pid.chain_payment_id().raw) is None


def test_a_later_transfer_raises_the_amount_but_never_the_claim(store: Store) -> None:
    pid = paid(store)
    first = claimed(store, pid)
    batch(store, [(pid.chain_payment_id().raw, Transfer(TX2, 500, 195))], height=210)
    again = claimed(store, pid, 99)
    assert (again.amount, again.token, again.record.claim_txid) == (MIN + 500, first.token, TX1)


def test_concurrent_claims_on_separate_connections_make_one_claim(db: Database, store: Store) -> None:
    pid = paid(store)
    stores = [db.open_writer() for _ in range(8)]
    results: list[ClaimOutcome | None] = []
    barrier = threading.Barrier(len(stores))

    def claim(s: Store) -> None:
        barrier.wait()
        results.append(s.claim(pid, 1_800_000_000, MIN, CONF))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(results) == 8 and all(r is not None for r in results)
    assert len([r for r in results if r is not None and r.fresh]) == 1
    assert len({r.token for r in results if r is not None}) == 1
    assert rows_of(db, "SELECT count(*) FROM claims") == [(1,)]


def test_a_claim_racing_a_reorg_never_keeps_an_active_token_on_a_gone_transfer(
    db: Database, store: Store
) -> None:
    claimer = db.open_writer()
    try:
        for _ in range(10):
            pid = paid(store)
            payment_id = pid.chain_payment_id().raw
            state = store.monitor_state()
            barrier = threading.Barrier(2)

            def claim(p: PaymentId, start: threading.Barrier) -> None:
                start.wait()
                claimer.claim(p, 5, MIN, CONF)

            thread = threading.Thread(target=claim, args=(pid, barrier))
            thread.start()
            barrier.wait()
            store.apply_batch(
                TransferBatch((), ((payment_id, TX1),), 200, 0, state.scan_cursor, 200, 6, CONF)
            )
            thread.join()
            record = store.claim_for(payment_id)
            assert record is None or record.status is TokenStatus.REORGED
    finally:
        claimer.close()


# -- revocation and reorgs ------------------------------------------------------------------------


def test_revocation_rules(store: Store) -> None:
    outcome = claimed(store, paid(store))
    digest = outcome.token.digest().raw
    first = store.revoke(digest, "abuse", 20)
    assert first is not None and first.status is TokenStatus.REVOKED and first.revoke_reason == "abuse"
    again = store.revoke(digest, "other", 30)
    assert again is not None and (again.revoked_at, again.revoke_reason) == (20, "abuse")
    assert store.revoke(b"\x00" * 32, None, 40) is None
    assert store.claim_by_digest(digest) == again
    assert store.claim_by_digest(digest[:8] + b"\x00" * 24) is None  # same prefix, other digest


def test_a_revoked_claim_still_replays_as_itself(store: Store) -> None:
    pid = paid(store)
    outcome = claimed(store, pid)
    store.revoke(outcome.token.digest().raw, None, 20)
    replay = claimed(store, pid)
    assert not replay.fresh and replay.token == outcome.token
    assert replay.record.status is TokenStatus.REVOKED and replay.record.revoke_reason == "revoked"


def test_a_reorg_revokes_and_a_remined_transfer_reinstates(store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    claimed(store, pid)
    outcome = batch(store, gone=[(payment_id, TX1)], height=201)
    assert outcome.revoked == (payment_id,)
    record = store.claim_for(payment_id)
    assert record is not None and record.revoke_reason == "payment_reorged"
    assert record.revoked_at == 1_800_000_000
    # Re-mined at a new height: visible again but not yet counted: still revoked.
    batch(store, [(payment_id, Transfer(TX1, MIN, 202))], height=203)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REORGED
    outcome = batch(store, height=212)
    assert outcome.reinstated == (payment_id,)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.ACTIVE and record.revoked_at is None


def test_another_payment_reinstates_a_reorged_claim(store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    claimed(store, pid)
    batch(store, gone=[(payment_id, TX1)], height=201)
    outcome = batch(store, [(payment_id, Transfer(TX2, MIN, 150))], height=202)
    assert outcome.reinstated == (payment_id,)
    record = store.claim_for(payment_id)
    assert record is not None and record.claim_txid == TX1  # the claim txid never changes


def test_falling_confirmations_alone_never_revoke(store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    claimed(store, pid)
    outcome = batch(store, [(payment_id, Transfer(TX1, MIN, 0))], height=199)  # back in the pool
    assert outcome.revoked == ()
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.ACTIVE


def test_an_operator_revocation_is_never_reinstated(store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    outcome = claimed(store, pid)
    batch(store, gone=[(payment_id, TX1)], height=201)
    revoked = store.revoke(outcome.token.digest().raw, None, 30)
    assert revoked is not None and revoked.status is TokenStatus.REVOKED
    assert revoked.revoke_reason == "revoked"
    batch(store, [(payment_id, Transfer(TX1, MIN, 150))], height=300)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REVOKED


def test_a_double_spend_flag_stops_counting(store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    claimed(store, pid)
    batch(store, [(payment_id, Transfer(TX1, MIN, 150, TransferFlag.DOUBLE_SPEND))], height=201)
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.REORGED


# -- the poller's state ---------------------------------------------------------------------------


def test_the_cursor_guards_a_batch_against_a_concurrent_rescan(store: Store) -> None:
    store.start_scan(100)
    state = store.monitor_state()
    store.rescan_from(50)
    with pytest.raises(CursorMoved):
        store.apply_batch(
            TransferBatch(((b"p" * 8, Transfer(TX1, 1, 150)),), (), 200, 0, state.scan_cursor, 200, 1, CONF)
        )
    assert store.monitor_state().scan_cursor == 50
    assert store.monitor_state().scan_floor == 50
    assert store.transfers_for(b"p" * 8) == []  # nothing of the refused batch was kept


def test_a_batch_records_the_cursor_height_and_poll_time(store: Store) -> None:
    batch(store, height=240)
    state = store.monitor_state()
    assert (state.scan_cursor, state.wallet_height, state.last_poll_at) == (240, 240, 1_800_000_000)


def test_a_persisted_cursor_wins_over_a_new_start_height(store: Store) -> None:
    assert store.start_scan(100).scan_cursor == 100
    assert store.start_scan(5).scan_cursor == 100
    batch(store, height=300)
    assert store.rescan_from(150).scan_floor == 100  # the floor only ever moves down


def test_settled_transfers_leave_the_window_and_a_rescan_brings_them_back(store: Store) -> None:
    paid(store, height=150)
    assert len(store.unsettled_transfers()) == 1
    batch(store, height=300, settle=170)
    assert store.unsettled_transfers() == []
    store.rescan_from(140)
    assert len(store.unsettled_transfers()) == 1


def test_a_gone_pool_transfer_settles(store: Store) -> None:
    pid = paid(store, height=0)
    payment_id = pid.chain_payment_id().raw
    batch(store, gone=[(payment_id, TX1)], height=201, settle=100)
    assert store.unsettled_transfers() == []
    assert store.transfers_for(payment_id) == [Transfer(TX1, MIN, 0, TransferFlag.GONE)]


def test_the_database_is_bound_to_one_wallet(store: Store) -> None:
    store.bind_wallet("4AAA")
    store.bind_wallet("4AAA")
    with pytest.raises(WalletMismatch):
        store.bind_wallet("4BBB")
    assert store.monitor_state().wallet_address == "4AAA"


# -- reads ----------------------------------------------------------------------------------------


def test_a_snapshot_holds_claim_transfers_and_height(db: Database, store: Store) -> None:
    pid = paid(store)
    payment_id = pid.chain_payment_id().raw
    reader = db.reader()
    empty = reader.snapshot(PaymentId.generate().chain_payment_id().raw)
    assert (empty.claim, empty.transfers, empty.wallet_height) == (None, [], 200)
    before = reader.snapshot(payment_id)
    # 50 confirmations at height 200: the batch marked it COUNTED for good.
    assert (before.claim, before.transfers) == (None, [Transfer(TX1, MIN, 150, TransferFlag.COUNTED)])
    outcome = claimed(store, pid)
    batch(store, [(payment_id, Transfer(TX2, 7, 0))], height=205)
    after = reader.snapshot(payment_id)
    assert after.claim == outcome.record and after.wallet_height == 205
    assert after.transfers == [Transfer(TX1, MIN, 150, TransferFlag.COUNTED), Transfer(TX2, 7, 0)]


def test_known_payment_ids_lists_each_payment_once(store: Store) -> None:
    ids = [i.to_bytes(8, "big") for i in range(1, 300)]
    batch(store, [(pid, Transfer(tx, 1, 150)) for pid in ids for tx in (TX1, TX2)])
    assert sorted(store.known_payment_ids()) == ids


def test_counts(store: Store) -> None:
    claim_me = paid(store)
    paid(store, txid=TX2)  # redeemable
    paid(store, height=0, txid=TX3)  # pending
    paid(store, amount=1, txid=TX3)  # counted, too small: neither
    outcome = claimed(store, claim_me, 1)
    counts = store.counts(CONF, MIN)
    assert (counts.payments_pending, counts.payments_redeemable, counts.payments_claimed) == (1, 1, 1)
    assert (counts.tokens_active, counts.tokens_revoked) == (1, 0)
    store.revoke(outcome.token.digest().raw, None, 2)
    assert store.counts(CONF, MIN).tokens_revoked == 1


def test_readers_cannot_write_and_errors_are_storage_errors(db: Database) -> None:
    with pytest.raises(StorageError):
        db.reader().bind_wallet("4AAA")
    closed = db.open_reader()
    closed.close()
    with pytest.raises(StorageError):
        closed.monitor_state()


def test_no_pid_or_token_reaches_the_tables(db: Database, store: Store) -> None:
    pids = [paid(store, txid=bytes([i]) * 32) for i in range(1, 20)]
    tokens = [claimed(store, pid).token for pid in pids]
    store.revoke(tokens[0].digest().raw, "x", 11)
    dump = b"".join(
        value if isinstance(value, bytes) else str(value).encode()
        for table in ("transfers", "claims", "monitor_state", "schema_migrations")
        for row in rows_of(db, f"SELECT * FROM {table}")
        for value in row
    )
    for pid, token in zip(pids, tokens, strict=True):
        for needle in (pid.raw, token.raw, pid.hex().encode(), token.hex().encode()):
            assert needle not in dump
    # …while what must be there, is.
    assert tokens[1].digest().raw in dump


# -- the sticky COUNTED rule ------------------------------------------------------------------------


def test_a_counted_transfer_keeps_counting_when_a_reorg_lowers_its_confirmations(store: Store) -> None:
    pid = paid(store, height=150)
    payment_id = pid.chain_payment_id().raw
    outcome = claimed(store, pid)
    # The same transaction mined again two blocks from the top: 2 confirmations, and still counted.
    batch(store, [(payment_id, Transfer(TX1, MIN, 199))], height=201)
    [transfer] = store.transfers_for(payment_id)
    assert transfer.flags == TransferFlag.COUNTED
    record = store.claim_for(payment_id)
    assert record is not None and record.status is TokenStatus.ACTIVE
    replay = claimed(store, pid)
    assert (replay.fresh, replay.amount, replay.token) == (False, MIN, outcome.token)


def test_gone_or_double_spent_clears_counted(store: Store) -> None:
    gone = paid(store, txid=TX1)
    spent = paid(store, txid=TX2)
    batch(store, gone=[(gone.chain_payment_id().raw, TX1)], height=201)
    batch(
        store,
        [(spent.chain_payment_id().raw, Transfer(TX2, MIN, 150, TransferFlag.DOUBLE_SPEND))],
        height=202,
    )
    assert store.transfers_for(gone.chain_payment_id().raw)[0].flags == TransferFlag.GONE
    assert store.transfers_for(spent.chain_payment_id().raw)[0].flags == TransferFlag.DOUBLE_SPEND
    # Back and mined again: it must earn its confirmations anew.
    batch(store, [(gone.chain_payment_id().raw, Transfer(TX1, MIN, 200))], height=203)
    assert store.transfers_for(gone.chain_payment_id().raw)[0].flags == 0
    assert store.claim(gone, 1, MIN, CONF) is None


def test_the_highest_wallet_height_only_rises_and_a_rescan_keeps_it(store: Store) -> None:
    assert store.monitor_state().highest_height is None
    batch(store, height=300)
    batch(store, height=290)  # a reorg's dip: recorded as the wallet height, not as the highest
    state = store.monitor_state()
    assert (state.wallet_height, state.highest_height) == (290, 300)
    state = store.rescan_from(120)  # the operator moves the cursor; what was seen stays seen
    assert (state.scan_cursor, state.highest_height) == (120, 300)
    batch(store, height=310)
    assert store.monitor_state().highest_height == 310


def test_a_rescan_ahead_of_the_cursor_is_refused_and_changes_nothing(store: Store) -> None:
    batch(store, height=300)
    before = store.monitor_state()
    with pytest.raises(RescanRefused, match="ahead of the scan cursor"):
        store.rescan_from(301)
    assert store.monitor_state() == before
    assert store.rescan_from(300).scan_cursor == 300  # the cursor itself is fine


def test_reset_highest_lowers_the_highest_and_the_wallet_height_and_nothing_else(store: Store) -> None:
    with pytest.raises(RescanRefused, match="no wallet height has been recorded"):
        store.rescan_from(100, reset_highest=100)
    paid(store, height=150)
    batch(store, height=9_000_000)  # a wallet that reported a wildly wrong height once
    before = store.monitor_state()
    for height, reset, why in (
        (200, 9_000_001, "above the highest height seen"),
        (200, 199, "below --from 200"),
        (9_000_001, 9_000_001, "ahead of the scan cursor"),
    ):
        with pytest.raises(RescanRefused, match=why):
            store.rescan_from(height, reset_highest=reset)
        assert store.monitor_state() == before  # a refused rescan writes nothing
    state = store.rescan_from(140, reset_highest=320)
    assert (state.scan_cursor, state.scan_floor, state.highest_height, state.wallet_height) == (
        140,
        100,
        320,
        320,
    )
    assert len(store.unsettled_transfers()) == 1  # read again from 140
    batch(store, height=321)
    assert store.monitor_state().highest_height == 321  # and it rises again as usual


def test_the_offline_lock_excludes_a_daemon_and_the_other_way_round(db: Database) -> None:
    daemon = db.daemon_lock()
    daemon.acquire()
    try:
        with pytest.raises(DatabaseLocked):
            db.offline_lock().acquire()
    finally:
        daemon.release()
    offline = db.offline_lock()
    offline.acquire()
    try:
        with pytest.raises(DatabaseLocked):
            db.daemon_lock().acquire()
    finally:
        offline.release()
    again = db.daemon_lock()
    again.acquire()  # released for good: a daemon starts
    again.release()


# -- paid time (docs/PROTOCOL.md §13) ---------------------------------------------------------------

HOUR = AccessPolicy(3600, MIN)


def test_paid_time_starts_at_the_claim_and_later_transfers_extend_it(store: Store) -> None:
    """What counted by the claim runs from the claim; a transfer counted later adds its share from
    the later of when it counted and the current end; a poll with nothing new credits nothing."""
    pid = paid(store, 2 * MIN)  # two hours
    payment_id = pid.chain_payment_id().raw
    claimed_at = 1_800_000_000
    outcome = store.claim_many([ClaimRequest(pid, claimed_at, MIN, CONF, HOUR)])[0]
    assert outcome is not None
    assert (outcome.record.access_until, outcome.record.access_credited) == (claimed_at + 7200, 2 * MIN)
    # Before the end: half an hour more, from the end.
    batch(
        store,
        [(payment_id, Transfer(TX2, MIN // 2, 180))],
        height=200,
        polled_at=claimed_at + 60,
        access=HOUR,
    )
    record = store.claim_for(payment_id)
    assert record is not None and record.access_until == claimed_at + 7200 + 1800
    batch(store, height=201, polled_at=claimed_at + 120, access=HOUR)
    assert store.claim_for(payment_id) == record
    # After a lapse: from the moment it counted (here the poll that saw it confirmed).
    lapsed = claimed_at + 86_400
    batch(store, [(payment_id, Transfer(TX3, MIN, 195))], height=202, polled_at=lapsed - 1, access=HOUR)
    batch(store, height=205, polled_at=lapsed, access=HOUR)  # 205 - 195 = 10 confirmations: counts now
    record = store.claim_for(payment_id)
    assert record is not None and (record.access_until, record.access_credited) == (
        lapsed + 3600,
        3 * MIN + MIN // 2,
    )
    assert store.claim_by_digest(outcome.token.digest().raw) == record


def test_without_a_policy_nothing_of_paid_time_is_stored(store: Store) -> None:
    pid = paid(store)
    outcome = claimed(store, pid)
    assert (outcome.record.access_until, outcome.record.access_credited) == (None, None)
    payment_id = pid.chain_payment_id().raw
    batch(store, [(payment_id, Transfer(TX2, MIN, 180))], height=200, access=HOUR)
    record = store.claim_for(payment_id)
    assert record is not None and record.access_until is None  # claimed without a policy: good until revoked
