"""New payment ids from other nodes, pushed by PostgreSQL LISTEN/NOTIFY (docs/PROTOCOL.md §11).

Only the leader polls the wallet, so only the leader's own PID screen learns new payment ids from
its polls. The batch transaction that stores them also `pg_notify`s them (`notify_sql`): PostgreSQL
delivers a notification only when its transaction commits, so a listener never hears of an id it
cannot read yet. Every node listens on a connection of its own, in a thread of its own
(`PaymentIdFeed`), and hands what it hears to its PID cache.

A notification sent while a listener was disconnected is lost for it. So every time the feed
(re)establishes `LISTEN` it says so (`on_listening`), and the cache rebuilds its whole screen from
storage; the cache also rebuilds periodically, as a safety net.

The channel is per schema (`anon_ticket_pids_` and a hash of the schema's name): two instances in
one database never hear each other. A payload is at most 8000 bytes, so ids are sent in chunks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from anon_ticket.errors import StorageError

if TYPE_CHECKING:  # psycopg is the optional `postgresql` extra
    from anon_ticket.storage.postgres import Connection

log = logging.getLogger(__name__)

# The channel's name, computed by the server from the session's schema (the batch's and the
# listener's sessions agree on it because both use the operator's search_path).
CHANNEL_SQL = "'anon_ticket_pids_' || substr(md5(coalesce(current_schema(), '')), 1, 16)"
# 16 hex digits and a comma per id: 400 ids are 6,800 bytes, under PostgreSQL's 8,000-byte payload.
IDS_PER_NOTIFICATION = 400
WAIT_SLICE_SECS = 0.5  # how long one wait for notifications lasts: bounds how long stop() takes
KEEPALIVE_SECS = 10.0  # a round trip on a quiet connection, so a silently cut one is noticed
MAX_RETRY_SECS = 30.0


def notification_payloads(payment_ids: Iterable[bytes]) -> Iterator[str]:
    """The payloads that carry `payment_ids` (sorted, without repeats), each under the size limit."""
    ordered = sorted(set(payment_ids))
    for start in range(0, len(ordered), IDS_PER_NOTIFICATION):
        yield ",".join(payment_id.hex() for payment_id in ordered[start : start + IDS_PER_NOTIFICATION])


def parse_payload(payload: str) -> list[bytes]:
    """The payment ids of one payload; anything malformed is skipped (the next rebuild finds it)."""
    found = []
    for part in payload.split(","):
        try:
            raw = bytes.fromhex(part)
        except ValueError:
            continue
        if len(raw) == 8:
            found.append(raw)
    return found


class PaymentIdFeed:
    """A thread that LISTENs for new payment ids and calls `on_ids` with each notification's ids.

    `on_listening(generation)` is called each time LISTEN is (re)established, with a number that
    grows by one each time, from the feed's thread: the caller rebuilds what it may have missed
    (`generation` lets it skip a rebuild it has done since). Both callbacks must not block (tell an
    actor).
    """

    def __init__(
        self,
        open_connection: Callable[[], Connection],
        on_ids: Callable[[list[bytes]], None],
        on_listening: Callable[[int], None],
        *,
        max_retry_secs: float = MAX_RETRY_SECS,
    ) -> None:
        self._open = open_connection
        self._on_ids = on_ids
        self._on_listening = on_listening
        self._max_retry = max_retry_secs
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.generation = 0
        self.backend_pid: int | None = None  # of the listening session (for tests and the log)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pid-feed", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once LISTEN is in force (False after `timeout`: the feed keeps trying)."""
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=WAIT_SLICE_SECS + 5)

    def _run(self) -> None:
        import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

        retry = 0.0
        reported = False
        while not self._stop.is_set():
            conn: Connection | None = None
            try:
                conn = self._listen()
                if reported:
                    log.info("listening for new payment ids again; the PID screen is rebuilt")
                retry, reported = 0.0, False
                self._relay(conn)
            except (psycopg.Error, StorageError) as exc:
                self._listening.clear()
                if not reported:
                    log.warning(
                        "the connection that hears of new payment ids is down (%s); retrying, and the "
                        "PID screen is rebuilt once it is back",
                        str(exc).strip(),
                    )
                    reported = True
            finally:
                self._listening.clear()
                if conn is not None:
                    conn.close()
            retry = min(self._max_retry, max(0.2, retry * 2))
            self._stop.wait(retry)

    def _listen(self) -> Connection:
        from psycopg import sql  # noqa: PLC0415

        conn = self._open()
        try:
            row = conn.execute(f"SELECT {CHANNEL_SQL}, pg_backend_pid()").fetchone()
            assert row is not None
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
        except BaseException:
            conn.close()
            raise
        self.backend_pid = int(row[1])
        self.generation += 1
        self._listening.set()
        self._on_listening(self.generation)
        return conn

    def _relay(self, conn: Connection) -> None:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            heard = False
            for notification in conn.notifies(timeout=WAIT_SLICE_SECS):
                heard = True
                ids = parse_payload(notification.payload)
                if ids:
                    self._on_ids(ids)
            now = time.monotonic()
            if heard:
                quiet_since = now
            elif now - quiet_since >= KEEPALIVE_SECS:
                conn.execute("SELECT 1")
                quiet_since = now
