"""The daemon lock: who may use a database at the same time.

SQLite: an `flock` on a file beside the database, released by the kernel even after SIGKILL; one
daemon per database (SQLite has one writer, so one node).
PostgreSQL: a session advisory lock held by a dedicated connection for the daemon's life, released by
the server when that session ends (process death included). Daemons take it *shared*, so several
nodes serve one database (docs/PROTOCOL.md §11); an offline writer (`rescan` with no daemon running)
takes the same key *exclusive*, so it waits for no one and fails while any daemon runs.
`Database.daemon_lock()` and `Database.offline_lock()` pick the kind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from anon_ticket.errors import DatabaseLocked, StorageError

if TYPE_CHECKING:  # psycopg is the optional `postgresql` extra
    from anon_ticket.storage.postgres import Connection

log = logging.getLogger(__name__)

# pg_advisory_lock(class, key) class for the daemon ("ant" 0x01); the key is the hash of the schema's
# name, so two instances in different schemas (or databases) of one server do not exclude each other.
PG_DAEMON_LOCK_CLASS = 0x616E7401
_PG_KEY = "hashtext(coalesce(current_schema(), ''))"


class DaemonLock(Protocol):
    def acquire(self) -> None:
        """Take the lock or raise `DatabaseLocked` (or `StorageError` if the database is unusable)."""

    def release(self) -> None:
        """Give the lock back; safe to call when it was never taken, and more than once."""


class FileDaemonLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the daemon lock {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseLocked(
                f"another anon_ticket daemon holds {self.path}; stop it before starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresDaemonLock:
    """`pg_try_advisory_lock[_shared]` on a connection of its own, watched while it is held.

    `shared=True` is the daemons' mode (`Database.daemon_lock`): any number of them hold it together,
    and an exclusive holder (an offline writer's `PostgresOfflineLock`) keeps them all out.
    `shared=False` holds the key alone: it fails while anyone else holds it.

    The lock lives as long as its session. If that session ends under us (server restart,
    `pg_terminate_backend`, a network cut), a watchdog thread reconnects and takes the lock again; if
    an incompatible holder took it in the meantime, `on_lost` is called (the daemon stops with an
    error).
    """

    def __init__(
        self,
        open_connection: Callable[[], Connection],
        on_lost: Callable[[str], None] | None = None,
        check_interval_secs: float = 5.0,
        *,
        shared: bool = False,
        refusal: str | None = None,
    ) -> None:
        self._open = open_connection
        self._on_lost = on_lost
        self._interval = check_interval_secs
        self._shared = shared
        self._refusal = refusal or (
            "another anon_ticket daemon or an offline command holds this PostgreSQL database "
            f"(advisory lock {PG_DAEMON_LOCK_CLASS} on this schema); stop it first"
        )
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._mutex = threading.Lock()  # guards `_conn` between the watchdog and release()
        self._watchdog: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _take(self) -> Connection:
        """A new session holding the lock, or DatabaseLocked; StorageError if the server is away."""
        import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

        conn = self._open()
        function = "pg_try_advisory_lock_shared" if self._shared else "pg_try_advisory_lock"
        try:
            row = conn.execute(f"SELECT {function}(%s, {_PG_KEY})", (PG_DAEMON_LOCK_CLASS,)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"cannot take the daemon lock: {exc}") from exc
        if row is None or not row[0]:
            conn.close()
            raise DatabaseLocked(self._refusal)
        return conn

    def acquire(self) -> None:
        if self.held:
            return
        self._conn = self._take()
        self._stop.clear()
        self._watchdog = threading.Thread(target=self._watch, name="daemon-lock-watch", daemon=True)
        self._watchdog.start()

    def _alive(self, conn: Connection) -> bool:
        import psycopg  # noqa: PLC0415

        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _watch(self) -> None:
        """Runs in its own thread until `release()`: keep the session, or take the lock again."""
        reported = False
        while not self._stop.wait(self._interval):
            conn = self._conn
            if conn is not None and self._alive(conn):
                continue
            try:
                fresh = self._take()
            except DatabaseLocked as exc:
                log.critical("the daemon lock was lost and an incompatible holder has it now")
                if self._on_lost is not None:
                    self._on_lost(str(exc))
                return
            except StorageError as exc:
                if not reported:
                    log.warning("the daemon lock's connection is down; retrying: %s", exc)
                    reported = True
                continue
            with self._mutex:
                if self._stop.is_set():  # released while we reconnected
                    fresh.close()
                    return
                self._conn, reported = fresh, False
            log.warning("the daemon lock's connection was lost; the lock is held again")

    def release(self) -> None:
        with self._mutex:
            self._stop.set()
            conn, self._conn = self._conn, None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            # Bounded: a check stuck on a dead network must not hold up the daemon's exit.
            watchdog.join(timeout=self._interval + 1)
        if conn is not None:
            # Closing the session releases its advisory locks: no unlock round trip needed.
            conn.close()


class PostgresOfflineLock:
    """The daemon lock's key taken exclusively, for a command that writes while no daemon runs.

    `pg_try_advisory_lock` (exclusive) fails while any daemon holds the key, in whichever mode
    daemons take it, so an offline command never writes beside a running node. No watchdog: the
    command is short, and if its session dies the write it was making fails with it.
    """

    def __init__(self, open_connection: Callable[[], Connection]) -> None:
        self._open = open_connection
        self._conn: Connection | None = None

    def acquire(self) -> None:
        import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

        if self._conn is not None:
            return
        conn = self._open()
        try:
            row = conn.execute(
                f"SELECT pg_try_advisory_lock(%s, {_PG_KEY})", (PG_DAEMON_LOCK_CLASS,)
            ).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"cannot take the daemon lock: {exc}") from exc
        if row is None or not row[0]:
            conn.close()
            raise DatabaseLocked("a running anon_ticket daemon holds this PostgreSQL database")
        self._conn = conn

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ends the session, and with it the advisory lock
