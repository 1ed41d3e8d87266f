"""One configured database: migrations, the writer's connection, and a reader per thread.

Request threads never share a connection; each gets its own read-only one on first use. Only the
storage writer actor opens a writable connection (`open_writer`), which is what serializes writes.
"""

from __future__ import annotations

import os
import threading

from anon_ticket.config import DatabaseUrl
from anon_ticket.errors import StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.base import Store
from anon_ticket.storage.sqlite import SqliteStore, connect


class Database:
    def __init__(self, url: DatabaseUrl) -> None:
        if url.backend != "sqlite" or url.sqlite_path is None:
            raise StorageError(
                f"the {url.backend} backend is not available in this version; use sqlite:///PATH"
            )
        self.url = url
        self.path = url.sqlite_path
        self._local = threading.local()
        self._readers: list[SqliteStore] = []
        self._readers_lock = threading.Lock()

    def migrate(self) -> int:
        """Apply pending migrations and return the schema version."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
        conn = connect(self.path)
        try:
            return migrations.current_version_sqlite(conn)
        finally:
            conn.close()

    def open_writer(self) -> Store:
        return SqliteStore(self.path)

    def open_reader(self) -> Store:
        """A fresh read-only connection for one owner (an actor's rebuild, a CLI command)."""
        return SqliteStore(self.path, query_only=True)

    def reader(self) -> Store:
        """This thread's read-only connection, opened on first use."""
        store: SqliteStore | None = getattr(self._local, "store", None)
        if store is None:
            store = SqliteStore(self.path, query_only=True)
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
