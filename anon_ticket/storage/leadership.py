"""Which node polls the wallet: leader election for several daemons on one database (§11).

On PostgreSQL the leader is whoever holds a session advisory lock (a class of its own, keyed by the
schema like the daemon lock) on a connection dedicated to it. The server releases the lock when that
session ends, so a killed or cut-off leader frees it without any help, and a standby that asks again
gets it. The poller asks `lead()` before every poll: a leader whose session died has lost the lock
(another node may hold it now), so it is not a leader any more until it wins the lock again.

Two leaders for a moment (the old one mid-poll when its session dies) double nothing: a batch is
applied only if the scan cursor is still the one its poll started from (read `FOR UPDATE`), and
transfers are upserts keyed by payment id and txid.

SQLite has one node: `SoleLeader` always leads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from anon_ticket.errors import StorageError

if TYPE_CHECKING:  # psycopg is the optional `postgresql` extra
    from anon_ticket.storage.postgres import Connection

log = logging.getLogger(__name__)

# pg_advisory_lock(class, key) class for the poller's leadership ("ant" 0x03); the key is the hash of
# the schema's name, like the daemon lock's, so instances in different schemas elect separately.
PG_LEADER_LOCK_CLASS = 0x616E7403
_PG_KEY = "hashtext(coalesce(current_schema(), ''))"


class Leadership(Protocol):
    def lead(self) -> bool:
        """True if this node leads now: kept (session checked alive) or just won; False otherwise."""

    def release(self) -> None:
        """Give leadership up at once (another node may take it on its next try); idempotent."""


class SoleLeader:
    """SQLite: one daemon per database, which always polls."""

    def lead(self) -> bool:
        return True

    def release(self) -> None:
        return None


class PostgresLeadership:
    """`pg_try_advisory_lock` for the leader's key on a connection of its own.

    Not thread-safe: the wallet poller owns it and calls it from its own thread. A standby keeps its
    connection between tries (one `SELECT` a poll interval); `release()` closes it, which is what
    hands leadership over at once when a node stops gracefully.
    """

    def __init__(self, open_connection: Callable[[], Connection]) -> None:
        self._open = open_connection
        self._conn: Connection | None = None
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    def lead(self) -> bool:
        import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

        if self._leading and self._still_held():
            return True
        if self._leading:
            # The session (and with it the lock) is gone: whatever happens next, we were not leading
            # from the moment it ended.
            self._leading = False
            self._drop()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._open()
            row = self._conn.execute(
                f"SELECT pg_try_advisory_lock(%s, {_PG_KEY})", (PG_LEADER_LOCK_CLASS,)
            ).fetchone()
        except (psycopg.Error, StorageError) as exc:
            log.debug("cannot try for the poller's leadership: %s", exc)
            self._drop()
            return False
        self._leading = bool(row is not None and row[0])
        return self._leading

    def _still_held(self) -> bool:
        """The session is alive and still holds the lock (a round trip, once a poll)."""
        import psycopg  # noqa: PLC0415

        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                # pg_locks shows the two int4 keys as oids: the key's sign bit becomes 2^31.
                f"AND granted AND classid::bigint = %s AND objid::bigint = ({_PG_KEY}::bigint & 4294967295) "
                "AND objsubid = 2",
                (PG_LEADER_LOCK_CLASS,),
            ).fetchone()
        except psycopg.Error:
            return False
        return row is not None and row[0] > 0

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a broken connection's close must not fail a poll
                log.debug("closing the leadership connection failed", exc_info=True)

    def release(self) -> None:
        import psycopg  # noqa: PLC0415

        conn = self._conn
        if self._leading and conn is not None and not conn.closed:
            # Closing the session would release the lock too, but only once the server has noticed;
            # unlocking first makes the handover immediate: a standby's next try wins.
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"SELECT pg_advisory_unlock(%s, {_PG_KEY})", (PG_LEADER_LOCK_CLASS,))
        self._leading = False
        self._drop()
