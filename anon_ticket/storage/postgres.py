"""The PostgreSQL backend (psycopg 3): the SQLite store's semantics on a server, for scale-out.

Connections run in autocommit: a read is one statement (one snapshot), a write is one explicit
transaction (`_transaction`), so no connection sits idle inside a transaction (except a
`known_payment_ids` cursor while its caller iterates). Where SQLite
serializes writers with `BEGIN IMMEDIATE`, this store takes row locks:

- the one `monitor_state` row is the poll lock: a batch, a rescan and a wallet binding take it
  exclusively, a claim shares it. A claim therefore never binds to a transfer that a batch in flight
  is removing, and a batch judges every claim committed before it (READ COMMITTED gives each statement
  after the lock a fresh snapshot);
- two racing claims insert with `ON CONFLICT DO NOTHING`: the loser waits for the winner's commit and
  returns the winner's claim, exactly as a replay would;
- a revocation and a batch lock the claim rows they change, so an operator revocation is never
  overwritten by a reorg decision;
- a batch `pg_notify`s its payment ids to the other nodes (docs/PROTOCOL.md §11; delivered on commit).

Durability: a writer connection never commits with `synchronous_commit=off` (if the server is set
that way, the session turns it back on): a claim's token and an operator revocation are answered only
after the commit is flushed, so they survive a crash of the daemon and of the server. PostgreSQL has
no cheaper setting that still survives a server crash, and a claim costs ~0.4 ms this way.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Protocol

import psycopg
from psycopg import conninfo
from psycopg.rows import TupleRow

from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import (
    TokenStatus,
    Transfer,
)
from anon_ticket.core.rescan import RescanRequest, refusal
from anon_ticket.errors import CursorMoved, RescanRefused, StorageError
from anon_ticket.storage.backend_rules import (
    CLAIM_COLUMNS,
    COUNTED,
    DAY_SHARDS,
    DOUBLE_SPEND,
    GONE,
    HIDDEN_MASK,
    JOINED_CLAIM_COLUMNS,
    NEW_CLAIM_COLUMNS,
    access_credits,
    claim_from_row,
    claim_view,
    day_totals_from_rows,
    issue_decision,
    never_counted_from_rows,
    new_claim,
    pending_spans_from_rows,
    per_day,
    private_token_days_from_rows,
    rejudge,
    replayed_claim,
    snapshot_from_rows,
    underpaid_from_rows,
    wallet_mismatch,
)
from anon_ticket.storage.pid_feed import CHANNEL_SQL, notification_payloads
from anon_ticket.storage.protocols import (
    BatchOutcome,
    ClaimOutcome,
    ClaimRecord,
    ClaimRequest,
    Counts,
    DayTotals,
    IssueOutcome,
    IssueRequest,
    IssueVerdict,
    Listing,
    MonitorState,
    NeverCounted,
    PaymentSnapshot,
    PendingSpan,
    PrivateTokenDay,
    SpendRequest,
    TransferBatch,
    UnderpaidPayment,
)

Connection = psycopg.Connection[TupleRow]

# Added to the operator's URL only when it does not set them itself.
CONNECT_DEFAULTS = {"connect_timeout": "10", "application_name": "anon_ticket"}
# For the sessions whose death must be noticed soon (the poller's leadership, the payment id feed):
# a peer that vanished without closing (a cut network, a dead machine) is found within about 10 s,
# by libpq on our side and by the server on its side, where the leader's advisory lock lives
# (docs/PROTOCOL.md §11: another node takes over within 3 poll intervals + 10 s).
LIVENESS_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "4",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
_SERVER_LIVENESS_SQL = (
    "SELECT set_config('tcp_keepalives_idle', '4', false), "
    "set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false)"
)
# Known-payment-id streaming: rows fetched per round trip from the server-side cursor.
STREAM_CHUNK = 10_000

# Claim, transfers and wallet height of one payment in one statement, so in one snapshot: one row
# per transfer (claim columns repeated), or one row with NULL transfer columns when there is none.
_PAYMENT_SQL = f"""
    SELECT m.wallet_height, {JOINED_CLAIM_COLUMNS}, t.txid, t.amount, t.height, t.flags
    FROM monitor_state AS m
    LEFT JOIN claims AS c ON c.payment_id = %(p)s
    LEFT JOIN transfers AS t ON t.payment_id = %(p)s
    WHERE m.id = 1
    ORDER BY t.txid
"""

_COUNTS_SQL = f"""
    WITH h AS (SELECT coalesce(wallet_height, 0) AS h FROM monitor_state WHERE id = 1),
    unclaimed AS (
        SELECT
            sum(CASE WHEN t.flags & {HIDDEN_MASK} = 0 AND t.height > 0
                     AND h.h - t.height >= %(conf)s THEN t.amount ELSE 0 END) AS counted,
            count(*) FILTER (WHERE t.flags & {HIDDEN_MASK} = 0
                             AND (t.height = 0 OR h.h - t.height < %(conf)s)) AS pending
        FROM transfers AS t CROSS JOIN h
        WHERE NOT EXISTS (SELECT 1 FROM claims AS c WHERE c.payment_id = t.payment_id)
        GROUP BY t.payment_id
    )
    SELECT
        (SELECT count(*) FROM unclaimed WHERE counted < %(min)s AND pending > 0),
        (SELECT count(*) FROM unclaimed WHERE counted >= %(min)s),
        (SELECT count(*) FROM claims),
        (SELECT count(*) FROM claims WHERE status = {int(TokenStatus.ACTIVE)})
"""

# The admin panel's figures: the same statements as the SQLite store's (see FiguresStore).
_DAY_TOTALS_SQL = f"""
    SELECT 'claims', claimed_at / 86400, count(*), 0 FROM claims
    WHERE claimed_at >= %(since)s AND claimed_at < %(until)s GROUP BY claimed_at / 86400
    UNION ALL
    SELECT 'counted', counted_at / 86400, count(*), sum(amount) FROM transfers
    WHERE counted_at >= %(since)s AND counted_at < %(until)s AND (flags & {COUNTED}) <> 0
    GROUP BY counted_at / 86400
"""

_PENDING_SPANS_SQL = f"""
    SELECT payment_id, first_seen_at, counted_at FROM transfers
    WHERE counted_at > %(since)s AND (flags & {COUNTED}) <> 0 AND first_seen_at IS NOT NULL
    UNION ALL
    SELECT payment_id, first_seen_at, NULL FROM transfers
    WHERE NOT settled AND (flags & {HIDDEN_MASK | COUNTED}) = 0 AND first_seen_at IS NOT NULL
"""

_UNDERPAID_SQL = f"""
    WITH p AS (
        SELECT payment_id, sum(amount) AS total, count(*) AS n, max(height) AS last_height,
               min(first_seen_at) AS first_seen
        FROM transfers AS t
        WHERE (flags & {HIDDEN_MASK}) = 0
          AND NOT EXISTS (SELECT 1 FROM claims AS c WHERE c.payment_id = t.payment_id)
        GROUP BY payment_id
        HAVING count(*) FILTER (
                   WHERE height = 0
                      OR (SELECT coalesce(wallet_height, 0) FROM monitor_state WHERE id = 1) - height
                         < %(conf)s) = 0
           AND sum(amount) > 0 AND sum(amount) < %(min)s
    )
    SELECT payment_id, total, n, last_height, first_seen, count(*) OVER (), sum(total) OVER ()
    FROM p ORDER BY last_height, payment_id LIMIT %(limit)s
"""

_NEVER_COUNTED_SQL = f"""
    SELECT payment_id, txid, amount, height, flags, first_seen_at, count(*) OVER (), sum(amount) OVER ()
    FROM transfers WHERE (flags & 3) <> 0 AND (flags & {GONE}) = 0
    ORDER BY (height = 0) DESC, height DESC, txid LIMIT %(limit)s
"""


def connection_string(dsn: str, *, watched: bool = False, role: str | None = None) -> str:
    """`dsn` with our defaults added where the operator's URL does not set them itself.

    `role` names the connection's job in `application_name` (`anon_ticket pool`, `anon_ticket lock`,
    …), so that `pg_stat_activity` shows what each of a node's connections is for.
    Errors never quote the URL (it may hold a password).
    """
    try:
        given = conninfo.conninfo_to_dict(dsn)
        defaults = {**CONNECT_DEFAULTS, **(LIVENESS_DEFAULTS if watched else {})}
        if role is not None:
            defaults["application_name"] = f"anon_ticket {role}"
        extra = {key: value for key, value in defaults.items() if key not in given}
        return conninfo.make_conninfo(dsn, **extra)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc


def configure_session(conn: Connection, *, read_only: bool, watched: bool) -> None:
    """Set a new session up as every part of the daemon relies on (psycopg.Error on failure)."""
    if watched:
        conn.execute(_SERVER_LIVENESS_SQL)  # no effect over a Unix socket, where none is needed
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    else:
        # A DBA's cluster-wide `off` would let a returned token or revocation vanish in a crash.
        conn.execute(
            "SELECT set_config('synchronous_commit', 'on', false) "
            "WHERE current_setting('synchronous_commit') = 'off'"
        )


def connect(
    dsn: str, *, read_only: bool = False, watched: bool = False, role: str | None = None
) -> Connection:
    """Open an autocommit connection configured the way every part of the daemon relies on.

    `watched`: a session whose loss must be noticed within seconds on both ends (LIVENESS_DEFAULTS).
    Errors never quote the URL (it may hold a password): libpq's message names host and port only.
    """
    try:
        conn = psycopg.connect(connection_string(dsn, watched=watched, role=role), autocommit=True)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        configure_session(conn, read_only=read_only, watched=watched)
    except psycopg.Error as exc:
        conn.close()
        raise StorageError(f"cannot configure the PostgreSQL session: {exc}") from exc
    return conn


class ConnectionSource(Protocol):
    """Where a store's statements run: its own connection, or one lent by the node's pool."""

    def lease(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for one statement or one transaction, given back when the block ends."""

    def replace_broken(self) -> None:
        """A lease's connection was found broken: make sure the next lease gets a live one."""

    def close(self) -> None:
        """No more leases from this source (a pool's view leaves the pool itself open)."""


class DedicatedConnection:
    """One connection for one owner thread (the storage writer, a command), reopened if it broke."""

    def __init__(self, dsn: str, *, read_only: bool = False, role: str | None = None) -> None:
        self._dsn = dsn
        self._read_only = read_only
        self._role = role
        self._closed = False
        self._conn = connect(dsn, read_only=read_only, role=role)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Connection]:
        if self._closed:
            raise StorageError("this store has been closed")
        if self._conn.closed:
            self._conn = connect(self._dsn, read_only=self._read_only, role=self._role)
        yield self._conn

    def replace_broken(self) -> None:
        return None  # a broken connection is closed: the next lease opens a new one

    def close(self) -> None:
        self._closed = True
        self._conn.close()


class PostgresStore:
    """All three storage protocols over a `ConnectionSource`.

    Each read is one statement on one leased connection, each write one transaction on one: a store
    over the node's pool is shared by every request thread (the pool bounds the connections), a
    store over a `DedicatedConnection` belongs to one thread (the storage writer).

    A connection broken by a server restart or a network cut is replaced, so no owner needs to
    rebuild the store: a read outside a transaction retries once on a new lease, a write fails with
    `StorageError` (and is never half-applied).
    """

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    def close(self) -> None:
        self._source.close()

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """BEGIN … COMMIT on one leased connection, rolled back on any error; psycopg errors become
        StorageError."""
        try:
            with self._source.lease() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise StorageError(f"database write failed: {exc}") from exc

    def _all(
        self,
        query: str,
        params: Sequence[Any] | dict[str, Any] = (),
        conn: Connection | None = None,
    ) -> list[TupleRow]:
        """Run one read (on `conn` when inside a transaction); psycopg errors become StorageError.

        Outside a transaction, a session that died while idle (server restart, `pg_terminate_backend`,
        `idle_session_timeout`) is replaced and the read tried once more: a read is idempotent. A
        write is never retried here; its caller sees the error (a buyer retries a redeem safely).
        """
        if conn is not None:
            try:
                return conn.execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise StorageError(f"database read failed: {exc}") from exc
        for attempt in (1, 2):
            with self._source.lease() as leased:
                idle = leased.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                try:
                    return leased.execute(query, params).fetchall()
                except psycopg.Error as exc:
                    if attempt == 2 or not (idle and leased.broken):
                        raise StorageError(f"database read failed: {exc}") from exc
            self._source.replace_broken()
        raise AssertionError("unreachable")  # pragma: no cover

    def _one(
        self, query: str, params: Sequence[Any] | dict[str, Any] = (), conn: Connection | None = None
    ) -> TupleRow | None:
        rows = self._all(query, params, conn)
        return rows[0] if rows else None

    def _payment(self, payment_id: bytes, conn: Connection | None = None) -> PaymentSnapshot:
        rows = self._all(_PAYMENT_SQL, {"p": payment_id}, conn)
        if not rows:
            raise StorageError("monitor_state has no row: the schema was not created by anon_ticket")
        return snapshot_from_rows(rows)

    # -- PaymentStore ---------------------------------------------------------------------------

    def transfers_for(self, payment_id: bytes) -> list[Transfer]:
        rows = self._all(
            "SELECT txid, amount, height, flags FROM transfers WHERE payment_id = %s ORDER BY txid",
            (payment_id,),
        )
        return [Transfer(*row) for row in rows]

    def snapshot(self, payment_id: bytes) -> PaymentSnapshot:
        """Claim, transfers and wallet height from one statement, so one snapshot."""
        return self._payment(payment_id)

    def known_payment_ids(self) -> Generator[bytes, None, None]:
        """Every payment id with a transfer, streamed from a server-side cursor in chunks.

        The cursor's transaction stays open while the caller iterates; `close()` the generator (or
        exhaust it) to end it.
        """
        try:
            with (
                self._source.lease() as conn,
                conn.transaction(),
                conn.cursor(name="known_payment_ids") as cursor,
            ):
                cursor.itersize = STREAM_CHUNK
                cursor.execute("SELECT DISTINCT payment_id FROM transfers")
                for (payment_id,) in cursor:
                    yield payment_id
        except psycopg.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    def unsettled_transfers(self) -> list[tuple[bytes, Transfer]]:
        rows = self._all("SELECT payment_id, txid, amount, height, flags FROM transfers WHERE NOT settled")
        return [(row[0], Transfer(*row[1:])) for row in rows]

    def counts(self, min_confirmations: int, min_amount: int) -> Counts:
        """All totals from one statement, so they agree with each other."""
        row = self._one(_COUNTS_SQL, {"conf": min_confirmations, "min": min_amount})
        assert row is not None
        pending, redeemable, claimed, active = (int(value) for value in row)
        return Counts(
            payments_pending=pending,
            payments_redeemable=redeemable,
            payments_claimed=claimed,
            tokens_active=active,
            tokens_revoked=claimed - active,
        )

    # -- FiguresStore -------------------------------------------------------------------------

    def day_totals(self, since: int, until: int) -> list[DayTotals]:
        return day_totals_from_rows(self._all(_DAY_TOTALS_SQL, {"since": since, "until": until}))

    def pending_spans(self, since: int) -> list[PendingSpan]:
        return pending_spans_from_rows(self._all(_PENDING_SPANS_SQL, {"since": since}))

    def underpaid_payments(
        self, min_confirmations: int, min_amount: int, limit: int
    ) -> Listing[UnderpaidPayment]:
        params = {"conf": min_confirmations, "min": min_amount, "limit": limit}
        return underpaid_from_rows(self._all(_UNDERPAID_SQL, params))

    def never_counted(self, limit: int) -> Listing[NeverCounted]:
        return never_counted_from_rows(self._all(_NEVER_COUNTED_SQL, {"limit": limit}))

    # -- TokenStore -----------------------------------------------------------------------------

    def claim_for(self, payment_id: bytes) -> ClaimRecord | None:
        return self._claim_row(payment_id)

    def _claim_row(self, payment_id: bytes, conn: Connection | None = None) -> ClaimRecord | None:
        row = self._one(f"SELECT {CLAIM_COLUMNS} FROM claims WHERE payment_id = %s", (payment_id,), conn)
        return claim_from_row(row) if row else None

    def claim_by_digest(self, token_digest: bytes) -> ClaimRecord | None:
        row = self._one(
            f"SELECT {CLAIM_COLUMNS} FROM claims WHERE substr(token_digest, 1, 8) = %s AND token_digest = %s",
            (token_digest[:8], token_digest),
        )
        return claim_from_row(row) if row else None

    def claim(self, pid: PaymentId, now: int, min_amount: int, min_confirmations: int) -> ClaimOutcome | None:
        """Claim the payment of `pid` once, ever; a second call returns the first claim."""
        return self.claim_many([ClaimRequest(pid, now, min_amount, min_confirmations)])[0]

    def claim_many(self, requests: Sequence[ClaimRequest]) -> list[ClaimOutcome | None]:
        """Several claims in one transaction, committed (and flushed) once: group commit.

        The poll lock is shared first, in its own statement: the reads after it see every batch
        committed before, and no batch commits until these claims have.
        """
        with self._transaction() as conn:
            conn.execute("SELECT 1 FROM monitor_state WHERE id = 1 FOR SHARE")
            return [self._claim_one(conn, request) for request in requests]

    def _claim_one(self, conn: Connection, request: ClaimRequest) -> ClaimOutcome | None:
        payment_id = request.pid.chain_payment_id().raw
        seen = self._payment(payment_id, conn)
        view = claim_view(seen, request)
        existing = seen.claim
        if existing is None:
            claim = new_claim(view, request)
            if claim is None:
                return None
            token, values = claim
            row = conn.execute(
                f"INSERT INTO claims ({NEW_CLAIM_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (payment_id) DO NOTHING RETURNING {CLAIM_COLUMNS}",
                values,
            ).fetchone()
            if row is not None:
                return ClaimOutcome(claim_from_row(row), token, True, view.counted_total)
            # A racing claim committed first (its insert made ours wait): answer as a replay.
            existing = self._claim_row(payment_id, conn)
            assert existing is not None, "ON CONFLICT found a claim that is not there"
        return replayed_claim(existing, view, request)

    def revoke(self, token_digest: bytes, reason: str | None, now: int) -> ClaimRecord | None:
        """Revoke for the operator, committed (and flushed) before returning.

        A second revocation keeps the first time and reason; a `payment_reorged` token becomes an
        operator revocation, which nothing reinstates. The row is locked before it is judged.
        """
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {CLAIM_COLUMNS} FROM claims "
                "WHERE substr(token_digest, 1, 8) = %s AND token_digest = %s FOR UPDATE",
                (token_digest[:8], token_digest),
            ).fetchone()
            if row is None:
                return None
            record = claim_from_row(row)
            if record.status is TokenStatus.REVOKED:
                return record
            row = conn.execute(
                "UPDATE claims SET status = %s, revoked_at = %s, revoke_reason = %s "
                f"WHERE payment_id = %s RETURNING {CLAIM_COLUMNS}",
                (int(TokenStatus.REVOKED), now, reason, record.payment_id),
            ).fetchone()
        assert row is not None
        return claim_from_row(row)

    # -- PrivateTokenStore ----------------------------------------------------------------------

    def issue_many(self, requests: Sequence[IssueRequest]) -> list[IssueOutcome]:
        """Each blinded message decided and counted in one transaction, committed (and flushed) once.

        Every claim's issuance row is locked (FOR UPDATE, in key order, so two nodes' batches cannot
        deadlock) before its count is read: concurrent requests on any number of nodes take turns
        per claim, and the allowance is never exceeded. The poll lock is shared first, as a claim
        does, so the counted amount read is that of every batch committed before.
        """
        with self._transaction() as conn:
            conn.execute("SELECT 1 FROM monitor_state WHERE id = 1 FOR SHARE")
            claims = [self.claim_by_digest(request.token_digest) for request in requests]
            for payment_id in sorted({claim.payment_id for claim in claims if claim is not None}):
                conn.execute(
                    "INSERT INTO private_token_issuance (payment_id, issued) VALUES (%s, 0) "
                    "ON CONFLICT (payment_id) DO NOTHING",
                    (payment_id,),
                )
                conn.execute(
                    "SELECT 1 FROM private_token_issuance WHERE payment_id = %s FOR UPDATE", (payment_id,)
                )
            outcomes = [
                self._issue_one(conn, request, claim) for request, claim in zip(requests, claims, strict=True)
            ]
            granted = per_day(requests, [outcome.verdict is IssueVerdict.GRANTED for outcome in outcomes])
            self._count_days(conn, "issued", granted)
        return outcomes

    def _issue_one(self, conn: Connection, request: IssueRequest, claim: ClaimRecord | None) -> IssueOutcome:
        seen = self._payment(claim.payment_id) if claim is not None else None
        issued, known = (0, False)
        if claim is not None:
            issued, known = self.issued_count(claim.payment_id, request.request_digest)
        outcome = issue_decision(claim, seen, issued, known, request)
        if outcome.verdict is IssueVerdict.GRANTED:
            assert claim is not None
            conn.execute(
                "INSERT INTO private_token_requests (payment_id, request_digest) VALUES (%s, %s)",
                (claim.payment_id, request.request_digest),
            )
            conn.execute(
                "UPDATE private_token_issuance SET issued = issued + 1 WHERE payment_id = %s",
                (claim.payment_id,),
            )
        return outcome

    def _count_days(self, conn: Connection, column: str, per_day: dict[int, int]) -> None:
        """Add to the day's figures on one shard row chosen at random (no hot row across nodes)."""
        if not per_day:
            return
        shard = secrets.randbelow(DAY_SHARDS)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO private_token_days (day, shard, {column}) VALUES (%s, %s, %s) "
                f"ON CONFLICT (day, shard) DO UPDATE SET {column} = private_token_days.{column} "
                f"+ excluded.{column}",
                [(day, shard, count) for day, count in sorted(per_day.items())],
            )

    def issued_count(self, payment_id: bytes, request_digest: bytes | None = None) -> tuple[int, bool]:
        row = self._one(
            "SELECT (SELECT issued FROM private_token_issuance WHERE payment_id = %(p)s), "
            "EXISTS (SELECT 1 FROM private_token_requests "
            "WHERE payment_id = %(p)s AND request_digest = %(r)s)",
            {"p": payment_id, "r": request_digest},
        )
        assert row is not None
        return int(row[0] or 0), bool(row[1])

    def spend_many(self, requests: Sequence[SpendRequest]) -> list[bool]:
        """Each nonce inserted once, ever, per key: of two nodes spending one token at the same time,
        the second's insert waits for the first's commit and then finds the row (False)."""
        with self._transaction() as conn:
            fresh = [
                conn.execute(
                    "INSERT INTO private_token_spends (key_id, nonce_digest) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (request.key_id, request.nonce_digest),
                ).fetchone()
                is not None
                for request in requests
            ]
            spent = per_day(requests, fresh)
            self._count_days(conn, "spent", spent)
        return fresh

    def private_token_days(self, since_day: int, until_day: int) -> list[PrivateTokenDay]:
        return private_token_days_from_rows(
            self._all(
                "SELECT day, sum(issued), sum(spent) FROM private_token_days "
                "WHERE day >= %s AND day < %s GROUP BY day ORDER BY day",
                (since_day, until_day),
            )
        )

    # -- MonitorStateStore ----------------------------------------------------------------------

    def monitor_state(self) -> MonitorState:
        row = self._one(
            "SELECT wallet_address, scan_floor, scan_cursor, wallet_height, last_poll_at, highest_height "
            "FROM monitor_state WHERE id = 1"
        )
        if row is None:
            raise StorageError("monitor_state has no row: the schema was not created by anon_ticket")
        return MonitorState(*row)

    def bind_wallet(self, address: str) -> None:
        """Record the wallet on first start; refuse a different one later (docs/PROTOCOL.md §3)."""
        with self._transaction() as conn:
            row = conn.execute("SELECT wallet_address FROM monitor_state WHERE id = 1 FOR UPDATE").fetchone()
            assert row is not None
            (bound,) = row
            if bound is None:
                conn.execute("UPDATE monitor_state SET wallet_address = %s WHERE id = 1", (address,))
            elif bound != address:
                raise wallet_mismatch(bound, address)

    def start_scan(self, height: int) -> MonitorState:
        """Set floor and cursor on the very first start; a persisted cursor always wins."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE monitor_state SET scan_floor = %(h)s, scan_cursor = %(h)s "
                "WHERE id = 1 AND scan_cursor IS NULL",
                {"h": height},
            )
        return self.monitor_state()

    def rescan_from(self, height: int, reset_highest: int | None = None) -> MonitorState:
        """Move the cursor back on purpose; transfers above it are watched again.

        The rules (anon_ticket/core/rescan.py) are checked on the row locked for this write.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT scan_cursor, highest_height FROM monitor_state WHERE id = 1 FOR UPDATE"
            ).fetchone()
            assert row is not None
            refused = refusal(RescanRequest(height, reset_highest), row[0], row[1])
            if refused is not None:
                raise RescanRefused(refused)
            conn.execute(
                "UPDATE monitor_state SET scan_cursor = %(h)s, "
                "scan_floor = least(coalesce(scan_floor, %(h)s), %(h)s) WHERE id = 1",
                {"h": height},
            )
            if reset_highest is not None:
                # The last wallet height too: redeems count confirmations from it until the next poll.
                conn.execute(
                    "UPDATE monitor_state SET highest_height = %(w)s, "
                    "wallet_height = least(coalesce(wallet_height, %(w)s), %(w)s) WHERE id = 1",
                    {"w": reset_highest},
                )
            conn.execute("UPDATE transfers SET settled = false WHERE settled AND height >= %s", (height,))
        return self.monitor_state()

    def apply_batch(self, batch: TransferBatch) -> BatchOutcome:
        """Apply one poll: transfers, disappearances, reorg revocations and the cursor, atomically.

        The cursor is read under the exclusive poll lock, so the compare-and-set holds against a
        concurrent `rescan` (which waits, or made this batch wait and then refuses it) and against a
        second leader for a moment (§11): of two batches from the same cursor, the second is refused
        once the first moved it, and if the cursor did not move (same wallet height) the second
        re-applies the same upserts, which changes nothing.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT scan_cursor FROM monitor_state WHERE id = 1 FOR UPDATE").fetchone()
            assert row is not None
            (cursor,) = row
            if cursor != batch.expected_cursor:
                raise CursorMoved(f"scan cursor is {cursor}, the batch expected {batch.expected_cursor}")
            with conn.cursor() as cur:
                # first_seen_at is written once, by the poll that inserts the row (the panel's figures).
                cur.executemany(
                    "INSERT INTO transfers (payment_id, txid, amount, height, flags, settled, first_seen_at) "
                    "VALUES (%s, %s, %s, %s, %s, false, %s) ON CONFLICT (payment_id, txid) DO UPDATE SET "
                    "amount = excluded.amount, height = excluded.height, settled = false, "
                    # COUNTED survives an update (a reorg re-mining the tx) unless a double spend is seen.
                    f"flags = excluded.flags | CASE WHEN excluded.flags & {DOUBLE_SPEND} <> 0 THEN 0 "
                    f"ELSE transfers.flags & {COUNTED} END",
                    [
                        (pid, t.txid, t.amount, t.height, int(t.flags), batch.polled_at)
                        for pid, t in batch.upserts
                    ],
                )
                cur.executemany(
                    f"UPDATE transfers SET flags = (flags | {GONE}) & ~{COUNTED} "
                    "WHERE payment_id = %s AND txid = %s",
                    batch.gone,
                )
            # Transfers reaching the confirmations now count for good (see payments.evaluate).
            newly_counted = {
                bytes(row[0])
                for row in conn.execute(
                    f"UPDATE transfers SET flags = flags | {COUNTED}, counted_at = %s WHERE NOT settled "
                    f"AND flags & {HIDDEN_MASK | COUNTED} = 0 AND height > 0 AND %s - height >= %s "
                    "RETURNING payment_id",
                    (batch.polled_at, batch.wallet_height, batch.min_confirmations),
                ).fetchall()
            }
            conn.execute(
                "UPDATE transfers SET settled = true WHERE NOT settled AND "
                f"(height BETWEEN 1 AND %s OR (height = 0 AND flags & {GONE} <> 0))",
                (batch.settle_at_or_below,),
            )
            conn.execute(
                "UPDATE monitor_state SET scan_cursor = %(c)s, wallet_height = %(h)s, last_poll_at = %(t)s, "
                "highest_height = greatest(coalesce(highest_height, %(h)s), %(h)s) WHERE id = 1",
                {"c": batch.new_cursor, "h": batch.wallet_height, "t": batch.polled_at},
            )
            # The other nodes' PID screens (docs/PROTOCOL.md §11): delivered only if this commits.
            for payload in notification_payloads(pid for pid, _ in batch.upserts):
                conn.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", (payload,))
            touched = {pid for pid, _ in batch.upserts} | {pid for pid, _ in batch.gone}
            revoked, reinstated = self._judge_claims(conn, touched, batch)
            self._credit_access(conn, newly_counted, batch)
        return BatchOutcome(
            revoked=tuple(revoked),
            reinstated=tuple(reinstated),
            changed_transfers=len(batch.upserts) + len(batch.gone),
        )

    def _credit_access(self, conn: Connection, payment_ids: set[bytes], batch: TransferBatch) -> None:
        """Transfers counted by this poll extend their claim's paid time (docs/PROTOCOL.md §13).

        The claim rows are locked, as when judging them, so a racing revocation or claim is ordered."""
        if batch.access is None or not payment_ids:
            return
        claims = [
            claim_from_row(row)
            for row in conn.execute(
                f"SELECT {CLAIM_COLUMNS} FROM claims WHERE payment_id = ANY(%s) AND access_until IS NOT NULL "
                "ORDER BY payment_id FOR UPDATE",
                (sorted(payment_ids),),
            )
        ]
        if not claims:
            return
        transfers: dict[bytes, list[Transfer]] = {record.payment_id: [] for record in claims}
        for row in conn.execute(
            "SELECT payment_id, txid, amount, height, flags FROM transfers WHERE payment_id = ANY(%s)",
            (list(transfers),),
        ):
            transfers[bytes(row[0])].append(Transfer(*row[1:]))
        credits = access_credits(((record, transfers[record.payment_id]) for record in claims), batch)
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE claims SET access_until = %s, access_credited = %s WHERE payment_id = %s", credits
            )

    def _judge_claims(
        self, conn: Connection, touched: set[bytes], batch: TransferBatch
    ) -> tuple[list[bytes], list[bytes]]:
        """Re-judge the claims of touched payments and every reorg-revoked claim, in two reads.

        The claim rows are locked (in key order) before they are judged, so a concurrent operator
        revocation either lands first and is respected, or waits and wins afterwards.
        """
        claims = [
            claim_from_row(row)
            for row in conn.execute(
                f"SELECT {CLAIM_COLUMNS} FROM claims "
                "WHERE (payment_id = ANY(%s) OR status = %s) AND status <> %s "
                "ORDER BY payment_id FOR UPDATE",
                (sorted(touched), int(TokenStatus.REORGED), int(TokenStatus.REVOKED)),
            )
        ]
        if not claims:
            return [], []
        transfers: dict[bytes, list[Transfer]] = {record.payment_id: [] for record in claims}
        for row in conn.execute(
            "SELECT payment_id, txid, amount, height, flags FROM transfers WHERE payment_id = ANY(%s)",
            (list(transfers),),
        ):
            transfers[row[0]].append(Transfer(*row[1:]))
        revoked, reinstated = rejudge(((record, transfers[record.payment_id]) for record in claims), batch)
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE claims SET status = %s, revoked_at = %s, revoke_reason = NULL WHERE payment_id = %s",
                [(int(TokenStatus.REORGED), batch.polled_at, payment_id) for payment_id in revoked],
            )
            cur.executemany(
                "UPDATE claims SET status = %s, revoked_at = NULL, revoke_reason = NULL "
                "WHERE payment_id = %s",
                [(int(TokenStatus.ACTIVE), payment_id) for payment_id in reinstated],
            )
        return revoked, reinstated
