"""docs/PROTOCOL.md §11 on a real server: the node's bounded pool of PostgreSQL connections.

Each test takes a database of its own (tests/support/postgres.py `fresh_database_url`), so that the
sessions it counts in `pg_stat_activity` are its own whatever other tests do on the same server.
The daemon-level cases (503 through HTTP, eight nodes) are in test_pool_nodes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from anon_ticket.errors import NoFreeConnection, StorageError
from anon_ticket.storage.database import Database
from tests.support.postgres import connections_to, database_for, fresh_database_url, raw
from tests.support.waiting import wait_for

WAIT_SECS = 1.0


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str:
    return fresh_database_url(request.config)


def pooled(url: str, size: int) -> Database:
    database = database_for(url, pool_size=size, pool_wait_secs=WAIT_SECS)
    database.migrate()
    return database


@pytest.fixture
def small(db_url: str) -> Iterator[Database]:
    database = pooled(db_url, 2)
    yield database
    database.close()


def pool_sessions(url: str) -> list[int]:
    with raw(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'anon_ticket pool' ORDER BY pid"
        ).fetchall()
    return [row[0] for row in rows]


def two_sessions(url: str) -> list[int] | None:
    found = pool_sessions(url)
    return found if len(found) == 2 else None


def test_forty_threads_share_the_pool_and_never_open_more(db_url: str) -> None:
    database = pooled(db_url, 3)
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(len(connections_to(db_url)))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(40) as threads:
            states = list(threads.map(lambda _: database.reader().monitor_state(), range(2000)))
        figures = database.pool_figures()
    finally:
        stop.set()
        sampler.join()
        database.close()
    assert all(state.scan_cursor is None for state in states)
    assert figures is not None and (figures.size, figures.in_use, figures.timeouts) == (3, 0, 0)
    assert figures.waits > 0  # 40 threads on 3 connections: some waited, none gave up
    assert seen and max(seen) <= 3  # the pool, whatever the thread count
    assert connections_to(db_url) == []  # closed with the database


def test_readers_are_read_only_and_the_writer_is_not_pooled(small: Database, db_url: str) -> None:
    with pytest.raises(StorageError, match="read-only"):
        small.reader().bind_wallet("4AAA")
    writer = small.open_writer()
    try:
        writer.bind_wallet("4AAA")
        assert small.reader().monitor_state().wallet_address == "4AAA"
        assert sorted(connections_to(db_url)) == [
            "anon_ticket pool",
            "anon_ticket pool",
            "anon_ticket writer",
        ]
    finally:
        writer.close()


def test_an_exhausted_pool_answers_no_free_connection_within_the_wait_then_recovers(
    db_url: str,
) -> None:
    database = pooled(db_url, 1)
    try:
        held = database._connection_pool().lease()
        held.__enter__()  # the pool's one connection, held as a slow request would
        started = time.monotonic()
        with pytest.raises(NoFreeConnection, match="no free database connection") as caught:
            database.reader().monitor_state()
        waited = time.monotonic() - started
        assert WAIT_SECS <= waited < WAIT_SECS + 2
        assert (
            caught.value.status == 503 and caught.value.public_message() == "storage unavailable, retry later"
        )
        figures = database.pool_figures()
        assert figures is not None and (figures.in_use, figures.waits, figures.timeouts) == (1, 1, 1)
        held.__exit__(None, None, None)
        assert database.reader().monitor_state().scan_cursor is None  # recovered at once
        figures = database.pool_figures()
        assert figures is not None and (figures.in_use, figures.timeouts) == (0, 1)
    finally:
        database.close()


def test_a_slow_statement_holds_its_connection_and_the_others_wait_their_bound(db_url: str) -> None:
    database = pooled(db_url, 1)
    try:
        with raw(db_url) as locker, ThreadPoolExecutor(1) as slow:
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE transfers IN ACCESS EXCLUSIVE MODE")
            stuck = slow.submit(database.reader().unsettled_transfers)  # waits on the lock, leased
            wait_for("the slow read holding the connection", lambda: in_use(database) == 1 or None, 10)
            with pytest.raises(NoFreeConnection):
                database.reader().monitor_state()
            assert not stuck.done()
            locker.execute("COMMIT")
            assert stuck.result(timeout=10) == []
        assert database.reader().monitor_state().scan_cursor is None
    finally:
        database.close()


def in_use(database: Database) -> int:
    figures = database.pool_figures()
    assert figures is not None
    return figures.in_use


def test_a_terminated_session_is_replaced_not_handed_out(small: Database, db_url: str) -> None:
    assert small.reader().monitor_state().scan_cursor is None
    before = wait_for("two pooled sessions", lambda: two_sessions(db_url), 10)
    with raw(db_url) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (before,))
    # Every read succeeds: the pool's check finds the dead sessions before lending them.
    for _ in range(5):
        assert small.reader().monitor_state().scan_cursor is None
    after = wait_for("two pooled sessions again", lambda: two_sessions(db_url), 10)
    assert not set(after) & set(before)
    figures = small.pool_figures()
    assert figures is not None and figures.replaced >= 1 and figures.timeouts == 0


def test_pooled_sessions_never_hold_an_advisory_lock(small: Database, db_url: str) -> None:
    """The daemon lock and the leadership live on sessions of their own, never on a pooled one."""
    lock = small.daemon_lock()
    leadership = small.poller_leadership()
    lock.acquire()
    try:
        assert leadership.lead()
        for _ in range(20):
            small.reader().monitor_state()
        with raw(db_url) as admin:
            holders = admin.execute(
                "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND a.datname = current_database() ORDER BY 1"
            ).fetchall()
        assert holders == [("anon_ticket leader",), ("anon_ticket lock",)]
    finally:
        leadership.release()
        lock.release()


def test_sqlite_has_no_pool(database: Database) -> None:
    assert database.pool_figures() is None
    assert database.reader() is database.reader()  # this thread's own connection, as before
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(database.reader()))
    thread.start()
    thread.join()
    assert other[0] is not database.reader()


def test_a_closed_database_opens_no_new_pool(small: Database) -> None:
    small.reader().monitor_state()
    small.close()
    with pytest.raises(StorageError, match="closed"):
        small.reader().monitor_state()
    with pytest.raises(StorageError, match="closed"):
        small.pool_figures()


def test_timeouts_are_logged_at_most_once_a_minute(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from anon_ticket.storage.pool import PostgresPool  # noqa: PLC0415 (the optional extra)

    offset = [0.0]
    pool = PostgresPool(db_url, 1, 0.2, clock=lambda: time.monotonic() + offset[0])
    try:
        with pool.lease(), caplog.at_level("WARNING", logger="anon_ticket.storage.pool"):
            for _ in range(3):
                with pytest.raises(NoFreeConnection), pool.lease():
                    pass
            assert [r.getMessage() for r in caplog.records if "no free" in r.getMessage()] == [
                "no free database connection: 1 request(s) answered 503 since the last line "
                "(DATABASE_POOL_SIZE=1, 0 waiting now); see /api/v1/status storage.pool"
            ]
            offset[0] = 61.0  # a minute later: the next timeout brings the two held back and itself
            with pytest.raises(NoFreeConnection), pool.lease():
                pass
        lines = [r.getMessage() for r in caplog.records if "no free" in r.getMessage()]
        assert len(lines) == 2 and lines[1].startswith("no free database connection: 3 request(s)")
        assert pool.figures().timeouts == 4
    finally:
        pool.close()
