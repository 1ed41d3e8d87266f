"""One configured database: migrations, the writer's connection, a reader per thread, the daemon lock.

`DATABASE_URL` picks the backend: `sqlite:///…` (the embedded default) or `postgresql://…` (needs the
`postgresql` extra, psycopg 3, imported only when that backend is chosen).

Request threads never share a connection; each gets its own read-only one on first use. Only the
storage writer actor opens a writable connection (`open_writer`), which is what serializes writes.
On PostgreSQL that makes one connection per request thread plus the writer, the poller's reader and
its leadership, the PID screen's listener and rebuild reads, and the daemon lock: with the default
32 + 4 threads, about 43 of the server's `max_connections` (100 by default) per node. A reader
whose connection broke reconnects on its next call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from anon_ticket.config import DatabaseUrl
from anon_ticket.errors import StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.base import Store
from anon_ticket.storage.leadership import Leadership, PostgresLeadership, SoleLeader
from anon_ticket.storage.lock import (
    PG_DAEMON_LOCK_CLASS,
    DaemonLock,
    FileDaemonLock,
    PostgresDaemonLock,
    PostgresOfflineLock,
)
from anon_ticket.storage.pid_feed import PaymentIdFeed
from anon_ticket.storage.sqlite import SqliteStore, connect

LostLock = Callable[[str], None]


class Database:
    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
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
            from anon_ticket.storage.postgres import PostgresStore  # noqa: PLC0415 (optional extra)

            return PostgresStore(self._dsn, read_only=read_only)
        return SqliteStore(self.path, query_only=read_only)

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

            with postgres.connect(self._dsn) as conn:
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
                lambda: postgres.connect(dsn, read_only=True),
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
            return PostgresLeadership(lambda: postgres.connect(dsn, read_only=True, watched=True))
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
            lambda: postgres.connect(dsn, read_only=True, watched=True), on_ids, on_listening
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
            return PostgresOfflineLock(lambda: postgres.connect(dsn, read_only=True))
        self.check_folder()
        return FileDaemonLock(self._lock_path())

    def open_writer(self) -> Store:
        return self._open(read_only=False)

    def open_reader(self) -> Store:
        """A fresh read-only connection for one owner (an actor's rebuild, a CLI command)."""
        return self._open(read_only=True)

    def reader(self) -> Store:
        """This thread's read-only connection, opened on first use."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._open(read_only=True)
            self._local.store = store
            with self._readers_lock:
                self._readers.append(store)
        return store

    def close(self) -> None:
        """Close every reader connection (call once request threads have stopped)."""
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for store in readers:
            store.close()
