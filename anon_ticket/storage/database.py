"""One configured database: migrations, the writer's connection, the readers, the daemon lock.

`DATABASE_URL` picks the backend: `sqlite:///…` (the embedded default) or `postgresql://…` (needs the
`postgresql` extra, psycopg 3, imported only when that backend is chosen).

Only the storage writer actor opens a writable connection (`open_writer`), which is what serializes
writes. Readers differ by backend:

- SQLite: request threads never share a connection; each gets its own read-only one on first use.
- PostgreSQL: every reader (`reader()`, `open_reader()`) is a view of the node's one bounded pool
  (`anon_ticket/storage/pool.py`, `DATABASE_POOL_SIZE`), lent a connection per statement. A node
  then holds `DATABASE_POOL_SIZE + 4` connections, whatever its thread counts: the pool, the writer,
  the daemon lock, the poller's leadership and the payment-id feed (docs/OPERATIONS.md §15).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from anon_ticket.config import DatabaseUrl
from anon_ticket.errors import StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.leadership import Leadership, PostgresLeadership, SoleLeader
from anon_ticket.storage.lock import (
    PG_DAEMON_LOCK_CLASS,
    DaemonLock,
    FileDaemonLock,
    PostgresDaemonLock,
    PostgresOfflineLock,
)
from anon_ticket.storage.pid_feed import PaymentIdFeed
from anon_ticket.storage.pool import DEFAULT_POOL_SIZE, PoolFigures, PostgresPool
from anon_ticket.storage.protocols import Store
from anon_ticket.storage.sqlite import SqliteStore, connect

LostLock = Callable[[str], None]


# How long a reader waits for a free pooled connection unless told (the daemon passes ACTOR_TIMEOUT_SECS).
DEFAULT_POOL_WAIT_SECS = 5.0


class Database:
    def __init__(
        self,
        url: DatabaseUrl,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_wait_secs: float = DEFAULT_POOL_WAIT_SECS,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool_wait_secs = pool_wait_secs
        self._sqlite_path: Path | None = None
        self._dsn: str | None = None
        if url.backend == "sqlite" and url.sqlite_path is not None:
            self._sqlite_path = url.sqlite_path
        elif url.backend == "postgresql" and url.postgres_dsn is not None:
            self._dsn = url.postgres_dsn.reveal()
            try:
                import psycopg  # noqa: F401, PLC0415 (only this backend needs the optional extra)
            except ImportError as exc:
                raise StorageError(
                    "DATABASE_URL names PostgreSQL, but psycopg is not installed: "
                    "pip install 'anon_ticket[postgresql]'"
                ) from exc
        else:
            raise StorageError(f"the {url.backend} backend is not supported; use sqlite:/// or postgresql://")
        self._local = threading.local()
        self._readers: list[Store] = []
        self._readers_lock = threading.Lock()
        self._pool: PostgresPool | None = None
        self._pooled_reader: Store | None = None
        self._closed = False

    @property
    def backend(self) -> str:
        return "sqlite" if self._sqlite_path is not None else "postgresql"

    @property
    def path(self) -> Path:
        """The SQLite database file (StorageError for PostgreSQL, which has no file of ours)."""
        if self._sqlite_path is None:
            raise StorageError("a PostgreSQL database has no file path")
        return self._sqlite_path

    def _open(self, *, read_only: bool) -> Store:
        if self._dsn is not None:
            from anon_ticket.storage.postgres import DedicatedConnection, PostgresStore  # noqa: PLC0415

            if read_only:
                return self._pooled()
            return PostgresStore(DedicatedConnection(self._dsn, role="writer"))
        return SqliteStore(self.path, query_only=read_only)

    def _connection_pool(self) -> PostgresPool:
        """The node's pool, opened on first use (so a command that only migrates opens none)."""
        assert self._dsn is not None
        with self._readers_lock:
            if self._closed:
                raise StorageError("the database has been closed (the daemon is stopping)")
            if self._pool is None:
                self._pool = PostgresPool(self._dsn, self.pool_size, self._pool_wait_secs)
            return self._pool

    def _pooled(self) -> Store:
        from anon_ticket.storage.pool import PooledConnections  # noqa: PLC0415
        from anon_ticket.storage.postgres import PostgresStore  # noqa: PLC0415 (optional extra)

        return PostgresStore(PooledConnections(self._connection_pool()))

    def pool_figures(self) -> PoolFigures | None:
        """The pool's figures for status and statsd; None on SQLite, which has no pool."""
        if self._dsn is None:
            return None
        return self._connection_pool().figures()

    def check_folder(self) -> None:
        """StorageError naming DATABASE_URL unless the SQLite file's folder exists and is writable.

        The folder is never created here: a mistyped DATABASE_URL must not quietly start an empty
        database elsewhere, and the folder's owner and mode are the operator's (systemd's
        StateDirectory= makes it). PostgreSQL has no folder of ours: nothing to check.
        """
        if self._sqlite_path is None:
            return
        folder = self._sqlite_path.parent
        if not folder.is_dir():
            raise StorageError(
                f"DATABASE_URL: the folder {folder} of {self._sqlite_path} does not exist; create it "
                "(owned by the daemon's user, mode 0700) or point DATABASE_URL elsewhere"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StorageError(
                f"DATABASE_URL: the folder {folder} of {self._sqlite_path} is not writable by this "
                "user (SQLite writes its lock, -wal and -shm files beside the database)"
            )

    def migrate(self) -> int:
        """Apply pending migrations and return the schema version."""
        if self._dsn is not None:
            from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

            with postgres.connect(self._dsn, role="migrate") as conn:
                return migrations.migrate_postgres(conn)
        self.check_folder()
        try:
            # Created owner-only before SQLite sees it; SQLite gives -wal and -shm the same mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StorageError(f"cannot create the database {self.path}: {exc}") from exc
        conn = connect(self.path)
        try:
            return migrations.migrate_sqlite(conn)
        finally:
            conn.close()

    def schema_version(self) -> int:
        if self._dsn is not None:
            from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

            with postgres.connect(self._dsn, read_only=True) as pg:
                return migrations.current_version_postgres(pg)
        conn = connect(self.path)
        try:
            return migrations.current_version_sqlite(conn)
        finally:
            conn.close()

    def daemon_lock(self, on_lost: LostLock | None = None) -> DaemonLock:
        """The daemon's lock on this database (not yet taken: `acquire()` it).

        SQLite: an exclusive `flock` on a file beside the database, so one daemon (one node).
        PostgreSQL: a *shared* advisory lock on a connection of its own, so several daemons serve one
        database (docs/PROTOCOL.md §11) while an offline writer is kept out; `on_lost` is called if
        that session died and an offline writer took the lock meanwhile.
        """
        if self._dsn is not None:
            from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

            dsn = self._dsn
            return PostgresDaemonLock(
                lambda: postgres.connect(dsn, read_only=True, role="lock"),
                on_lost,
                shared=True,
                refusal="an offline anon_ticket command (rescan) holds this PostgreSQL database "
                f"(advisory lock {PG_DAEMON_LOCK_CLASS} on this schema); wait for it to finish",
            )
        self.check_folder()
        return FileDaemonLock(self._lock_path())

    def poller_leadership(self) -> Leadership:
        """Who polls the wallet (§11): an advisory lock on PostgreSQL; SQLite always leads."""
        if self._dsn is not None:
            from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

            dsn = self._dsn
            return PostgresLeadership(
                lambda: postgres.connect(dsn, read_only=True, watched=True, role="leader")
            )
        return SoleLeader()

    def payment_id_feed(
        self, on_ids: Callable[[list[bytes]], None], on_listening: Callable[[int], None]
    ) -> PaymentIdFeed | None:
        """New payment ids committed by any node, pushed to this one (not started); None on SQLite,
        where this daemon's own poller is the only source."""
        if self._dsn is None:
            return None
        from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

        dsn = self._dsn
        return PaymentIdFeed(
            lambda: postgres.connect(dsn, read_only=True, watched=True, role="feed"), on_ids, on_listening
        )

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def offline_lock(self) -> DaemonLock:
        """The daemon lock, for a command that writes only while no daemon runs (not yet taken).

        `acquire()` raises `DatabaseLocked` while a daemon holds the database. SQLite: the same
        `flock` as the daemon's. PostgreSQL: the daemon's advisory key, taken exclusively, so it
        fails while any daemon holds it (shared or exclusive). Held until `release()`.
        """
        if self._dsn is not None:
            from anon_ticket.storage import postgres  # noqa: PLC0415 (optional extra)

            dsn = self._dsn
            return PostgresOfflineLock(lambda: postgres.connect(dsn, read_only=True, role="offline"))
        self.check_folder()
        return FileDaemonLock(self._lock_path())

    def open_writer(self) -> Store:
        return self._open(read_only=False)

    def open_reader(self) -> Store:
        """A read-only store for one owner (an actor, a command): its own connection on SQLite, a
        view of the pool on PostgreSQL (closing it leaves the pool open)."""
        return self._open(read_only=True)

    def reader(self) -> Store:
        """A read-only store for the calling thread: on SQLite its own connection, opened on first
        use; on PostgreSQL the one store over the pool that every thread shares."""
        if self._dsn is not None:
            shared = self._pooled_reader
            if shared is None:
                fresh = self._pooled()
                with self._readers_lock:
                    shared = self._pooled_reader = self._pooled_reader or fresh
            return shared
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._open(read_only=True)
            self._local.store = store
            with self._readers_lock:
                self._readers.append(store)
        return store

    def close(self) -> None:
        """Close every reader connection and the pool (call once request threads have stopped)."""
        with self._readers_lock:
            readers, self._readers = self._readers, []
            pool, self._pool, self._pooled_reader = self._pool, None, None
            self._closed = True
        for store in readers:
            store.close()
        if pool is not None:
            pool.close()
