#!/usr/bin/env python3
"""What durability costs on this disk: claims and rescans with and without their fsync, in one run.

A claim, a revocation, a rescan, a Privacy Pass issuance and a spend commit with `synchronous=FULL`
(the WAL fsynced before the answer); polls with `NORMAL` (docs/ARCHITECTURE.md, "Durability"). This
measures, through the real `SqliteStore` on a real file in `--dir` (default: a temporary folder):

1. claims per second, one claim per transaction (an idle daemon's path), as shipped (FULL) and with
   the same transactions at NORMAL (what the claims would cost if they were not durable);
2. the same with 16 claims per transaction (the storage writer's group commit under load);
3. one operator rescan, at NORMAL (before tests/test_power_loss_store.py found it was not durable)
   and at FULL (since).

It prints each pair and its ratio. The ratio is the figure: absolute rates depend on the disk. It
exits 0 (there is no target: the durable path is the contract, its cost is reported, not judged).
`--smoke` runs a few of each.

    python scripts/bench_durability.py
    python scripts/bench_durability.py --claims 2000 --dir /var/lib/anon_ticket-bench
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anon_ticket.config import DatabaseUrl
from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer
from anon_ticket.storage.database import Database
from anon_ticket.storage.protocols import ClaimRequest, TransferBatch
from anon_ticket.storage.sqlite import SqliteStore

MIN_AMOUNT = 1_000
CONFIRMATIONS = 2
NOW = 1_800_000_000


class NotDurableStore(SqliteStore):
    """The same store with every transaction at NORMAL: the baseline a durable write is compared to."""

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[Any]:
        with super()._transaction(durable=False) as conn:
            yield conn


def fresh_store(
    folder: Path, name: str, kind: type[SqliteStore], payments: int, cursor: int = 110
) -> tuple[SqliteStore, list[PaymentId]]:
    """A migrated database holding `payments` confirmed, unclaimed payments (one poll)."""
    path = folder / f"{name}.db"
    Database(DatabaseUrl("sqlite", path, None)).migrate()
    store = kind(path)
    pids = [PaymentId.generate() for _ in range(payments)]
    state = store.start_scan(100)
    store.apply_batch(
        TransferBatch(
            upserts=tuple(
                (pid.chain_payment_id().raw, Transfer(secrets.token_bytes(32), MIN_AMOUNT, 101))
                for pid in pids
            ),
            gone=(),
            wallet_height=cursor,
            settle_at_or_below=0,
            expected_cursor=state.scan_cursor,
            new_cursor=cursor,
            polled_at=NOW,
            min_confirmations=CONFIRMATIONS,
        )
    )
    return store, pids


def claims_per_second(folder: Path, name: str, kind: type[SqliteStore], claims: int, group: int) -> float:
    store, pids = fresh_store(folder, name, kind, claims)
    try:
        started = time.perf_counter()
        for start in range(0, len(pids), group):
            requests = [
                ClaimRequest(pid, NOW, MIN_AMOUNT, CONFIRMATIONS) for pid in pids[start : start + group]
            ]
            outcomes = store.claim_many(requests)
            assert all(o is not None and o.fresh for o in outcomes)
        return claims / (time.perf_counter() - started)
    finally:
        store.close()


def rescan_ms(folder: Path, name: str, kind: type[SqliteStore], rescans: int) -> float:
    # Each rescan one block further back: a rescan to where the cursor already is changes no page,
    # and SQLite commits (and syncs) nothing for it.
    top = 200 + rescans
    store, _ = fresh_store(folder, name, kind, 1, cursor=top)
    try:
        started = time.perf_counter()
        for back in range(1, rescans + 1):
            store.rescan_from(top - back)
        return (time.perf_counter() - started) / rescans * 1000
    finally:
        store.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=1000, help="claims per measurement (default 1000)")
    parser.add_argument("--rescans", type=int, default=200, help="rescans per measurement (default 200)")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--smoke", action="store_true", help="a few of each: figures mean nothing")
    args = parser.parse_args(argv)
    claims, rescans = (32, 8) if args.smoke else (args.claims, args.rescans)
    folder = Path(tempfile.mkdtemp(prefix="bench_durability.", dir=args.dir))
    try:
        print(f"databases in {folder}")
        for group in (1, 16):
            durable = claims_per_second(folder, f"full-{group}", SqliteStore, claims, group)
            loose = claims_per_second(folder, f"normal-{group}", NotDurableStore, claims, group)
            print(
                f"claims, {group:>2} per transaction: {durable:8.0f}/s durable (FULL), "
                f"{loose:8.0f}/s at NORMAL -> durable is {durable / loose:.2f}x"
            )
        before = rescan_ms(folder, "rescan-normal", NotDurableStore, rescans)
        after = rescan_ms(folder, "rescan-full", SqliteStore, rescans)
        print(
            f"rescan: {before:.2f} ms at NORMAL (before the fix), {after:.2f} ms durable "
            f"-> {after / before:.1f}x"
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
