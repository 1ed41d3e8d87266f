"""The storage pieces that let several nodes share one PostgreSQL database (docs/PROTOCOL.md §11).

On the real server, each test on a schema of its own: the poller's leadership (an advisory lock on a
dedicated session), two leaders applying the same poll at once, and the LISTEN/NOTIFY feed of new
payment ids (delivered on commit only, per schema, in chunks, and re-established after its session is
killed). The three-daemon tests are in test_several_nodes.py.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from anon_ticket.actors.pid_cache import PidCache, _Listening
from anon_ticket.actors.published import PublishedState
from anon_ticket.core.payments import Transfer
from anon_ticket.errors import CursorMoved, DatabaseLocked
from anon_ticket.storage.database import Database
from anon_ticket.storage.leadership import PostgresLeadership, SoleLeader
from anon_ticket.storage.pid_feed import (
    IDS_PER_NOTIFICATION,
    PaymentIdFeed,
    notification_payloads,
    parse_payload,
)
from anon_ticket.storage.postgres import PostgresStore, connect
from anon_ticket.storage.protocols import TransferBatch
from tests.support.postgres import database_for, fresh_schema_url, raw
from tests.support.stores import CONF, TX1, TX2
from tests.support.waiting import wait_for

WAIT_SECS = 20.0


@pytest.fixture
def database(pg_url: str) -> Iterator[Database]:
    db = database_for(pg_url)
    db.migrate()
    yield db
    db.close()


def _terminate(url: str, backend_pid: int) -> None:
    with raw(url) as conn:  # waits until the session has really ended
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (backend_pid,))


def _backend_pid(leadership: PostgresLeadership) -> int:
    conn = leadership._conn
    assert conn is not None
    return int(conn.info.backend_pid)


# -- leadership -----------------------------------------------------------------------------------


def test_one_leader_at_a_time_and_release_hands_over_at_once(database: Database) -> None:
    first, second = database.poller_leadership(), database.poller_leadership()
    assert isinstance(first, PostgresLeadership) and isinstance(second, PostgresLeadership)
    try:
        assert first.lead() is True
        assert second.lead() is False
        assert first.lead() is True  # kept: the session is checked and still holds the lock
        assert second.lead() is False
        first.release()
        assert second.lead() is True
        assert first.lead() is False
    finally:
        first.release()
        second.release()


def test_a_leader_whose_session_died_is_not_leading_any_more(pg_url: str, database: Database) -> None:
    leader, standby = database.poller_leadership(), database.poller_leadership()
    assert isinstance(leader, PostgresLeadership) and isinstance(standby, PostgresLeadership)
    try:
        assert leader.lead() and not standby.lead()
        _terminate(pg_url, _backend_pid(leader))
        assert standby.lead() is True  # the lock went with the session
        assert leader.lead() is False  # it notices before its next poll, and stands by
        assert leader.leading is False
        standby.release()
        assert leader.lead() is True  # and tries again on a new session
    finally:
        leader.release()
        standby.release()


def test_a_dead_leader_session_with_the_lock_free_is_won_again(pg_url: str, database: Database) -> None:
    leader = database.poller_leadership()
    assert isinstance(leader, PostgresLeadership)
    try:
        assert leader.lead()
        old = _backend_pid(leader)
        _terminate(pg_url, old)
        assert leader.lead() is True
        assert _backend_pid(leader) != old
    finally:
        leader.release()


def test_the_leaders_session_is_watched_on_both_ends(database: Database) -> None:
    """A leader whose machine vanished must lose the lock in seconds, not after TCP's two hours."""
    leadership = database.poller_leadership()
    assert isinstance(leadership, PostgresLeadership)
    try:
        assert leadership.lead()
        conn = leadership._conn
        assert conn is not None
        names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        server = [conn.execute(f"SHOW {name}").fetchone() for name in names]  # the server's side
        assert server == [("4",), ("2",), ("3",)]
        assert conn.info.get_parameters().get("tcp_user_timeout") == "10000"  # libpq's side
    finally:
        leadership.release()


def test_a_server_that_cannot_be_reached_means_standby() -> None:
    away = PostgresLeadership(lambda: connect("postgresql://127.0.0.1:1/x?connect_timeout=2"))
    assert away.lead() is False
    assert away.lead() is False  # and it keeps trying, one connection attempt a call
    away.release()


def test_leadership_is_per_schema(request: pytest.FixtureRequest) -> None:
    one = database_for(fresh_schema_url(request.config)).poller_leadership()
    two = database_for(fresh_schema_url(request.config)).poller_leadership()
    try:
        assert one.lead() and two.lead()
    finally:
        one.release()
        two.release()


def test_sqlite_always_leads() -> None:
    sole = SoleLeader()
    assert sole.lead() and sole.lead()
    sole.release()
    assert sole.lead()


# -- two leaders for a moment ---------------------------------------------------------------------


def _same_poll(store: PostgresStore, cursor: int, height: int, pids: list[bytes]) -> TransferBatch:
    return TransferBatch(
        upserts=tuple((pid, Transfer(TX1 if n % 2 else TX2, 1000 + n, 150)) for n, pid in enumerate(pids)),
        gone=(),
        wallet_height=height,
        settle_at_or_below=0,
        expected_cursor=cursor,
        new_cursor=height,
        polled_at=1_800_000_000,
        min_confirmations=CONF,
    )


@pytest.mark.parametrize("height", [200, 100], ids=["cursor-moves", "cursor-stays"])
def test_two_leaders_applying_the_same_poll_at_once_double_nothing(database: Database, height: int) -> None:
    """The old leader mid-poll when its session died, the new one polling: the same report twice."""
    stores = [database.open_writer(), database.open_writer()]
    assert all(isinstance(store, PostgresStore) for store in stores)
    stores[0].start_scan(100)
    pids = [bytes([n]) * 8 for n in range(1, 21)]
    barrier = threading.Barrier(2)
    results: list[object] = []

    def apply(store: Any) -> None:
        batch = _same_poll(store, 100, height, pids)
        barrier.wait()
        try:
            results.append(store.apply_batch(batch))
        except CursorMoved as exc:
            results.append(exc)

    try:
        threads = [threading.Thread(target=apply, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_SECS)
        refused = [r for r in results if isinstance(r, CursorMoved)]
        # A poll that moves the cursor is applied once; one that does not is applied twice, harmlessly.
        assert len(results) == 2 and len(refused) == (1 if height > 100 else 0), results
        reader = database.open_reader()
        try:
            for n, pid in enumerate(pids):
                assert [(t.amount, t.height) for t in reader.transfers_for(pid)] == [(1000 + n, 150)]
            assert reader.monitor_state().scan_cursor == max(height, 100)
        finally:
            reader.close()
    finally:
        for store in stores:
            store.close()


# -- the feed of new payment ids ------------------------------------------------------------------


class Heard:
    """What a feed reported, in order, for the test to wait on."""

    def __init__(self) -> None:
        self.ids: queue.Queue[bytes] = queue.Queue()
        self.listening: queue.Queue[int] = queue.Queue()

    def on_ids(self, ids: list[bytes]) -> None:
        for payment_id in ids:
            self.ids.put(payment_id)

    def on_listening(self, generation: int) -> None:
        self.listening.put(generation)

    def take_ids(self, count: int) -> set[bytes]:
        return {self.ids.get(timeout=WAIT_SECS) for _ in range(count)}


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def feed(database: Database, heard: Heard) -> Iterator[PaymentIdFeed]:
    found = database.payment_id_feed(heard.on_ids, heard.on_listening)
    assert found is not None
    found.start()
    assert found.wait_listening(WAIT_SECS)
    assert heard.listening.get(timeout=1) == 1
    yield found
    found.stop()


def _poll(store: Any, pids: list[bytes], height: int) -> None:
    state = store.monitor_state()
    if state.scan_cursor is None:
        state = store.start_scan(100)
    store.apply_batch(
        TransferBatch(
            upserts=tuple((pid, Transfer(TX1, 1000, 150)) for pid in pids),
            gone=(),
            wallet_height=height,
            settle_at_or_below=0,
            expected_cursor=state.scan_cursor,
            new_cursor=height,
            polled_at=1_800_000_000,
            min_confirmations=CONF,
        )
    )


def test_payloads_stay_under_the_limit_and_round_trip() -> None:
    ids = [n.to_bytes(8, "big") for n in range(1, 1001)]
    payloads = list(notification_payloads([*ids, *ids[:10]]))
    assert len(payloads) == -(-1000 // IDS_PER_NOTIFICATION)
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [pid for payload in payloads for pid in parse_payload(payload)] == ids
    assert parse_payload("zz,0102,0102030405060708") == [bytes.fromhex("0102030405060708")]


def test_committed_payment_ids_are_heard_in_chunks(
    database: Database, feed: PaymentIdFeed, heard: Heard
) -> None:
    writer = database.open_writer()
    try:
        pids = [n.to_bytes(8, "big") for n in range(1, 1001)]  # three notifications
        _poll(writer, pids, 200)
        assert heard.take_ids(1000) == set(pids)
    finally:
        writer.close()


def test_a_refused_batch_notifies_nothing(database: Database, feed: PaymentIdFeed, heard: Heard) -> None:
    writer = database.open_writer()
    try:
        writer.start_scan(100)
        stale = TransferBatch(((b"\x07" * 8, Transfer(TX1, 1000, 150)),), (), 200, 0, 99, 200, 1, CONF)
        with pytest.raises(CursorMoved):
            writer.apply_batch(stale)
        _poll(writer, [b"\x08" * 8], 200)  # a later notification proves the first one never came
        assert heard.ids.get(timeout=WAIT_SECS) == b"\x08" * 8
        assert heard.ids.empty()
    finally:
        writer.close()


def test_another_schemas_payment_ids_are_not_heard(
    request: pytest.FixtureRequest, database: Database, feed: PaymentIdFeed, heard: Heard
) -> None:
    other = database_for(fresh_schema_url(request.config))
    other.migrate()
    theirs, ours = other.open_writer(), database.open_writer()
    try:
        _poll(theirs, [b"\x09" * 8], 200)
        _poll(ours, [b"\x0a" * 8], 200)
        assert heard.ids.get(timeout=WAIT_SECS) == b"\x0a" * 8
        assert heard.ids.empty()
    finally:
        theirs.close()
        ours.close()
        other.close()


def test_a_killed_listening_session_is_replaced_and_says_so(
    pg_url: str, database: Database, feed: PaymentIdFeed, heard: Heard
) -> None:
    assert feed.backend_pid is not None
    old = feed.backend_pid
    _terminate(pg_url, old)
    # The new LISTEN is announced (generation 2): the owner rebuilds what it may have missed.
    assert heard.listening.get(timeout=WAIT_SECS) == 2
    assert feed.backend_pid != old
    writer = database.open_writer()
    try:
        _poll(writer, [b"\x0b" * 8], 200)
        assert heard.ids.get(timeout=WAIT_SECS) == b"\x0b" * 8
    finally:
        writer.close()


def test_sqlite_has_no_feed_and_one_lock_for_daemons_and_offline_writers(tmp_path: Any) -> None:
    from anon_ticket.config import DatabaseUrl  # noqa: PLC0415

    sqlite = Database(DatabaseUrl("sqlite", tmp_path / "a.db", None))
    assert sqlite.payment_id_feed(lambda ids: None, lambda generation: None) is None
    assert isinstance(sqlite.poller_leadership(), SoleLeader)
    daemon = sqlite.daemon_lock()
    daemon.acquire()
    try:
        with pytest.raises(DatabaseLocked):
            sqlite.offline_lock().acquire()
        with pytest.raises(DatabaseLocked):
            sqlite.daemon_lock().acquire()  # one node
    finally:
        daemon.release()
    offline = sqlite.offline_lock()
    offline.acquire()
    offline.release()


def test_stop_ends_the_thread_while_nothing_is_heard(feed: PaymentIdFeed) -> None:
    thread = feed._thread
    assert thread is not None and thread.is_alive()
    feed.stop()
    assert not thread.is_alive()
    assert not feed.wait_listening(0)


# -- the PID cache on a node that does not poll ---------------------------------------------------


class Cache:
    """A real PidCache actor on the test's schema, with a feed whose reconnections can be held."""

    def __init__(self, url: str, database: Database, rebuild_secs: float = 300.0) -> None:
        self.registry = PublishedState()
        self.reconnect = threading.Event()
        self.reconnect.set()
        self.feeds: list[PaymentIdFeed] = []
        self.opened = 0

        def open_connection() -> Any:
            self.opened += 1
            if self.opened > 1:
                self.reconnect.wait(WAIT_SECS)
            return connect(url, read_only=True)

        def open_feed(on_ids: Any, on_listening: Any) -> PaymentIdFeed:
            feed = PaymentIdFeed(open_connection, on_ids, on_listening)
            self.feeds.append(feed)
            return feed

        self.ref = PidCache.start(self.registry, database.open_reader, 10_000, open_feed, rebuild_secs)
        self.ref.proxy().ping().get(timeout=WAIT_SECS)  # on_start has run: listening, screen built

    def knows(self, payment_id: bytes) -> bool:
        screen = self.registry.pid_screen
        return screen is not None and screen.might_contain(payment_id)

    def wait_knows(self, payment_id: bytes) -> None:
        wait_for("the payment id on the screen", lambda: self.knows(payment_id) or None, WAIT_SECS)

    def stop(self) -> None:
        self.ref.stop()


@pytest.fixture
def cache(pg_url: str, database: Database) -> Iterator[Cache]:
    found = Cache(pg_url, database)
    yield found
    found.stop()


def test_a_standby_screen_hears_what_another_node_ingests(database: Database, cache: Cache) -> None:
    writer = database.open_writer()
    try:
        _poll(writer, [b"\x11" * 8], 200)
        cache.wait_knows(b"\x11" * 8)
    finally:
        writer.close()


def test_a_killed_listening_session_rebuilds_the_screen_with_what_was_missed(
    pg_url: str, database: Database, cache: Cache
) -> None:
    feed = cache.feeds[0]
    assert feed.backend_pid is not None
    cache.reconnect.clear()  # hold the reconnection: what commits meanwhile is never notified to us
    _terminate(pg_url, feed.backend_pid)
    wait_for("the feed to notice", lambda: (not feed.wait_listening(0)) or None, WAIT_SECS)
    writer = database.open_writer()
    try:
        _poll(writer, [b"\x12" * 8], 200)
    finally:
        writer.close()
    published = cache.registry.pid_screen
    assert published is not None and not cache.knows(b"\x12" * 8)
    cache.reconnect.set()
    cache.wait_knows(b"\x12" * 8)  # found by the rebuild that followed the new LISTEN
    assert cache.registry.pid_screen is not published  # a new screen was swapped in
    assert feed.generation == 2


def test_the_periodic_rebuild_finds_what_no_notification_announced(pg_url: str, database: Database) -> None:
    cache = Cache(pg_url, database, rebuild_secs=0.3)
    seen_unpublished = threading.Event()
    stop = threading.Event()

    def watch() -> None:  # the old screen stays published until the new one is swapped in
        while not stop.is_set():
            if cache.registry.pid_screen is None:
                seen_unpublished.set()

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        watcher.start()
        with raw(pg_url) as conn:  # behind the store's back: no notification at all
            conn.execute(
                "INSERT INTO transfers (payment_id, txid, amount, height) VALUES (%s, %s, 1000, 150)",
                (b"\x13" * 8, TX1),
            )
        cache.wait_knows(b"\x13" * 8)
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        cache.stop()
    assert not seen_unpublished.is_set()


def test_ids_added_during_a_rebuild_are_carried_into_the_new_screen(database: Database) -> None:
    """The poller's own adds (before its commit) must survive a rebuild that read storage before them."""
    registry = PublishedState()
    build_may_read = threading.Event()
    opened = 0

    def open_store() -> Any:
        nonlocal opened
        opened += 1
        if opened > 1:  # the rebuild's read waits until the id has been added to the old screen
            build_may_read.wait(WAIT_SECS)
        return database.open_reader()

    ref = PidCache.start(registry, open_store, 10_000, None, 300.0)
    try:
        ref.proxy().ping().get(timeout=WAIT_SECS)
        first = registry.pid_screen
        assert first is not None
        ref.tell(_Listening(generation=1))  # as after a reconnection: rebuild in the background
        ref.proxy().add([b"\x14" * 8]).get(timeout=WAIT_SECS)  # answered at once: the actor never blocks
        assert registry.pid_screen is first and first.might_contain(b"\x14" * 8)
        build_may_read.set()
        wait_for("the rebuilt screen", lambda: registry.pid_screen is not first or None, WAIT_SECS)
        screen = registry.pid_screen
        assert screen is not None and screen.might_contain(b"\x14" * 8)  # not in storage: carried over
    finally:
        ref.stop()
