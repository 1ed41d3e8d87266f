#!/usr/bin/env python3
"""How the daemon's costs grow with the number of payments, on SQLite and on PostgreSQL.

For each backend and each size (default 10,000, 100,000 and 1,000,000 payments, half of them claimed):

1. Populates a fresh database through the real store code: `Database.migrate`, then
   `Store.apply_batch` (one 10,000-transfer "poll" per transaction, as the storage writer applies
   them) and `Store.claim_many` (the storage writer's group commit, 1,000 claims per transaction, in
   random order). Nothing here repeats the daemon's SQL, so a schema change cannot leave it behind.
   SQLite: a file in a temporary folder. PostgreSQL: a database created for the run and dropped at
   the end (`VACUUM (ANALYZE)` after loading, which autovacuum does on its own soon after a bulk load).
2. Database size per payment: SQLite's file after a WAL checkpoint, PostgreSQL's
   `pg_database_size`, each less an empty migrated database measured the same way.
3. Starts the real daemon (`python -m anon_ticket`, tests/support/daemon.py) on it, with a fake
   wallet-rpc that reports the same wallet at the database's height, and times the start until the
   public API answers a redeem of an unknown PID with 404 (503 means the PID screen is not built).
   Its RSS then, and the PID screen's size from its log.
4. Redeem over HTTP with `--threads` client threads on keep-alive connections, a fixed number of
   requests each (so every size does the same work): unknown PIDs (404 from the screen), claimed
   PIDs drawn at random from the whole database (200 `already_claimed`), paid unclaimed PIDs, each
   once (200 `claimed`, committed by the storage writer before the answer). Throughput and p99.
5. Stops the daemon and times polls that each bring 1,000 new transfers, through
   `StorageWriter.apply_poll` (the same plan-and-apply path and actor the wallet poller uses), with
   the previous polls' transfers still in the scan window as a real wallet would report them.

Ratios compare the largest size with the smallest: per-request cost is the inverse of throughput.
Targets (issue 14): redeem and poll cost at the largest size within 1.5x of the smallest, start-up
at the largest under 10 s. Exit 1 when one is missed (never with `--smoke`).

    python scripts/bench_scale.py                                  # both backends, 10k / 100k / 1M
    python scripts/bench_scale.py --backend sqlite --sizes 10000,1000000
    python scripts/bench_scale.py --smoke                          # tiny sizes, seconds, no verdict

PostgreSQL is `ANON_TICKET_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/postgres, a
role that may create databases). With `--smoke` an unreachable server skips that backend, unless
CI=true, where it is an error.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import re
import secrets
import shutil
import sqlite3 as std_sqlite3  # only to checkpoint the WAL before measuring the file
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anon_ticket.actors.locator import wait  # noqa: E402
from anon_ticket.actors.storage_writer import StorageWriter  # noqa: E402
from anon_ticket.config import DatabaseUrl, Secret  # noqa: E402
from anon_ticket.core.domain import PaymentId  # noqa: E402
from anon_ticket.core.payments import Transfer  # noqa: E402
from anon_ticket.core.pid_screen import PidScreen  # noqa: E402
from anon_ticket.storage.database import Database  # noqa: E402
from anon_ticket.storage.protocols import ClaimRequest, TransferBatch  # noqa: E402
from anon_ticket.wallet.ingest import ReportedTransfer, scan_window  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402
from tests.support.fake_wallet import MERCHANT_ADDRESS, FakeWallet  # noqa: E402
from tests.support.synthetic_payments import MIN_AMOUNT, START_HEIGHT, Payments, generate  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (300, 1_200)
RESCAN_DEPTH = 30  # the daemon's default MONITOR_RESCAN_DEPTH
MIN_CONFIRMATIONS = 10
INGEST_BATCH = 10_000
CLAIM_BATCH = 1_000
POLL_TRANSFERS = 1_000
POLL_BLOCKS = 5  # the new transfers of a poll are in this many blocks
POLL_ADVANCE = RESCAN_DEPTH + POLL_BLOCKS + 5  # blocks the wallet advances per poll
SCREEN_CAPACITY = 1_000_000  # the daemon's default PID_SCREEN_CAPACITY
INTERNAL_TOKEN = "bench-scale-internal-token-0123456789"
ADMIN_URL = os.environ.get("ANON_TICKET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATIO = 1.5
TARGET_START_SECS = 10.0
SCREEN_LOG = re.compile(r"PID screen ready: (\d+) known payment ids, (\d+) KiB")


# -- data -----------------------------------------------------------------------------------------


def top_height(payments: Payments) -> int:
    """The wallet height at which every payment has its confirmations."""
    return payments.heights[-1] + MIN_CONFIRMATIONS


# -- databases ------------------------------------------------------------------------------------


class Backend:
    """A fresh database per size, and its size on disk."""

    name = ""

    def create(self, workdir: Path) -> str:
        """A DATABASE_URL for a new, empty database."""
        raise NotImplementedError

    def size(self, url: str) -> int:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        raise NotImplementedError

    def settle(self, url: str) -> None:
        """What would soon happen by itself after a bulk load, done now so it does not land mid-run.

        The kernel writing back the load's dirty pages (and, on PostgreSQL, the checkpointer) would
        otherwise compete with the claims' fsyncs during the measurement.
        """
        os.sync()


class SqliteBackend(Backend):
    name = "sqlite"

    def create(self, workdir: Path) -> str:
        return f"sqlite:///{workdir / f'scale-{secrets.token_hex(4)}.db'}"

    @staticmethod
    def _path(url: str) -> Path:
        return Path(url[len("sqlite:///") :])

    def size(self, url: str) -> int:
        path = self._path(url)
        conn = std_sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    def drop(self, url: str) -> None:
        path = self._path(url)
        for suffix in ("", "-wal", "-shm", ".lock"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, admin_url: str) -> None:
        import psycopg  # noqa: PLC0415 (the postgresql extra: only needed for this backend)

        self._psycopg = psycopg
        self._admin_url = admin_url

    def _admin(self) -> Any:
        return self._psycopg.connect(self._admin_url, autocommit=True, connect_timeout=5)

    def create(self, workdir: Path) -> str:
        from psycopg import sql  # noqa: PLC0415

        name = f"anon_ticket_scale_{secrets.token_hex(6)}"
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = urllib.parse.urlsplit(self._admin_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def size(self, url: str) -> int:
        with self._psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            assert row is not None
            return int(row[0])

    def settle(self, url: str) -> None:
        with self._psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            with contextlib.suppress(
                self._psycopg.errors.InsufficientPrivilege
            ):  # superuser or pg_checkpoint
                conn.execute("CHECKPOINT")
        super().settle(url)

    def drop(self, url: str) -> None:
        from psycopg import sql  # noqa: PLC0415

        name = urllib.parse.urlsplit(url).path.lstrip("/")
        with self._admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_backend(smoke: bool) -> PostgresBackend | None:
    """The PostgreSQL backend, or None (with a note) when no server answers outside CI."""
    try:
        backend = PostgresBackend(ADMIN_URL)
        backend._admin().close()
    except Exception as exc:
        if smoke and os.environ.get("CI") != "true":
            print(f"bench_scale: PostgreSQL skipped ({type(exc).__name__}: {exc})".strip(), flush=True)
            return None
        raise SystemExit(f"bench_scale: PostgreSQL at {ADMIN_URL} is required here: {exc}") from exc
    return backend


def database_for(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return Database(DatabaseUrl("sqlite", Path(url[len("sqlite:///") :]), None))
    return Database(DatabaseUrl("postgresql", None, Secret(url)))


def populate(database: Database, payments: Payments, claimed: Sequence[int], now: int) -> None:
    """Every payment through `apply_batch`, then the claims through `claim_many`."""
    store = database.open_writer()
    try:
        store.bind_wallet(MERCHANT_ADDRESS)
        cursor = store.start_scan(START_HEIGHT).scan_cursor
        for start in range(0, len(payments), INGEST_BATCH):
            part = range(start, min(start + INGEST_BATCH, len(payments)))
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
                    # Everything loaded is below the scan window: the fake wallet reports none of it.
                    settle_at_or_below=top,
                    expected_cursor=cursor,
                    new_cursor=top,
                    polled_at=now,
                    min_confirmations=MIN_CONFIRMATIONS,
                )
            )
            cursor = top
        for start in range(0, len(claimed), CLAIM_BATCH):
            outcomes = store.claim_many(
                [
                    ClaimRequest(PaymentId(payments.pids[i]), now, MIN_AMOUNT, MIN_CONFIRMATIONS)
                    for i in claimed[start : start + CLAIM_BATCH]
                ]
            )
            assert all(outcome is not None and outcome.fresh for outcome in outcomes)
    finally:
        store.close()


# -- the HTTP client --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    answers: Counter[str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def redeem_body(pid: bytes) -> bytes:
    return json.dumps({"pid": pid.hex()}).encode()


def answer_kind(status: int, body: bytes) -> str:
    if status == 200:
        with contextlib.suppress(ValueError, AttributeError):
            return f"200 {json.loads(body).get('status')}"
    return str(status)


def run_load(port: int, bodies: Sequence[bytes], threads: int) -> LoadResult:
    """POST every body once to /api/v1/redeem from `threads` keep-alive connections."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    answers: Counter[str] = Counter()

    def client() -> None:
        mine: list[float] = []
        seen: Counter[str] = Counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while (index := next(counter)) < len(bodies):
                started = time.perf_counter()
                try:
                    conn.request(
                        "POST", "/api/v1/redeem", bodies[index], {"Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    seen[type(exc).__name__] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    continue
                mine.append(time.perf_counter() - started)
                seen[answer_kind(response.status, body)] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                answers.update(seen)

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return LoadResult(len(bodies), time.perf_counter() - started, latencies, answers)


def first_answer(port: int, body: bytes) -> int | None:
    """The status of one redeem, or None while nothing listens."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/api/v1/redeem", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def time_status(port: int) -> float:
    """Seconds for one GET /api/v1/status (the operator's counts: a scan of every payment)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        started = time.perf_counter()
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET /api/v1/status answered {response.status}")
        return time.perf_counter() - started
    finally:
        conn.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- one size ---------------------------------------------------------------------------------------


@dataclass
class Row:
    size: int
    populate_secs: float = 0.0
    db_bytes_per_payment: float = 0.0
    start_secs: float = 0.0
    rss_kib: int = 0
    screen_kib: int = 0
    loads: dict[str, LoadResult] = field(default_factory=dict)
    poll_ms: float = 0.0
    status_ms: float = 0.0
    unexpected: Counter[str] = field(default_factory=Counter)


EXPECTED = {"unknown": "404", "replay": "200 already_claimed", "claim": "200 claimed"}


def measure_size(
    backend: Backend, size: int, empty_bytes: int, workdir: Path, options: argparse.Namespace
) -> Row:
    rng = random.Random(options.seed + size)
    row = Row(size)
    now = int(time.time())
    payments = generate(size, rng)
    order = list(range(size))
    rng.shuffle(order)
    claimed, unclaimed = order[: size // 2], order[size // 2 :]
    url = backend.create(workdir)
    try:
        database = database_for(url)
        started = time.perf_counter()
        database.migrate()
        populate(database, payments, claimed, now)
        backend.settle(url)
        row.populate_secs = time.perf_counter() - started
        row.db_bytes_per_payment = (backend.size(url) - empty_bytes) / size
        print(
            f"  {backend.name} {size:>9,}: populated in {row.populate_secs:.1f} s, "
            f"{row.db_bytes_per_payment:.1f} B/payment; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        serve(row, url, payments, claimed, unclaimed, rng, workdir, options)
        row.poll_ms = time_polls(database, options.polls, rng, now)
        print(f"  {backend.name} {size:>9,}: {format_row(row)}", flush=True)
    finally:
        backend.drop(url)
    return row


def serve(
    row: Row,
    url: str,
    payments: Payments,
    claimed: Sequence[int],
    unclaimed: Sequence[int],
    rng: random.Random,
    workdir: Path,
    options: argparse.Namespace,
) -> None:
    env = {
        "DATABASE_URL": url,
        "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
        "MONITOR_MIN_CONFIRMATIONS": str(MIN_CONFIRMATIONS),
        "MIN_PAYMENT_AMOUNT": str(MIN_AMOUNT),
        "MONITOR_POLL_INTERVAL_SECS": "1",
        "PID_SCREEN_CAPACITY": str(max(SCREEN_CAPACITY, row.size)),
        # Replays of one PID and a few thousand storage reads a second are what is measured here:
        # the abuse limits would answer 429 by design, so they are lifted (as bench_public.py does).
        "ABUSE_PID_PER_MINUTE": "1000000",
        "ABUSE_STORAGE_RATE": "1000000",
        "ABUSE_STORAGE_BURST": "1000000",
    }
    unknown = redeem_body(rng.randbytes(32))
    requests = options.requests
    with FakeWallet(height=top_height(payments)) as wallet, contextlib.ExitStack() as stack:
        daemon = DaemonProcess(workdir / f"daemon-{row.size}", wallet_url=wallet.url, env=env)
        stack.callback(daemon.kill)  # after a stop, a no-op; after a failure, the end of it
        port = int(daemon.settings["API_BIND_ADDRESS"].rpartition(":")[2])
        started = time.perf_counter()
        daemon.start(wait=False)  # not waiting for /healthz: the start is what is timed
        deadline = started + options.start_timeout
        while (status := first_answer(port, unknown)) != 404:
            if not daemon.running or time.perf_counter() > deadline:
                raise SystemExit(f"the daemon did not serve (last answer {status}):\n{daemon.log_tail()}")
            time.sleep(0.02)
        row.start_secs = time.perf_counter() - started
        row.rss_kib = rss_kib(daemon.pid)
        if match := SCREEN_LOG.search(daemon.log_text()):
            row.screen_kib = int(match.group(2))
        loads = {
            "unknown": [redeem_body(rng.randbytes(32)) for _ in range(requests)],
            "replay": [redeem_body(payments.pids[rng.choice(claimed)]) for _ in range(requests)],
            "claim": [redeem_body(payments.pids[i]) for i in unclaimed[: options.claims]],
        }
        run_load(port, loads["replay"][: options.threads * 10], options.threads)  # connections, caches
        for name, bodies in loads.items():
            result = run_load(port, bodies, options.threads)
            row.loads[name] = result
            row.unexpected.update({k: n for k, n in result.answers.items() if k != EXPECTED[name]})
        internal = int(daemon.settings["INTERNAL_BIND_ADDRESS"].rpartition(":")[2])
        row.status_ms = 1000 * statistics.median(time_status(internal) for _ in range(3))
        exit_code = daemon.stop()
        if exit_code != 0:
            row.unexpected[f"daemon exit {exit_code}"] += 1


def time_polls(database: Database, polls: int, rng: random.Random, now: int) -> float:
    """Median milliseconds of `polls` polls of 1,000 new transfers each, through the writer actor.

    Each poll the wallet is `POLL_ADVANCE` blocks higher and lists 1,000 new transfers in the first
    blocks after the previous poll's height: the scan window then holds exactly those (the previous
    ones are below it and get settled), so every poll does the same work at every database size.
    """
    screen = PidScreen(SCREEN_CAPACITY)
    reader = database.open_reader()
    try:
        state = reader.monitor_state()
    finally:
        reader.close()
    assert state.scan_floor is not None and state.scan_cursor is not None and state.wallet_height is not None
    floor, cursor = state.scan_floor, state.scan_cursor
    writer = StorageWriter.start(database.open_writer).proxy()
    timings = []
    try:
        for _ in range(polls):
            wallet_height = cursor + POLL_ADVANCE
            reported = [
                ReportedTransfer(
                    rng.randbytes(8), Transfer(rng.randbytes(32), MIN_AMOUNT, cursor + 1 + i % POLL_BLOCKS, 0)
                )
                for i in range(POLL_TRANSFERS)
            ]
            min_height = scan_window(floor, cursor, wallet_height, RESCAN_DEPTH)
            assert all(item.transfer.height > min_height for item in reported)
            started = time.perf_counter()
            # As the wallet poller does: the batch's ids reach the screen before the writer commits.
            screen.add_many(item.payment_id for item in reported)
            wait(
                writer.apply_poll(
                    reported,
                    wallet_height=wallet_height,
                    min_height=min_height,
                    expected_cursor=cursor,
                    polled_at=now,
                    min_confirmations=MIN_CONFIRMATIONS,
                ),
                600,
                "storage writer",
            )
            timings.append(time.perf_counter() - started)
            cursor = wallet_height
    finally:
        writer.stop()
    return 1000 * statistics.median(timings)


# -- report -------------------------------------------------------------------------------------------


def format_row(row: Row) -> str:
    loads = "  ".join(
        f"{name} {result.rate:,.0f}/s p99 {result.p99_ms:.1f} ms" for name, result in row.loads.items()
    )
    odd = f"  UNEXPECTED {dict(row.unexpected)}" if row.unexpected else ""
    return (
        f"start {row.start_secs:.2f} s, RSS {row.rss_kib / 1024:.0f} MiB, screen {row.screen_kib} KiB, "
        f"{loads}, poll {row.poll_ms:.0f} ms, status {row.status_ms:.0f} ms{odd}"
    )


def report(backend: str, rows: list[Row], smoke: bool) -> bool:
    """Print the table and the ratios; True when the targets are met."""
    names = list(EXPECTED)
    print(f"\n{backend}:")
    print(
        "| payments | populate s | DB B/payment | start-up s | RSS MiB | screen KiB | "
        + " | ".join(f"{name} req/s | {name} p99 ms" for name in names)
        + " | poll 1,000 ms | status ms |"
    )
    print("|---:" * (8 + 2 * len(names)) + "|")
    for row in rows:
        loads = " | ".join(f"{row.loads[name].rate:,.0f} | {row.loads[name].p99_ms:.1f}" for name in names)
        print(
            f"| {row.size:,} | {row.populate_secs:.0f} | {row.db_bytes_per_payment:.0f} | "
            f"{row.start_secs:.2f} | {row.rss_kib / 1024:.0f} | {row.screen_kib:,} | {loads} | "
            f"{row.poll_ms:.0f} | {row.status_ms:.0f} |"
        )
    ok = not any(row.unexpected for row in rows)
    for row in rows:
        if row.unexpected:
            print(f"unexpected answers at {row.size:,}: {dict(row.unexpected)}")
    if len(rows) < 2:
        return ok
    small, large = rows[0], rows[-1]
    label = f"{large.size:,}/{small.size:,}"
    ratios = {f"{name} cost (1/req/s)": small.loads[name].rate / large.loads[name].rate for name in names} | {
        f"{name} p99": large.loads[name].p99_ms / small.loads[name].p99_ms for name in names
    }
    ratios["poll"] = large.poll_ms / small.poll_ms
    print(f"ratios {label}: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    # + 0.0: a delta that rounds to nothing prints as 0.0, not -0.0
    per_payment = round((large.rss_kib - small.rss_kib) * 1024 / (large.size - small.size), 1) + 0.0
    print(
        f"memory: RSS {per_payment:.1f} B per payment beyond the first {small.size:,}; the PID screen "
        f"{large.screen_kib:,} KiB at {large.size:,} ({large.screen_kib * 1024 / large.size:.2f} B per "
        "payment, allocated whole at start for PID_SCREEN_CAPACITY)"
    )
    missed = [k for k, v in ratios.items() if not k.endswith("p99") and v > TARGET_RATIO]
    if large.start_secs > TARGET_START_SECS:
        missed.append(f"start-up {large.start_secs:.1f} s at {large.size:,}")
    verdict = "PASS" if not missed else "MISSED: " + ", ".join(missed)
    print(f"targets (cost within {TARGET_RATIO}x, start-up under {TARGET_START_SECS:g} s): {verdict}")
    return ok and (smoke or not missed)


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 10:
        raise argparse.ArgumentTypeError("sizes are comma-separated counts of at least 10")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(SIZES), help="comma-separated payment counts"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="redeems per scenario (first claims: at most half the smallest size)",
    )
    parser.add_argument("--threads", type=int, default=8, help="client threads (keep-alive connections)")
    parser.add_argument(
        "--polls", type=int, default=5, help="polls of 1,000 new transfers (the median is shown)"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=600.0, help="seconds to wait for the daemon to serve"
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (daemon logs)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: every step, no verdict")
    options = parser.parse_args(argv)
    if options.smoke:
        options.sizes, options.requests, options.threads, options.polls = list(SMOKE_SIZES), 100, 4, 2
    # The same number of first claims at every size: at most the smallest size's unclaimed half.
    options.claims = min(options.requests, options.sizes[0] - options.sizes[0] // 2)
    backends: list[Backend] = []
    if options.backend in ("sqlite", "both"):
        backends.append(SqliteBackend())
    if options.backend in ("postgresql", "both") and (pg := postgres_backend(options.smoke)) is not None:
        backends.append(pg)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(
        f"bench_scale: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, sizes "
        f"{', '.join(f'{n:,}' for n in options.sizes)}, half claimed, {options.requests:,} redeems per "
        f"scenario from {options.threads} threads",
        flush=True,
    )
    ok = True
    try:
        for backend in backends:
            empty = backend.create(workdir)
            try:
                database_for(empty).migrate()
                backend.settle(empty)
                empty_bytes = backend.size(empty)
            finally:
                backend.drop(empty)
            rows = [measure_size(backend, size, empty_bytes, workdir, options) for size in options.sizes]
            ok = report(backend.name, rows, options.smoke) and ok
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
