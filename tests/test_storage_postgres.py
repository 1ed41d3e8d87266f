"""The PostgreSQL backend on a real server: schema, sessions, migrations, the daemon lock, the daemon.

Every test gets a schema of its own in the session's database (tests/support/postgres.py). The
behaviour shared with SQLite is checked in test_store_contract.py; the node's connection pool in
test_storage_pool.py.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg  # the test extra: installed with the suite, never skipped for
import pytest
from psycopg import sql

from anon_ticket.core.domain import PaymentId, ServiceToken
from anon_ticket.core.payments import Transfer
from anon_ticket.errors import DatabaseLocked, SchemaTooNew, StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.database import Database
from anon_ticket.storage.lock import PostgresDaemonLock
from anon_ticket.storage.postgres import PostgresStore, connect
from anon_ticket.storage.protocols import TransferBatch

# Re-exported for modules that still import them from here; the fixtures come from tests/conftest.py.
from tests.support.postgres import database_for, fresh_schema_url, raw, session_database_url  # noqa: F401
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]

MIN = 1000
CONF = 10
_TRANSFER = "INSERT INTO transfers (payment_id, txid, amount, height) VALUES (%s, %s, {amount}, 1)"


@pytest.fixture
def pg_store(pg_database: Database) -> Iterator[PostgresStore]:
    store = pg_database.open_writer()
    assert isinstance(store, PostgresStore)
    yield store
    store.close()


def session_of(store: PostgresStore) -> Any:
    """The dedicated connection under a writer store (its source lends always the same one)."""
    with store._source.lease() as conn:
        return conn


def backend_pid(store: PostgresStore) -> int:
    with store._source.lease() as conn:
        pid: int = conn.info.backend_pid
    return pid


# -- schema and sessions --------------------------------------------------------------------------


def test_the_schema_uses_binary_keys_small_statuses_and_big_amounts(
    pg_database: Database, pg_url: str
) -> None:
    with raw(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        )
        indexes = dict(
            conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
        )
    assert types["transfers.payment_id"] == types["claims.token_digest"] == "bytea"
    assert types["claims.status"] == types["transfers.flags"] == "smallint"
    assert types["transfers.amount"] == types["claims.min_amount"] == "bigint"
    assert "WHERE (NOT settled)" in indexes["transfers_unsettled"]
    assert "WHERE (status = 3)" in indexes["claims_reorged"]
    assert "substr(token_digest, 1, 8)" in indexes["claims_token_prefix"]
    assert {"transfers", "claims", "monitor_state", "schema_migrations"} <= {
        name.split(".")[0] for name in types
    }


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (_TRANSFER.format(amount=1), (b"p" * 7, b"t" * 32)),
        (_TRANSFER.format(amount=1), (b"p" * 8, b"t" * 31)),
        (_TRANSFER.format(amount=-1), (b"p" * 8, b"t" * 32)),
        (
            "INSERT INTO claims (payment_id, claim_txid, token_digest, claimed_at, min_amount, status) "
            "VALUES (%s, %s, %s, 1, 1, 9)",
            (b"p" * 8, b"t" * 32, b"d" * 32),
        ),
        ("INSERT INTO monitor_state (id) VALUES (%s)", (2,)),
    ],
)
def test_the_schema_refuses_malformed_rows(
    pg_database: Database, pg_url: str, statement: str, params: Any
) -> None:
    with raw(pg_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(statement, params)


def test_writers_commit_synchronously_even_if_the_server_says_off(pg_url: str) -> None:
    url = pg_url + "%20-csynchronous_commit%3Doff"
    writer = connect(url)
    reader = connect(url, read_only=True)
    try:
        assert writer.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert reader.execute("SHOW synchronous_commit").fetchone() == ("off",)  # never commits
        assert reader.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert writer.execute("SHOW application_name").fetchone() == ("anon_ticket",)
    finally:
        writer.close()
        reader.close()


def test_readers_are_read_only(pg_database: Database) -> None:
    reader = pg_database.reader()
    with pytest.raises(StorageError, match="read-only"):
        reader.start_scan(5)
    assert pg_database.reader() is reader
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(pg_database.reader()))
    thread.start()
    thread.join()
    assert other[0] is reader  # every thread shares the one reader over the node's pool


def terminate(url: str, store: PostgresStore) -> None:
    """End the store's server session, as a server restart or idle_session_timeout would."""
    with raw(url) as conn:  # waits until the session has really ended
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (backend_pid(store),))


def test_a_read_on_a_dead_idle_session_reconnects_transparently(pg_store: PostgresStore, pg_url: str) -> None:
    pg_store.start_scan(100)
    old = backend_pid(pg_store)
    terminate(pg_url, pg_store)
    assert pg_store.monitor_state().scan_cursor == 100
    assert backend_pid(pg_store) != old


def test_a_write_on_a_dead_session_fails_once_and_the_next_reconnects(
    pg_store: PostgresStore, pg_url: str
) -> None:
    pg_store.start_scan(100)
    terminate(pg_url, pg_store)
    with pytest.raises(StorageError, match="database write failed"):
        pg_store.rescan_from(50)
    assert pg_store.monitor_state().scan_cursor == 100  # nothing half-done
    assert pg_store.rescan_from(50).scan_cursor == 50


def test_a_closed_store_refuses_calls(pg_database: Database) -> None:
    store = pg_database.open_writer()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.monitor_state()


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = database_for(f"postgresql://someone:hunter2secret@127.0.0.1:{port}/x?connect_timeout=2")
    with pytest.raises(StorageError) as caught:
        database.migrate()
    assert "hunter2secret" not in str(caught.value)
    assert "hunter2secret" not in str(database.url)


def test_known_payment_ids_stream_from_a_server_side_cursor(pg_store: PostgresStore) -> None:
    ids = [i.to_bytes(8, "big") for i in range(25_000)]
    pg_store.start_scan(100)
    pg_store.apply_batch(
        TransferBatch(
            tuple((pid, Transfer(bytes([n]) * 32, 1, 150)) for pid in ids for n in (1, 2)),
            (),
            200,
            0,
            100,
            200,
            1,
            CONF,
        )
    )
    stream = pg_store.known_payment_ids()
    first = next(stream)
    cursors = session_of(pg_store).execute("SELECT name FROM pg_cursors").fetchall()
    assert ("known_payment_ids",) in cursors  # the rest is still on the server
    rest = list(stream)
    assert sorted([first, *rest]) == ids
    assert session_of(pg_store).execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)


def test_an_abandoned_stream_leaves_no_transaction_open(pg_store: PostgresStore) -> None:
    pid = PaymentId.generate().chain_payment_id().raw
    pg_store.start_scan(100)
    pg_store.apply_batch(
        TransferBatch(((pid, Transfer(b"\x01" * 32, 1, 150)),), (), 200, 0, 100, 200, 1, CONF)
    )
    stream = pg_store.known_payment_ids()
    assert next(stream) == pid
    stream.close()
    assert session_of(pg_store).info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert pg_store.claim_for(pid) is None


# -- migrations -----------------------------------------------------------------------------------


def test_from_empty_to_newest(pg_url: str) -> None:
    newest = migrations.available("postgresql")[-1].version
    with raw(pg_url) as conn:
        assert migrations.current_version_postgres(conn) == 0
        assert migrations.migrate_postgres(conn) == newest
        assert migrations.migrate_postgres(conn) == newest  # idempotent
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (newest,)
    assert database_for(pg_url).schema_version() == newest


@pytest.mark.parametrize("start", range(1, len(migrations.available("postgresql")) + 1))
def test_from_every_earlier_version_keeping_data(pg_url: str, start: int) -> None:
    every = migrations.available("postgresql")
    with raw(pg_url) as conn:
        assert migrations.migrate_postgres(conn, every[:start]) == start
        conn.execute(
            "INSERT INTO transfers (payment_id, txid, amount, height) VALUES (%s, %s, 5, 7)",
            (b"p" * 8, b"t" * 32),
        )
        assert migrations.migrate_postgres(conn, every) == every[-1].version
        assert conn.execute("SELECT amount FROM transfers").fetchall() == [(5,)]


def test_a_newer_database_is_refused(pg_url: str) -> None:
    with raw(pg_url) as conn:
        migrations.migrate_postgres(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
        with pytest.raises(SchemaTooNew, match="999"):
            migrations.migrate_postgres(conn)
    with pytest.raises(SchemaTooNew):
        database_for(pg_url).migrate()


def test_a_failing_migration_leaves_the_previous_version(pg_url: str, tmp_path: Path) -> None:
    good = migrations.available("postgresql")
    broken = tmp_path / f"{len(good) + 1:04d}_broken.sql"
    broken.write_text(
        "CREATE TABLE half_done (x INTEGER);\nALTER TABLE claims ADD COLUMN y INTEGER;\nNOT SQL;\n"
    )
    with raw(pg_url) as conn:
        with pytest.raises(StorageError, match="broken"):
            migrations.migrate_postgres(conn, [*good, migrations.Migration(len(good) + 1, broken)])
        assert migrations.current_version_postgres(conn) == len(good)
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'claims'"
        ).fetchall()
        assert ("y",) not in columns
        # The failure released the migration lock: the good files still apply from another session.
        assert migrations.migrate_postgres(conn, good) == len(good)


def test_concurrent_migrators_take_turns(pg_url: str) -> None:
    newest = migrations.available("postgresql")[-1].version
    results: list[object] = []
    barrier = threading.Barrier(4)

    def migrate() -> None:
        barrier.wait()
        try:
            results.append(database_for(pg_url).migrate())
        except Exception as exc:  # the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [newest] * 4
    with raw(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM monitor_state").fetchone() == (1,)


def test_nodes_starting_together_migrate_one_at_a_time(pg_url: str) -> None:
    """Several processes migrating one fresh schema at once (nodes started together): each applies
    what is left under the migration lock, so every one ends at the newest version, without error."""
    newest = migrations.available("postgresql")[-1].version
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_URL": pg_url}
    env.pop("ANON_TICKET_SQL_DIR", None)
    migrators = [
        subprocess.Popen(
            [sys.executable, "-m", "anon_ticket", "migrate"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in migrators]
    assert [process.returncode for process in migrators] == [0, 0, 0], outputs
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == [str(newest)] * 3
    with raw(pg_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [row[0] for row in rows] == list(range(1, newest + 1))
        assert conn.execute("SELECT count(*) FROM monitor_state").fetchone() == (1,)


def test_schemas_in_one_database_are_separate_instances(request: pytest.FixtureRequest) -> None:
    first, second = fresh_schema_url(request.config), fresh_schema_url(request.config)
    database_for(first).migrate()
    assert database_for(second).schema_version() == 0
    database_for(second).migrate()
    writer = database_for(first).open_writer()
    writer.bind_wallet("4AAA")
    writer.close()
    other = database_for(second).open_reader()
    assert other.monitor_state().wallet_address is None
    other.close()


def test_migrate_and_rescan_commands_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DATABASE_URL": pg_url}

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "anon_ticket", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    assert run("migrate") == str(migrations.available("postgresql")[-1].version)
    assert run("rescan", "--from", "42") == "scan cursor moved to 42 (floor 42)"
    assert list(tmp_path.iterdir()) == []  # no file of ours beside a PostgreSQL database


# -- the daemon lock ------------------------------------------------------------------------------


def test_daemons_share_the_lock_and_an_offline_writer_is_kept_out(pg_database: Database) -> None:
    first, second = pg_database.daemon_lock(), pg_database.daemon_lock()
    first.acquire()
    second.acquire()  # several nodes on one database (docs/PROTOCOL.md §11)
    try:
        with pytest.raises(DatabaseLocked, match="running anon_ticket daemon"):
            pg_database.offline_lock().acquire()
        first.release()
        with pytest.raises(DatabaseLocked, match="running anon_ticket daemon"):
            pg_database.offline_lock().acquire()
    finally:
        first.release()
        second.release()
    offline = pg_database.offline_lock()
    offline.acquire()
    try:
        with pytest.raises(DatabaseLocked, match="offline anon_ticket command"):
            pg_database.daemon_lock().acquire()
        with pytest.raises(DatabaseLocked):
            pg_database.offline_lock().acquire()
    finally:
        offline.release()
    second.acquire()
    second.release()
    second.release()  # idempotent


def test_the_offline_lock_is_released_with_its_process(pg_url: str) -> None:
    """A killed offline command leaves nothing behind: its session ends, the daemons may start."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from anon_ticket.config import DatabaseUrl, Secret\n"
            "from anon_ticket.storage.database import Database\n"
            "lock = Database(DatabaseUrl('postgresql', None, Secret(sys.argv[1]))).offline_lock()\n"
            "lock.acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            pg_url,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseLocked):
            database_for(pg_url).daemon_lock().acquire()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    lock = database_for(pg_url).daemon_lock()
    wait_for("the killed holder's session to end", lambda: _acquired(lock), 20)
    lock.release()


def _acquired(lock: Any) -> bool:
    try:
        lock.acquire()
    except DatabaseLocked:
        return False
    return True


def test_the_lock_is_per_schema(request: pytest.FixtureRequest) -> None:
    one = database_for(fresh_schema_url(request.config)).daemon_lock()
    two = database_for(fresh_schema_url(request.config)).daemon_lock()
    one.acquire()
    two.acquire()
    one.release()
    two.release()


def test_a_lost_lock_session_is_taken_again(pg_url: str) -> None:
    lost: list[str] = []
    lock = PostgresDaemonLock(lambda: connect(pg_url, read_only=True), lost.append, check_interval_secs=0.05)
    lock.acquire()
    try:
        assert lock._conn is not None
        old_pid = lock._conn.info.backend_pid
        with raw(pg_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (old_pid,))
        wait_for(
            "the watchdog to take the lock again",
            lambda: lock.held and lock._conn is not None and lock._conn.info.backend_pid != old_pid,
            10,
            0.02,
        )
        with pytest.raises(DatabaseLocked):
            PostgresDaemonLock(lambda: connect(pg_url, read_only=True)).acquire()
        assert lost == []
    finally:
        lock.release()


def test_a_lock_taken_over_by_an_offline_writer_reports_the_loss(pg_url: str) -> None:
    lost = threading.Event()
    reasons: list[str] = []
    intruder_in = threading.Event()
    opened = 0

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    def open_connection() -> Any:
        nonlocal opened
        opened += 1
        if opened > 1:  # the watchdog's reconnection: let the intruder in first, deterministically
            intruder_in.wait(10)
        return connect(pg_url, read_only=True)

    mine = PostgresDaemonLock(open_connection, on_lost, check_interval_secs=0.05, shared=True)
    mine.acquire()
    intruder = database_for(pg_url).offline_lock()  # an offline writer slipped in: incompatible
    try:
        assert mine._conn is not None
        with raw(pg_url) as conn:  # waits until the session has really ended
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (mine._conn.info.backend_pid,))
        intruder.acquire()
        intruder_in.set()
        assert lost.wait(10)
        assert "holds this PostgreSQL database" in reasons[0]
    finally:
        mine.release()
        intruder.release()


# -- the real daemon, end to end ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _request(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        raw_body = response.read()
    finally:
        conn.close()
    return response.status, json.loads(raw_body) if raw_body else None


def test_the_daemon_serves_a_redeem_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    from tests.support.fake_wallet import FakeWallet  # noqa: PLC0415 (only this test needs it)

    internal_token = "pg-test-internal-token-0123456789"
    public_port, internal_port = _free_port(), _free_port()
    with FakeWallet(height=200) as wallet:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": pg_url,
            "MONERO_RPC_URL": wallet.url,
            "MONERO_RPC_TIMEOUT_SECS": "2",
            "MONITOR_START_HEIGHT": "100",
            "MONITOR_POLL_INTERVAL_SECS": "0.2",
            "MONITOR_MIN_CONFIRMATIONS": str(CONF),
            "MIN_PAYMENT_AMOUNT": str(MIN),
            "API_BIND_ADDRESS": f"127.0.0.1:{public_port}",
            "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal_port}",
            "INTERNAL_API_TOKEN": internal_token,
            "PUBLIC_THREADS": "4",
            "INTERNAL_THREADS": "2",
            "STATSD_PORT": str(_free_port()),
        }
        daemon = subprocess.Popen(
            [sys.executable, "-m", "anon_ticket"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                "the daemon to learn the wallet",
                lambda: _request(public_port, "GET", "/api/v1/info")[0] == 200,
                30,
                tolerate=(OSError,),
            )
            pid = PaymentId.generate()
            wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN, confirmations=20)

            def redeemed() -> Any:
                status, body = _request(public_port, "POST", "/api/v1/redeem", {"pid": pid.hex()})
                return body if status == 200 else None

            body = wait_for("the payment to be redeemable", redeemed, 30, tolerate=(OSError,))
            assert body["status"] == "claimed" and body["amount"] == MIN
            token = body["token"]
            status, replay = _request(public_port, "POST", "/api/v1/redeem", {"pid": pid.hex()})
            assert (status, replay["status"], replay["token"]) == (200, "already_claimed", token)
            status, record = _request(internal_port, "GET", f"/api/v1/token/{token}", token=internal_token)
            assert (status, record["status"], record["amount"]) == (200, "active", MIN)

            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            assert daemon.stderr is not None
            log = daemon.stderr.read()
            daemon.stderr.close()
    assert token not in log and pid.hex() not in log
    with raw(pg_url) as conn:
        (digest,) = conn.execute("SELECT token_digest FROM claims").fetchone()
        assert digest == ServiceToken.parse(token).digest().raw
        dump = b"".join(
            bytes(value) if isinstance(value, bytes) else str(value).encode()
            for table in ("transfers", "claims", "monitor_state")
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            for value in row
        )
    for needle in (pid.raw, bytes.fromhex(token), pid.hex().encode(), token.encode()):
        assert needle not in dump
