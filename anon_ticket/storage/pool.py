"""The node's bounded pool of PostgreSQL connections (docs/PROTOCOL.md §11), from `psycopg_pool`.

Why a pool: a PostgreSQL backend is a process of its own, and a connection per request thread made
a node ask for `PUBLIC_THREADS + INTERNAL_THREADS + 8` of the server's `max_connections` (100 by
default), so three nodes already ran out. Every request thread of both listeners (and whatever app
they serve: the panel, an access gateway) and the actors' reads (the poller's, the PID screen's
rebuilds) share `DATABASE_POOL_SIZE` connections here; writes all go through the storage writer;
a statement holds one only while it runs (a transaction while it is open), so a few are enough.
`psycopg_pool` (by psycopg's authors) does the hard parts — a fair queue of waiting threads,
replacing broken connections in the background, growing back after a server restart — which a
hand-written pool would get wrong in the corners.

What stays outside the pool, on connections of their own: the storage writer (one writer per node
serialises the writes; a read-only pool cannot write by mistake), the daemon lock and the poller's
leadership (session advisory locks, which must never go back into a pool still held), the payment-id
feed (a `LISTEN` session) and migrations (their own advisory lock, at start).

Pooled sessions are read-only and watched like the leadership's (a cut network fails a statement in
about 10 s rather than holding a pooled connection for minutes). A session the server ended (restart,
`pg_terminate_backend`) is dropped when the read that found it fails; that read has the pool check
every idle connection (psycopg_pool's `check()`), so the other dead ones are replaced rather than
handed out, and is tried once more. Checking each connection as it is lent would cost a round
trip per read.

A thread that finds none free waits at most `ACTOR_TIMEOUT_SECS` (the bound every request waits for
a component: the storage writer, an actor), then gets `NoFreeConnection` (503 `unavailable`,
storage). Not `HTTP_REQUEST_DEADLINE_SECS`: that bounds how long a request may take to arrive, not
how long it is served.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anon_ticket.errors import NoFreeConnection, StorageError

if TYPE_CHECKING:  # psycopg is the optional `postgresql` extra
    import psycopg_pool

    from anon_ticket.storage.postgres import Connection

log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 6
SUMMARY_INTERVAL_SECS = 60.0


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """What `/api/v1/status` and statsd show of the pool; the counts are totals since the start."""

    size: int  # DATABASE_POOL_SIZE
    in_use: int  # lent to a thread now
    waiting: int  # threads waiting for one now
    waits: int  # requests that found none free and waited
    timeouts: int  # of those, the ones that gave up (503)
    replaced: int  # connections found broken and replaced


class _Summary:
    """At most one log line a minute about waits and timeouts, with what happened since the last."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._timeouts = 0
        self._next_at = clock()  # the first timeout is logged at once

    def timed_out(self, waiting: int) -> None:
        with self._lock:
            self._timeouts += 1
            now = self._clock()
            if now < self._next_at:
                return
            timeouts, self._timeouts = self._timeouts, 0
            self._next_at = now + SUMMARY_INTERVAL_SECS
        log.warning(
            "no free database connection: %d request(s) answered 503 since the last line "
            "(DATABASE_POOL_SIZE=%d, %d waiting now); see /api/v1/status storage.pool",
            timeouts,
            self._size,
            waiting,
        )


class PostgresPool:
    """`size` read-only sessions shared by every thread; `lease()` lends one for a `with` block.

    Opened at construction (the sessions connect in the pool's background threads, so a server that
    is down delays requests, not the start); `close()` when no thread uses it any more.
    """

    def __init__(
        self,
        dsn: str,
        size: int,
        wait_secs: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import psycopg_pool  # noqa: PLC0415 (the optional extra is imported only on this backend)

        from anon_ticket.storage import postgres  # noqa: PLC0415 (same)

        # psycopg_pool logs every lease at INFO: at LOG_LEVEL=INFO that would be a line per request.
        logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
        self.size = size
        self._wait_secs = wait_secs
        self._timeout_error = psycopg_pool.PoolTimeout
        self._closed_error = psycopg_pool.PoolClosed
        self._timeouts = 0
        self._in_use = 0
        self._asking = 0  # threads inside getconn(): waiting for a connection, or about to get one
        self._counts = threading.Lock()
        self._summary = _Summary(size, clock)

        def configure(conn: Connection) -> None:
            postgres.configure_session(conn, read_only=True, watched=True)

        self._pool: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
            postgres.connection_string(dsn, watched=True, role="pool"),
            kwargs={"autocommit": True},
            min_size=size,
            max_size=size,
            timeout=wait_secs,
            configure=configure,
            # No check on every lease (a round trip per read): a read that finds its connection
            # broken has the pool check the idle ones (`replace_broken`) and is tried again.
            name="anon_ticket",
            open=False,
        )
        self._pool.open(wait=False)
        # Full before the first request, so that start-up is not counted as waits. Not the pool's
        # own wait(), which closes the pool on a timeout: a server slow to answer delays nothing
        # more than this, and the pool keeps connecting in the background.
        deadline = clock() + wait_secs
        while self._pool.get_stats().get("pool_available", 0) < size and clock() < deadline:
            time.sleep(0.005)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Connection]:
        """A connection for the block; `NoFreeConnection` after `wait_secs` with none free."""
        with self._counts:
            self._asking += 1
        try:
            conn = self._pool.getconn(timeout=self._wait_secs)
        except self._timeout_error as exc:
            with self._counts:
                self._asking -= 1
                self._timeouts += 1
                waiting = self._asking
            self._summary.timed_out(waiting)
            raise NoFreeConnection(
                f"no free database connection within {self._wait_secs:g} s "
                f"(all {self.size} of DATABASE_POOL_SIZE in use)"
            ) from exc
        except BaseException as exc:
            with self._counts:
                self._asking -= 1
            if isinstance(exc, self._closed_error):
                raise StorageError("the database pool is closed (the daemon is stopping)") from exc
            raise
        with self._counts:
            self._asking -= 1
            self._in_use += 1
        try:
            yield conn
        finally:
            with self._counts:
                self._in_use -= 1
            self._pool.putconn(conn)  # rolled back if left in a transaction; dropped if broken

    def replace_broken(self) -> None:
        """Check every idle connection now (one empty round trip each) and replace the dead ones.

        Called when a read found its connection broken: after a server restart or a
        `pg_terminate_backend`, the others are very likely dead too, and none is handed out again.
        """
        self._pool.check()

    def figures(self) -> PoolFigures:
        stats = self._pool.get_stats()
        with self._counts:
            timeouts, in_use, waiting = self._timeouts, self._in_use, self._asking
        return PoolFigures(
            size=self.size,
            in_use=in_use,
            waiting=waiting,
            waits=stats.get("requests_queued", 0),
            timeouts=timeouts,
            # Found dead when checked (`connections_lost`) or given back broken (`returns_bad`).
            replaced=stats.get("connections_lost", 0) + stats.get("returns_bad", 0),
        )

    def close(self) -> None:
        self._pool.close(timeout=5.0)


class PooledConnections:
    """One owner's view of the pool (a `ConnectionSource`): closing it leaves the pool open."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool
        self._closed = False

    def lease(self) -> contextlib.AbstractContextManager[Connection]:
        if self._closed:
            raise StorageError("this store has been closed")
        return self._pool.lease()

    def replace_broken(self) -> None:
        self._pool.replace_broken()

    def close(self) -> None:
        self._closed = True
