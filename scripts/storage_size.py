#!/usr/bin/env python3
"""Storage cost per payment of the real SQLite schema, against a naive schema built in the same run.

What it does (see scripts/README.md for figures):

1. Generates N payments the way the daemon would see them: a random 32-byte PID per buyer, its real
   8-byte payment id (SHA3, docs/PROTOCOL.md §2), one transfer each with a random 32-byte txid, an amount in
   1e10..1e12 atomic units and a height rising from 3,200,000 (about a year of blocks over N).
2. Builds the *unclaimed* database with the real migrations (`Database.migrate`) through the real
   `SqliteStore.apply_batch`, one transaction per "poll" of `--batch` rows, in arrival order (so the
   payment-id B-tree gets random inserts, as in production).
3. Copies it and claims `--claimed-fraction` of the payments, in random order, through the real
   `SqliteStore.claim_many` (the storage writer's group commit), `--batch` claims per transaction;
   `--real-path` claims one per transaction with `SqliteStore.claim` instead, as an idle daemon does
   (slower). Nothing here repeats the daemon's SQL, so a schema change cannot leave it behind.
4. Measures the main file after a WAL checkpoint, as built and after `VACUUM INTO`, and per table and
   index with the `dbstat` virtual table (from the standard `sqlite3` module: the pysqlite3-binary
   build has no dbstat).
5. Does the same with a naive schema holding the same data: hex TEXT keys (64 digits for txids and
   digests, 16 for payment ids), TEXT statuses, rowid tables with full UNIQUE indexes.

Targets (from the issue): <= 100 B per unclaimed payment (its transfer included), <= 200 B per
claimed payment (claim row + its transfer).

    python scripts/storage_size.py                        # 1,000,000 payments, all claimed
    python scripts/storage_size.py --payments 100000 --claimed-fraction 0.25
    python scripts/storage_size.py --smoke                # seconds: every step, no verdict
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3 as std_sqlite3  # for dbstat only: pysqlite3-binary is built without it
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anon_ticket.config import DatabaseUrl  # noqa: E402
from anon_ticket.core.domain import PaymentId  # noqa: E402
from anon_ticket.core.payments import TokenStatus, Transfer  # noqa: E402
from anon_ticket.storage.database import Database  # noqa: E402
from anon_ticket.storage.protocols import ClaimRequest, TransferBatch  # noqa: E402
from anon_ticket.storage.sqlite import SqliteStore, connect  # noqa: E402
from tests.support.synthetic_payments import MIN_AMOUNT, START_HEIGHT, Payments, generate  # noqa: E402

TARGET_UNCLAIMED = 100.0
TARGET_CLAIMED = 200.0

RESCAN_DEPTH = 30
MIN_CONFIRMATIONS = 10
WALLET_ADDRESS = "4" + "A" * 94  # only stored once; its value does not matter here

NAIVE_SCHEMA = """
CREATE TABLE transfers (
    payment_id TEXT NOT NULL,            -- 16 hex digits
    txid       TEXT NOT NULL,            -- 64 hex digits
    amount     INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    status     TEXT NOT NULL,            -- 'pending' / 'settled' / 'locked' / 'gone' ...
    PRIMARY KEY (payment_id, txid)
);
CREATE INDEX transfers_status ON transfers (status, height);
CREATE TABLE claims (
    payment_id    TEXT PRIMARY KEY,      -- 16 hex digits
    claim_txid    TEXT NOT NULL,         -- 64 hex digits
    token_digest  TEXT NOT NULL UNIQUE,  -- 64 hex digits, full-width unique index
    claimed_at    INTEGER NOT NULL,
    min_amount    INTEGER NOT NULL,
    status        TEXT NOT NULL,         -- 'active' / 'revoked' / 'payment_reorged'
    revoked_at    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX claims_status ON claims (status);
CREATE TABLE monitor_state (id INTEGER PRIMARY KEY, wallet_address TEXT, scan_floor INTEGER,
    scan_cursor INTEGER, wallet_height INTEGER, last_poll_at INTEGER);
INSERT INTO monitor_state (id) VALUES (1);
"""
NAIVE_ADVANCE_CURSOR = (
    "UPDATE monitor_state SET scan_cursor = ?, wallet_height = ?, last_poll_at = ? WHERE id = 1"
)
NAIVE_UPSERT_TRANSFER = (
    "INSERT INTO transfers (payment_id, txid, amount, height, status) VALUES (?, ?, ?, ?, 'pending') "
    "ON CONFLICT (payment_id, txid) DO UPDATE SET amount = excluded.amount, height = excluded.height, "
    "status = 'pending'"
)
NAIVE_SETTLE = "UPDATE transfers SET status = 'settled' WHERE status = 'pending' AND height BETWEEN 1 AND ?"
NAIVE_INSERT_CLAIM = (
    "INSERT INTO claims (payment_id, claim_txid, token_digest, claimed_at, min_amount, status) "
    "VALUES (?, ?, ?, ?, ?, 'active')"
)


# -- data -----------------------------------------------------------------------------------------


def claim_row(payments: Payments, i: int, now: int) -> tuple[bytes, bytes, bytes, int, int, int]:
    """The row `SqliteStore.claim` inserts for payment `i` (its only transfer is the claim txid)."""
    token = hashlib.sha3_256(payments.pids[i] + b"|" + payments.txids[i]).digest()
    digest = hashlib.sha3_256(token).digest()
    return (payments.payment_ids[i], payments.txids[i], digest, now, MIN_AMOUNT, int(TokenStatus.ACTIVE))


def batches(indexes: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(indexes), size):
        yield indexes[start : start + size]


def new_database(path: Path) -> Database:
    database = Database(DatabaseUrl("sqlite", path, None))
    database.migrate()
    return database


# -- the real schema, real path -------------------------------------------------------------------


def real_ingest(path: Path, payments: Payments, batch: int, now: int) -> None:
    """Through `SqliteStore.apply_batch`, as the storage writer does after each poll."""
    store = SqliteStore(path)
    try:
        store.bind_wallet(WALLET_ADDRESS)
        state = store.start_scan(START_HEIGHT)
        cursor = state.scan_cursor
        for part in batches(range(len(payments)), batch):
            top = payments.heights[part[-1]] + MIN_CONFIRMATIONS
            store.apply_batch(
                TransferBatch(
                    upserts=tuple(
                        (
                            payments.payment_ids[i],
                            Transfer(payments.txids[i], payments.amounts[i], payments.heights[i], 0),
                        )
                        for i in part
                    ),
                    gone=(),
                    wallet_height=top,
                    settle_at_or_below=top - RESCAN_DEPTH,
                    expected_cursor=cursor,
                    new_cursor=top,
                    polled_at=now,
                    min_confirmations=MIN_CONFIRMATIONS,
                )
            )
            cursor = top
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def group_claim(path: Path, payments: Payments, order: Sequence[int], batch: int, now: int) -> None:
    """Through `SqliteStore.claim_many`, `batch` claims per durable transaction (group commit)."""
    store = SqliteStore(path)
    try:
        for part in batches(order, batch):
            requests = [
                ClaimRequest(PaymentId(payments.pids[i]), now, MIN_AMOUNT, MIN_CONFIRMATIONS) for i in part
            ]
            for outcome in store.claim_many(requests):
                assert outcome is not None and outcome.fresh, "a seeded payment must be claimable"
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def real_claim(path: Path, payments: Payments, order: Sequence[int], now: int) -> None:
    """Through `SqliteStore.claim`, one transaction per claim, as the storage writer does."""
    store = SqliteStore(path)
    try:
        for i in order:
            outcome = store.claim(PaymentId(payments.pids[i]), now, MIN_AMOUNT, MIN_CONFIRMATIONS)
            assert outcome is not None and outcome.fresh, "a seeded payment must be claimable"
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


# -- the naive schema -----------------------------------------------------------------------------


def naive_database(path: Path) -> None:
    conn = connect(path)
    try:
        conn.executescript(NAIVE_SCHEMA)
    finally:
        conn.close()


def naive_ingest(path: Path, payments: Payments, batch: int, now: int) -> None:
    conn = connect(path)
    try:
        for part in batches(range(len(payments)), batch):
            top = payments.heights[part[-1]] + MIN_CONFIRMATIONS
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                NAIVE_UPSERT_TRANSFER,
                [
                    (
                        payments.payment_ids[i].hex(),
                        payments.txids[i].hex(),
                        payments.amounts[i],
                        payments.heights[i],
                    )
                    for i in part
                ],
            )
            conn.execute(NAIVE_SETTLE, (top - RESCAN_DEPTH,))
            conn.execute(NAIVE_ADVANCE_CURSOR, (top, top, now))
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def naive_claim(path: Path, payments: Payments, order: Sequence[int], batch: int, now: int) -> None:
    conn = connect(path)
    try:
        for part in batches(order, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                NAIVE_INSERT_CLAIM,
                [
                    (row[0].hex(), row[1].hex(), row[2].hex(), row[3], row[4])
                    for row in (claim_row(payments, i, now) for i in part)
                ],
            )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class ObjectStat:
    name: str
    pages: int
    payload: int
    unused: int
    bytes: int


@dataclass
class FileStat:
    path: Path
    size: int
    freelist_pages: int
    objects: list[ObjectStat]


def file_stat(path: Path) -> FileStat:
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    conn = std_sqlite3.connect(str(path))
    try:
        (freelist,) = conn.execute("PRAGMA freelist_count").fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        try:
            rows = conn.execute(
                "SELECT name, sum(pgsize) / ?, sum(payload), sum(unused), sum(pgsize) "
                "FROM dbstat('main', 1) GROUP BY name",
                (page_size,),
            ).fetchall()
        except std_sqlite3.OperationalError:  # this sqlite3 module has no dbstat either
            rows = []
    finally:
        conn.close()
    objects = [ObjectStat(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]
    objects.sort(key=lambda o: -o.bytes)
    return FileStat(path, size, int(freelist), objects)


def vacuum_copy(path: Path) -> Path:
    target = path.with_name(path.stem + "-vacuumed.db")
    target.unlink(missing_ok=True)
    conn = connect(path)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()
    return target


class Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: list[tuple[str, float]] = []
        self._last = self.start

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        self.phases.append((what, now - self._last))
        print(f"  [{now - self.start:6.1f} s] {what} ({now - self._last:.1f} s)", flush=True)
        self._last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


@dataclass
class Result:
    label: str
    empty: int
    unclaimed: FileStat
    claimed: FileStat
    unclaimed_vac: FileStat | None
    claimed_vac: FileStat | None


def per_payment(result: Result, n: int, claimed: int, vacuumed: bool) -> tuple[float, float]:
    """Bytes per unclaimed payment, bytes per claimed payment (claim row + its transfer)."""
    unclaimed = result.unclaimed_vac if vacuumed else result.unclaimed
    claimed_db = result.claimed_vac if vacuumed else result.claimed
    assert unclaimed is not None and claimed_db is not None
    per_unclaimed = (unclaimed.size - result.empty) / n
    per_claim = (claimed_db.size - unclaimed.size) / claimed if claimed else float("nan")
    return per_unclaimed, per_unclaimed + per_claim


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def print_objects(title: str, stat: FileStat, rows: dict[str, int]) -> None:
    print(f"  {title}: {stat.size:,} bytes, {stat.freelist_pages} free pages")
    if not stat.objects:
        print("    (no dbstat in this sqlite3 module)")
        return
    print(f"    {'table / index':34} {'pages':>9} {'bytes':>13} {'fill':>6} {'B/row':>8}")
    for obj in stat.objects:
        count = rows.get(obj.name, 0)
        fill = 100.0 * (obj.bytes - obj.unused) / obj.bytes if obj.bytes else 0.0
        per_row = f"{obj.bytes / count:8.1f}" if count else f"{'-':>8}"
        print(f"    {obj.name:34} {obj.pages:9,} {obj.bytes:13,} {fill:5.1f}% {per_row}")


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table and per index (an index has one entry per row it covers)."""
    conn = std_sqlite3.connect(str(path))
    try:
        counts: dict[str, int] = {}
        for table in ("transfers", "claims"):
            (counts[table],) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        for name, table, sql in conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'index'"
        ).fetchall():
            where = str(sql).split(" WHERE ", 1)[1] if sql and " WHERE " in str(sql) else "1"
            (counts[name],) = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
        return counts
    finally:
        conn.close()


# -- main -----------------------------------------------------------------------------------------


def build(
    label: str,
    workdir: Path,
    payments: Payments,
    order: Sequence[int],
    options: argparse.Namespace,
    clock: Clock,
    *,
    create: Callable[[Path], Any],
    ingest: Callable[[Path, Payments, int, int], None],
    claim: Callable[[Path, Payments, Sequence[int], int], None],
) -> Result:
    now = int(time.time())
    unclaimed = workdir / f"{label}-unclaimed.db"
    claimed = workdir / f"{label}-claimed.db"
    for path in (unclaimed, claimed):
        path.unlink(missing_ok=True)
    create(unclaimed)
    empty = unclaimed.stat().st_size
    ingest(unclaimed, payments, options.batch, now)
    clock.lap(f"{label}: {len(payments):,} payments ingested")
    shutil.copyfile(unclaimed, claimed)
    claim(claimed, payments, order, now)
    clock.lap(f"{label}: {len(order):,} payments claimed")
    result = Result(label, empty, file_stat(unclaimed), file_stat(claimed), None, None)
    if not options.no_vacuum:
        result.unclaimed_vac = file_stat(vacuum_copy(unclaimed))
        result.claimed_vac = file_stat(vacuum_copy(claimed))
        clock.lap(f"{label}: VACUUM INTO copies written")
    return result


def report(results: list[Result], n: int, claimed: int, options: argparse.Namespace) -> bool:
    real, naive = results[0], results[1] if len(results) > 1 else None
    states = [False] if options.no_vacuum else [False, True]
    ok = True
    print()
    print(f"== bytes per payment, {n:,} payments, {claimed:,} claimed (file size after a WAL checkpoint)")
    print(f"   {'':22} {'unclaimed':>10} {'target':>8} {'':5} {'claimed':>10} {'target':>8} {'':5}")
    for vacuumed in states:
        state = "after VACUUM" if vacuumed else "as built"
        unclaimed_b, claimed_b = per_payment(real, n, claimed, vacuumed)
        v1, v2 = verdict(unclaimed_b, TARGET_UNCLAIMED), verdict(claimed_b, TARGET_CLAIMED)
        if not vacuumed:
            ok = v1 == "PASS" and (v2 == "PASS" or not claimed)
        print(
            f"   real,  {state:14} {unclaimed_b:10.1f} {TARGET_UNCLAIMED:8.0f} {v1:5} "
            f"{claimed_b:10.1f} {TARGET_CLAIMED:8.0f} {v2 if claimed else '-':5}"
        )
        if naive is not None:
            naive_u, naive_c = per_payment(naive, n, claimed, vacuumed)
            print(f"   naive, {state:14} {naive_u:10.1f} {'':8} {'':5} {naive_c:10.1f}")
            print(
                f"   real / naive {'':8} {unclaimed_b / naive_u:10.2f}x {'':14} "
                f"{claimed_b / naive_c if claimed else float('nan'):10.2f}x"
            )
    for result in results:
        print()
        print(f"== {result.label} schema, per table and index (dbstat; B/row = bytes / rows it holds)")
        rows = row_counts(result.claimed.path)
        print_objects("unclaimed, as built", result.unclaimed, row_counts(result.unclaimed.path))
        print_objects("claimed, as built", result.claimed, rows)
        if result.claimed_vac is not None:
            print_objects("claimed, after VACUUM", result.claimed_vac, rows)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=1_000_000, help="payments (default 1,000,000)")
    parser.add_argument(
        "--claimed-fraction",
        type=float,
        default=1.0,
        help="fraction of payments claimed in the second database (default 1.0)",
    )
    parser.add_argument("--batch", type=int, default=10_000, help="rows per transaction (default 10,000)")
    parser.add_argument(
        "--real-path",
        action="store_true",
        help="claim one per transaction with SqliteStore.claim instead of claim_many batches (slower)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a seconds-long run of every step (3,000 payments, batches of 500); figures printed, no verdict",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive schema")
    parser.add_argument("--no-vacuum", action="store_true", help="skip the VACUUM INTO copies")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--seed", type=int, default=20_261_127)
    options = parser.parse_args(argv)
    if options.smoke:
        # Small runs overstate the as-built figure (scripts/README.md): the verdict would mean nothing.
        options.payments, options.batch = min(options.payments, 3_000), min(options.batch, 500)
    if options.payments < 1 or not 0 <= options.claimed_fraction <= 1 or options.batch < 1:
        parser.error("--payments and --batch must be positive, --claimed-fraction in [0, 1]")

    workdir = Path(tempfile.mkdtemp(prefix="storage-size-", dir=options.dir))
    clock = Clock()
    try:
        print(
            f"storage_size: {options.payments:,} payments, claimed fraction {options.claimed_fraction}, "
            f"work dir {workdir}, {os.cpu_count()} CPUs"
        )
        import pysqlite3.dbapi2 as daemon_sqlite  # noqa: PLC0415 - only to print the version used

        print(
            f"  SQLite {daemon_sqlite.sqlite_version} (the daemon's module); "
            f"dbstat from the standard module's {std_sqlite3.sqlite_version}"
        )
        payments = generate(options.payments, random.Random(options.seed))
        claimed_count = round(options.payments * options.claimed_fraction)
        order = random.Random(options.seed + 1).sample(range(options.payments), claimed_count)
        clock.lap("data generated")

        results = [
            build(
                "real",
                workdir,
                payments,
                order,
                options,
                clock,
                create=new_database,
                ingest=real_ingest,
                claim=(
                    real_claim
                    if options.real_path
                    else (lambda p, d, o, now: group_claim(p, d, o, options.batch, now))
                ),
            )
        ]
        if not options.no_baseline:
            results.append(
                build(
                    "naive",
                    workdir,
                    payments,
                    order,
                    options,
                    clock,
                    create=naive_database,
                    ingest=naive_ingest,
                    claim=lambda p, d, o, now: naive_claim(p, d, o, options.batch, now),
                )
            )
        ok = report(results, options.payments, claimed_count, options)
        print()
        print(
            f"total time {clock.total:.1f} s on {os.cpu_count()} CPUs "
            f"({', '.join(f'{what}: {secs:.1f} s' for what, secs in clock.phases)})"
        )
        if options.smoke:
            print("smoke run: every step ran; the targets are judged only on full runs")
            return 0
        return 0 if ok else 1
    finally:
        if options.keep:
            print(f"databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
