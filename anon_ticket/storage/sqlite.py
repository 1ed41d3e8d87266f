"""The embedded SQLite backend: one file, WAL, one writer connection, one reader per thread.

Every connection gets `journal_mode=WAL` and `synchronous=NORMAL` (pysqlite3-binary defaults to FULL).
Under NORMAL a committed transaction survives a killed process but not a power cut, which is right
for a poll batch: the cursor commits with it, so a lost batch is simply polled again. What the daemon
acknowledges to a person must survive both: a claim (its token is in the buyer's hands), an operator
revocation or rescan, and a Privacy Pass issuance or spend commit with `synchronous=FULL`, i.e. with
the WAL fsynced before the answer (and before any reader can see the commit). docs/ARCHITECTURE.md
("Durability") lists every write; tests/test_power_loss.py cuts the power under the daemon.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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

MIN_SQLITE = (3, 35, 0)  # UPDATE/INSERT … RETURNING

# Claims and counted transfers per UTC day, in one statement (one snapshot); see FiguresStore.
_DAY_TOTALS_SQL = f"""
    SELECT 'claims', claimed_at / 86400, count(*), 0 FROM claims
    WHERE claimed_at >= ?1 AND claimed_at < ?2 GROUP BY claimed_at / 86400
    UNION ALL
    SELECT 'counted', counted_at / 86400, count(*), sum(amount) FROM transfers
    WHERE counted_at >= ?1 AND counted_at < ?2 AND flags & {COUNTED} != 0 GROUP BY counted_at / 86400
"""

_PENDING_SPANS_SQL = f"""
    SELECT payment_id, first_seen_at, counted_at FROM transfers
    WHERE counted_at > ? AND flags & {COUNTED} != 0 AND first_seen_at IS NOT NULL
    UNION ALL
    SELECT payment_id, first_seen_at, NULL FROM transfers
    WHERE settled = 0 AND flags & {HIDDEN_MASK | COUNTED} = 0 AND first_seen_at IS NOT NULL
"""

# Unclaimed payments whose visible transfers all have their confirmations, below the minimum: money
# that arrived and that no redeem can turn into a token (unless the buyer pays the difference).
_UNDERPAID_SQL = f"""
    WITH p AS (
        SELECT payment_id, sum(amount) AS total, count(*) AS n, max(height) AS last_height,
               min(first_seen_at) AS first_seen
        FROM transfers AS t
        WHERE flags & {HIDDEN_MASK} = 0
          AND NOT EXISTS (SELECT 1 FROM claims AS c WHERE c.payment_id = t.payment_id)
        GROUP BY payment_id
        HAVING sum(CASE WHEN height = 0
                        OR (SELECT coalesce(wallet_height, 0) FROM monitor_state WHERE id = 1) - height < ?1
                   THEN 1 ELSE 0 END) = 0
           AND sum(amount) > 0 AND sum(amount) < ?2
    )
    SELECT payment_id, total, n, last_height, first_seen, count(*) OVER (), sum(total) OVER ()
    FROM p ORDER BY last_height, payment_id LIMIT ?3
"""

_NEVER_COUNTED_SQL = f"""
    SELECT payment_id, txid, amount, height, flags, first_seen_at, count(*) OVER (), sum(amount) OVER ()
    FROM transfers WHERE flags & 3 != 0 AND flags & {GONE} = 0
    ORDER BY height = 0 DESC, height DESC, txid LIMIT ?
"""

_SNAPSHOT_SQL = f"""
    SELECT m.wallet_height, {JOINED_CLAIM_COLUMNS},
           t.txid, t.amount, t.height, t.flags
    FROM monitor_state AS m
    LEFT JOIN claims AS c ON c.payment_id = ?1
    LEFT JOIN transfers AS t ON t.payment_id = ?1
    WHERE m.id = 1
"""


def sqlite_module() -> types.ModuleType:
    """pysqlite3 where its wheel exists, else the standard module if its SQLite is new enough."""
    module: types.ModuleType
    try:
        module = importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        module = importlib.import_module("sqlite3")
    if module.sqlite_version_info < MIN_SQLITE:
        raise StorageError(
            f"SQLite {module.sqlite_version} is too old: anon_ticket needs 3.35 or newer (RETURNING); "
            "install pysqlite3-binary or a newer Python"
        )
    return module


def connect(path: Path, *, query_only: bool = False) -> Any:
    """Open a connection configured the way every part of the daemon relies on."""
    sqlite = sqlite_module()
    try:
        # Each connection is used by one thread at a time by design; closing may happen elsewhere.
        conn = sqlite.connect(str(path), isolation_level=None, timeout=10.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if query_only:
            conn.execute("PRAGMA query_only=1")
    except sqlite.Error as exc:
        raise StorageError(f"cannot open SQLite database {path}: {exc}") from exc
    return conn


class SqliteStore:
    """All three storage protocols over one connection. Not thread-safe: one per thread."""

    def __init__(self, path: Path, *, query_only: bool = False) -> None:
        self._sqlite = sqlite_module()
        self._conn = connect(path, query_only=query_only)
        self.path = path

    def close(self) -> None:
        self._conn.close()

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[Any]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; SQLite errors become StorageError."""
        conn = self._conn
        try:
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except self._sqlite.Error as exc:
            raise StorageError(f"database write failed: {exc}") from exc
        finally:
            if durable:
                with contextlib.suppress(self._sqlite.Error):
                    conn.execute("PRAGMA synchronous=NORMAL")

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except self._sqlite.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # -- PaymentStore ---------------------------------------------------------------------------

    def transfers_for(self, payment_id: bytes) -> list[Transfer]:
        rows = self._all(
            "SELECT txid, amount, height, flags FROM transfers WHERE payment_id = ?", (payment_id,)
        )
        return [Transfer(*row) for row in rows]

    @contextlib.contextmanager
    def _read_transaction(self) -> Iterator[None]:
        """Several reads from one WAL snapshot, so a commit in between cannot split them."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                yield
            finally:
                conn.execute("COMMIT")
        except self._sqlite.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    def snapshot(self, payment_id: bytes) -> PaymentSnapshot:
        """Claim, transfers and wallet height as of one moment.

        One statement (so one implicit read transaction): this is the read behind every redeem that
        passes the PID screen, and one statement costs a fifth of BEGIN, three SELECTs and COMMIT.
        """
        return snapshot_from_rows(self._all(_SNAPSHOT_SQL, (payment_id,)))

    def known_payment_ids(self) -> Iterator[bytes]:
        try:
            cursor = self._conn.execute("SELECT DISTINCT payment_id FROM transfers")
            for (payment_id,) in cursor:
                yield payment_id
        except self._sqlite.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    def unsettled_transfers(self) -> list[tuple[bytes, Transfer]]:
        rows = self._all("SELECT payment_id, txid, amount, height, flags FROM transfers WHERE settled = 0")
        return [(row[0], Transfer(*row[1:])) for row in rows]

    def counts(self, min_confirmations: int, min_amount: int) -> Counts:
        with self._read_transaction():
            return self._counts(min_confirmations, min_amount)

    def _counts(self, min_confirmations: int, min_amount: int) -> Counts:
        height = self.monitor_state().wallet_height or 0
        unclaimed = self._one(
            f"""
            SELECT coalesce(sum(counted >= :min), 0), coalesce(sum(counted < :min AND pending > 0), 0)
            FROM (
                SELECT
                    sum(CASE WHEN flags & {HIDDEN_MASK} = 0 AND height > 0 AND :h - height >= :conf
                             THEN amount ELSE 0 END) AS counted,
                    sum(CASE WHEN flags & {HIDDEN_MASK} = 0 AND (height = 0 OR :h - height < :conf)
                             THEN 1 ELSE 0 END) AS pending
                FROM transfers AS t
                WHERE NOT EXISTS (SELECT 1 FROM claims AS c WHERE c.payment_id = t.payment_id)
                GROUP BY payment_id
            )
            """.replace(":min", "?1")
            .replace(":h", "?2")
            .replace(":conf", "?3"),
            (min_amount, height, min_confirmations),
        )
        by_status = dict(self._all("SELECT status, count(*) FROM claims GROUP BY status"))
        claimed = sum(by_status.values())
        return Counts(
            payments_pending=unclaimed[1],
            payments_redeemable=unclaimed[0],
            payments_claimed=claimed,
            tokens_active=by_status.get(int(TokenStatus.ACTIVE), 0),
            tokens_revoked=claimed - by_status.get(int(TokenStatus.ACTIVE), 0),
        )

    # -- FiguresStore -------------------------------------------------------------------------

    def day_totals(self, since: int, until: int) -> list[DayTotals]:
        return day_totals_from_rows(self._all(_DAY_TOTALS_SQL, (since, until)))

    def pending_spans(self, since: int) -> list[PendingSpan]:
        return pending_spans_from_rows(self._all(_PENDING_SPANS_SQL, (since,)))

    def underpaid_payments(
        self, min_confirmations: int, min_amount: int, limit: int
    ) -> Listing[UnderpaidPayment]:
        return underpaid_from_rows(self._all(_UNDERPAID_SQL, (min_confirmations, min_amount, limit)))

    def never_counted(self, limit: int) -> Listing[NeverCounted]:
        return never_counted_from_rows(self._all(_NEVER_COUNTED_SQL, (limit,)))

    # -- TokenStore -----------------------------------------------------------------------------

    def claim_for(self, payment_id: bytes) -> ClaimRecord | None:
        row = self._one(f"SELECT {CLAIM_COLUMNS} FROM claims WHERE payment_id = ?", (payment_id,))
        return claim_from_row(row) if row else None

    def claim_by_digest(self, token_digest: bytes) -> ClaimRecord | None:
        # The index holds an 8-byte prefix of the digest (a third of the size of a full one); the
        # full comparison settles the rare prefix collision.
        row = self._one(
            f"SELECT {CLAIM_COLUMNS} FROM claims WHERE substr(token_digest, 1, 8) = ? AND token_digest = ?",
            (token_digest[:8], token_digest),
        )
        return claim_from_row(row) if row else None

    def claim(self, pid: PaymentId, now: int, min_amount: int, min_confirmations: int) -> ClaimOutcome | None:
        """Claim the payment of `pid` once, ever; a second call returns the first claim.

        Returns None when the payment is not (or no longer) redeemable.
        """
        return self.claim_many([ClaimRequest(pid, now, min_amount, min_confirmations)])[0]

    def claim_many(self, requests: Sequence[ClaimRequest]) -> list[ClaimOutcome | None]:
        """Several claims in one durable transaction: one fsync for all of them (group commit).

        Each decision runs inside the write transaction, so racing callers (or a poll landing in
        between) cannot produce two claims or bind one to a transfer that no longer counts. Two
        requests for the same payment in one batch behave as two calls: the second is a replay.
        """
        with self._transaction(durable=True) as conn:
            return [self._claim_one(conn, request) for request in requests]

    def _claim_one(self, conn: Any, request: ClaimRequest) -> ClaimOutcome | None:
        # Inside the write transaction: nothing can move under it.
        seen = self.snapshot(request.pid.chain_payment_id().raw)
        view = claim_view(seen, request)
        if seen.claim is not None:
            return replayed_claim(seen.claim, view, request)
        claim = new_claim(view, request)
        if claim is None:
            return None
        token, values = claim
        row = conn.execute(
            f"INSERT INTO claims ({NEW_CLAIM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            f"RETURNING {CLAIM_COLUMNS}",
            values,
        ).fetchone()
        return ClaimOutcome(claim_from_row(row), token, True, view.counted_total)

    def revoke(self, token_digest: bytes, reason: str | None, now: int) -> ClaimRecord | None:
        """Revoke for the operator, durably (FULL sync) before returning.

        A second revocation keeps the first time and reason; a `payment_reorged` token becomes an
        operator revocation, which nothing reinstates.
        """
        with self._transaction(durable=True) as conn:
            record = self.claim_by_digest(token_digest)
            if record is None:
                return None
            if record.status is TokenStatus.REVOKED:
                return record
            row = conn.execute(
                f"UPDATE claims SET status = ?, revoked_at = ?, revoke_reason = ? "
                f"WHERE payment_id = ? RETURNING {CLAIM_COLUMNS}",
                (int(TokenStatus.REVOKED), now, reason, record.payment_id),
            ).fetchone()
        return claim_from_row(row)

    # -- PrivateTokenStore ----------------------------------------------------------------------

    def issue_many(self, requests: Sequence[IssueRequest]) -> list[IssueOutcome]:
        """Each blinded message decided and counted inside one durable transaction (FULL sync), in
        order: SQLite's single writer makes the read-decide-write of each one atomic, so two requests
        can never both take the last token of an allowance."""
        with self._transaction(durable=True) as conn:
            outcomes = [self._issue_one(conn, request) for request in requests]
            granted = per_day(requests, [outcome.verdict is IssueVerdict.GRANTED for outcome in outcomes])
            conn.executemany(
                "INSERT INTO private_token_days (day, shard, issued) VALUES (?, 0, ?) "
                "ON CONFLICT (day, shard) DO UPDATE SET issued = issued + excluded.issued",
                list(granted.items()),
            )
        return outcomes

    def _issue_one(self, conn: Any, request: IssueRequest) -> IssueOutcome:
        claim = self.claim_by_digest(request.token_digest)
        seen = self.snapshot(claim.payment_id) if claim is not None else None
        issued, known = (0, False)
        if claim is not None:
            issued, known = self.issued_count(claim.payment_id, request.request_digest)
        outcome = issue_decision(claim, seen, issued, known, request)
        if outcome.verdict is IssueVerdict.GRANTED:
            assert claim is not None
            conn.execute(
                "INSERT INTO private_token_requests (payment_id, request_digest) VALUES (?, ?)",
                (claim.payment_id, request.request_digest),
            )
            conn.execute(
                "INSERT INTO private_token_issuance (payment_id, issued) VALUES (?, 1) "
                "ON CONFLICT (payment_id) DO UPDATE SET issued = issued + 1",
                (claim.payment_id,),
            )
        return outcome

    def issued_count(self, payment_id: bytes, request_digest: bytes | None = None) -> tuple[int, bool]:
        row = self._one(
            "SELECT (SELECT issued FROM private_token_issuance WHERE payment_id = ?1), "
            "EXISTS (SELECT 1 FROM private_token_requests WHERE payment_id = ?1 AND request_digest = ?2)",
            (payment_id, request_digest),
        )
        return int(row[0] or 0), bool(row[1])

    def spend_many(self, requests: Sequence[SpendRequest]) -> list[bool]:
        """Each nonce inserted once, ever, per key; the primary key refuses the second (durable)."""
        with self._transaction(durable=True) as conn:
            fresh = [
                conn.execute(
                    "INSERT INTO private_token_spends (key_id, nonce_digest) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (request.key_id, request.nonce_digest),
                ).fetchone()
                is not None
                for request in requests
            ]
            spent = per_day(requests, fresh)
            conn.executemany(
                "INSERT INTO private_token_days (day, shard, spent) VALUES (?, 0, ?) "
                "ON CONFLICT (day, shard) DO UPDATE SET spent = spent + excluded.spent",
                list(spent.items()),
            )
        return fresh

    def private_token_days(self, since_day: int, until_day: int) -> list[PrivateTokenDay]:
        return private_token_days_from_rows(
            self._all(
                "SELECT day, sum(issued), sum(spent) FROM private_token_days "
                "WHERE day >= ? AND day < ? GROUP BY day ORDER BY day",
                (since_day, until_day),
            )
        )

    # -- MonitorStateStore ----------------------------------------------------------------------

    def monitor_state(self) -> MonitorState:
        row = self._one(
            "SELECT wallet_address, scan_floor, scan_cursor, wallet_height, last_poll_at, highest_height "
            "FROM monitor_state WHERE id = 1"
        )
        return MonitorState(*row)

    def bind_wallet(self, address: str) -> None:
        """Record the wallet on first start; refuse a different one later (docs/PROTOCOL.md §3)."""
        with self._transaction() as conn:
            (bound,) = conn.execute("SELECT wallet_address FROM monitor_state WHERE id = 1").fetchone()
            if bound is None:
                conn.execute("UPDATE monitor_state SET wallet_address = ? WHERE id = 1", (address,))
            elif bound != address:
                raise wallet_mismatch(bound, address)

    def start_scan(self, height: int) -> MonitorState:
        """Set floor and cursor on the very first start; a persisted cursor always wins."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE monitor_state SET scan_floor = ?1, scan_cursor = ?1 "
                "WHERE id = 1 AND scan_cursor IS NULL",
                (height,),
            )
        return self.monitor_state()

    def rescan_from(self, height: int, reset_highest: int | None = None) -> MonitorState:
        """Move the cursor back on purpose; transfers above it are watched again.

        The rules (anon_ticket/core/rescan.py) are checked inside the write's own transaction. Durable
        (FULL sync) before returning, like a revocation: the operator is told the cursor moved, and a
        power cut must not quietly move it forward again (tests/test_power_loss_store.py).
        """
        with self._transaction(durable=True) as conn:
            cursor, highest = conn.execute(
                "SELECT scan_cursor, highest_height FROM monitor_state WHERE id = 1"
            ).fetchone()
            refused = refusal(RescanRequest(height, reset_highest), cursor, highest)
            if refused is not None:
                raise RescanRefused(refused)
            conn.execute(
                "UPDATE monitor_state SET scan_cursor = ?1, "
                "scan_floor = min(coalesce(scan_floor, ?1), ?1) WHERE id = 1",
                (height,),
            )
            if reset_highest is not None:
                # The last wallet height too: redeems count confirmations from it until the next poll.
                conn.execute(
                    "UPDATE monitor_state SET highest_height = ?1, "
                    "wallet_height = min(coalesce(wallet_height, ?1), ?1) WHERE id = 1",
                    (reset_highest,),
                )
            conn.execute("UPDATE transfers SET settled = 0 WHERE settled = 1 AND height >= ?", (height,))
        return self.monitor_state()

    def apply_batch(self, batch: TransferBatch) -> BatchOutcome:
        """Apply one poll: transfers, disappearances, reorg revocations and the cursor, atomically."""
        with self._transaction() as conn:
            (cursor,) = conn.execute("SELECT scan_cursor FROM monitor_state WHERE id = 1").fetchone()
            if cursor != batch.expected_cursor:
                raise CursorMoved(f"scan cursor is {cursor}, the batch expected {batch.expected_cursor}")
            # COUNTED survives an update (a reorg re-mining the tx) unless a double spend is seen.
            # first_seen_at is written once, by the poll that inserts the row (the panel's figures).
            conn.executemany(
                "INSERT INTO transfers (payment_id, txid, amount, height, flags, settled, first_seen_at) "
                "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (payment_id, txid) DO UPDATE SET "
                "amount = excluded.amount, height = excluded.height, settled = 0, flags = excluded.flags "
                f"| CASE WHEN excluded.flags & {DOUBLE_SPEND} THEN 0 ELSE transfers.flags & {COUNTED} END",
                [
                    (pid, t.txid, t.amount, t.height, int(t.flags), batch.polled_at)
                    for pid, t in batch.upserts
                ],
            )
            conn.executemany(
                f"UPDATE transfers SET flags = (flags | {GONE}) & ~{COUNTED} "
                "WHERE payment_id = ? AND txid = ?",
                batch.gone,
            )
            # Transfers reaching the confirmations now count for good (see payments.evaluate);
            # only the unsettled window can change, and the partial index holds just that.
            newly_counted = {
                row[0]
                for row in conn.execute(
                    f"UPDATE transfers SET flags = flags | {COUNTED}, counted_at = ? WHERE settled = 0 "
                    f"AND flags & {HIDDEN_MASK | COUNTED} = 0 AND height > 0 AND ? - height >= ? "
                    "RETURNING payment_id",
                    (batch.polled_at, batch.wallet_height, batch.min_confirmations),
                ).fetchall()
            }
            conn.execute(
                "UPDATE transfers SET settled = 1 WHERE settled = 0 AND "
                f"(height BETWEEN 1 AND ? OR (height = 0 AND flags & {GONE}))",
                (batch.settle_at_or_below,),
            )
            conn.execute(
                "UPDATE monitor_state SET scan_cursor = ?1, wallet_height = ?2, last_poll_at = ?3, "
                "highest_height = max(coalesce(highest_height, ?2), ?2) WHERE id = 1",
                (batch.new_cursor, batch.wallet_height, batch.polled_at),
            )
            touched = {pid for pid, _ in batch.upserts} | {pid for pid, _ in batch.gone}
            touched |= {
                row[0]
                for row in conn.execute(
                    "SELECT payment_id FROM claims WHERE status = ?", (int(TokenStatus.REORGED),)
                )
            }
            revoked, reinstated = self._judge_claims(conn, touched, batch)
            self._credit_access(conn, newly_counted, batch)
        return BatchOutcome(
            revoked=tuple(revoked),
            reinstated=tuple(reinstated),
            changed_transfers=len(batch.upserts) + len(batch.gone),
        )

    def _credit_access(self, conn: Any, payment_ids: set[bytes], batch: TransferBatch) -> None:
        """Transfers counted by this poll extend their claim's paid time (docs/PROTOCOL.md §13)."""
        if batch.access is None or not payment_ids:
            return
        records = (self.claim_for(payment_id) for payment_id in payment_ids)
        credits = access_credits(
            ((record, self.transfers_for(record.payment_id)) for record in records if record is not None),
            batch,
        )
        conn.executemany(
            "UPDATE claims SET access_until = ?, access_credited = ? WHERE payment_id = ?", credits
        )

    def _judge_claims(
        self, conn: Any, payment_ids: set[bytes], batch: TransferBatch
    ) -> tuple[list[bytes], list[bytes]]:
        records = (self.claim_for(payment_id) for payment_id in payment_ids)
        revoked, reinstated = rejudge(
            (
                (record, self.transfers_for(record.payment_id))
                for record in records
                if record is not None and record.status is not TokenStatus.REVOKED
            ),
            batch,
        )
        conn.executemany(
            "UPDATE claims SET status = ?, revoked_at = ?, revoke_reason = NULL WHERE payment_id = ?",
            [(int(TokenStatus.REORGED), batch.polled_at, payment_id) for payment_id in revoked],
        )
        conn.executemany(
            "UPDATE claims SET status = ?, revoked_at = NULL, revoke_reason = NULL WHERE payment_id = ?",
            [(int(TokenStatus.ACTIVE), payment_id) for payment_id in reinstated],
        )
        return revoked, reinstated
