"""Power loss at the storage level: claims, Privacy Pass issuances and spends, an operator's rescan.

What the protocol calls durable (docs/PROTOCOL.md §4, §5, §12) must survive a power cut.

tests/test_power_loss.py cuts the power under the whole daemon, Privacy Pass included; this cuts it
under the store alone, where issuances and spends are made durable, at a rate the daemon's RSA
signing would not reach. `tests/support/durable_writer.py` writes to a
SQLite database on the forgetting file system (tests/support/lazyfs.py) and prints each write once the
store has returned (the moment the daemon answers); the power is cut at a random moment, the writer
killed, the file system mounted again, and every printed write must still hold:

- a claim is still there (its token digest finds it);
- a granted issuance is still counted (its blinded message is known, the claim's count is at least the
  number granted), and the count equals the messages stored (nothing doubled);
- a spent nonce cannot be spent again — a forgotten spend would be a token spent twice;
- `PRAGMA integrity_check` is ok.

The same run with the durable transactions unsynced must lose some (the can-it-fail proof). Set
POWER_SEED to replay a schedule.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from anon_ticket.errors import StorageError
from anon_ticket.storage.protocols import SpendRequest
from anon_ticket.storage.sqlite import SqliteStore, connect, sqlite_module
from tests.support.durable_writer import DAY, KEY_ID
from tests.support.lazyfs import LazyMount, require_fuse

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECS = 60.0


def writer(db: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.durable_writer", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # after the cut it dies of EIO, with a traceback nobody needs
        text=True,
        env=env,
    )


@dataclass
class Acked:
    claims: list[bytes] = field(default_factory=list)
    issues: list[tuple[bytes, bytes]] = field(default_factory=list)
    spends: list[bytes] = field(default_factory=list)

    def read(self, process: subprocess.Popen[str], answering: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not line.endswith("\n"):
                break  # cut off by the kill: the client never got this answer whole
            answering.set()
            kind, *values = line.split()
            raw = [bytes.fromhex(v) for v in values]
            if kind == "claim":
                self.claims.append(raw[0])
            elif kind == "issue":
                self.issues.append((raw[0], raw[1]))
            elif kind == "spend":
                self.spends.append(raw[0])


@dataclass
class StoreReport:
    cuts: int = 0
    losses: list[str] = field(default_factory=list)
    acked: Acked = field(default_factory=Acked)

    def line(self) -> str:
        a = self.acked
        return (
            f"{self.cuts} power cuts; acknowledged {len(a.claims)} claims, {len(a.issues)} issuances, "
            f"{len(a.spends)} spends; {len(self.losses)} lost"
        )


def run_cuts(
    tmp: Path, *, seed: int, cuts: int, unsynced: bool = False, faults: tuple[float, ...] = (0.0, 0.0, 0.3)
) -> StoreReport:
    """`faults`: the write-back shares a cut draws from (a non-zero one also tears a page half the time)."""
    rng = random.Random(seed)
    report = StoreReport()
    with LazyMount(tmp / "disk", tmp / "mnt", log_path=tmp / "lazyfs.log") as mount:
        db = mount.mountpoint / "anon_ticket.db"
        for cut in range(cuts):
            process = writer(db, str(seed * 1000 + cut), *(["--unsynced"] if unsynced else []))
            answering = threading.Event()
            reader = threading.Thread(target=report.acked.read, args=(process, answering), daemon=True)
            reader.start()
            # Most cuts come while it writes, counted from its first answer (starting Python and
            # migrating can take seconds on a loaded machine); some come while it is still starting.
            if rng.random() < 0.85:
                assert answering.wait(STARTUP_SECS) or process.poll() is not None, "the writer never answered"
            time.sleep(rng.uniform(0.3, 1.0))
            mount.cut(
                torn=rng.random() < 0.5, writeback=rng.choice((0.0, 0.0, 0.3)), seed=rng.randrange(2**31)
            )
            process.kill()
            process.wait()
            reader.join(10)
            assert process.stdout is not None
            process.stdout.close()
            mount.remount()
            report.cuts += 1
            report.losses += [loss for loss in check(db, report.acked) if loss not in report.losses]
            if unsynced and report.losses:
                break  # shown; and a database cut while unsynced may not even open any more
    return report


def sqlite_errors() -> type[Exception]:
    error: type[Exception] = sqlite_module().Error
    return error


def check(db: Path, acked: Acked) -> list[str]:
    """What of the acknowledged writes is no longer true."""
    if not (acked.claims or acked.issues or acked.spends):
        # Cut before the first answer (the writer was still starting or migrating): the database may
        # not exist yet, or hold only part of its schema. Nothing was promised.
        return []
    losses: list[str] = []
    if not db.exists():
        return ["the database file is gone"]
    try:
        conn = connect(db, query_only=True)
    except StorageError as exc:
        return [f"the database cannot be opened: {exc}"]
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            return [f"integrity_check: {integrity[:200]}"]
        issued = dict(conn.execute("SELECT payment_id, issued FROM private_token_issuance").fetchall())
        requests = Counter(row[0] for row in conn.execute("SELECT payment_id FROM private_token_requests"))
    except sqlite_errors() as exc:
        return [f"the database cannot be read: {exc}"]
    finally:
        conn.close()
    assert {bytes(k): v for k, v in issued.items()} == {bytes(k): v for k, v in requests.items()}, (
        "an issuance counted twice, or not at all"
    )
    store = SqliteStore(db)
    try:
        payment_of: dict[bytes, bytes] = {}
        for digest in acked.claims:
            record = store.claim_by_digest(digest)
            if record is None:
                losses.append(f"claim {digest.hex()[:8]}… lost")
            else:
                payment_of[digest] = record.payment_id
        granted: Counter[bytes] = Counter()
        for digest, request_digest in acked.issues:
            record = store.claim_by_digest(digest)
            if record is None:
                losses.append(f"issuance for {digest.hex()[:8]}… lost with its claim")
                continue
            granted[record.payment_id] += 1
            if not store.issued_count(record.payment_id, request_digest)[1]:
                losses.append(f"issuance {request_digest.hex()[:8]}… lost")
        for payment_id, count in granted.items():
            if store.issued_count(payment_id)[0] < count:
                losses.append(f"payment {payment_id.hex()}: fewer issued than were granted")
        again = store.spend_many([SpendRequest(KEY_ID, nonce, DAY) for nonce in acked.spends])
        losses += [
            f"spend {n.hex()[:8]}… lost: it could be spent twice"
            for n, f in zip(acked.spends, again, strict=True)
            if f
        ]
    finally:
        store.close()
    return losses


def seed() -> int:
    return int(os.environ.get("POWER_SEED", "20261207"))


def test_acknowledged_claims_issuances_and_spends_survive_power_cuts(tmp_path: Path) -> None:
    require_fuse()
    report = run_cuts(tmp_path, seed=seed(), cuts=5)
    print(report.line())
    assert report.acked.claims and report.acked.issues and report.acked.spends, report.line()
    assert not report.losses, report.losses[:10]


def test_the_same_check_finds_losses_when_durable_writes_are_not_synced(tmp_path: Path) -> None:
    require_fuse()
    # A plain cut (nothing torn, nothing written back): unsynced commits simply vanish. (With torn
    # pages an unsynced database may even fail its integrity check, which the check reports too.)
    report = run_cuts(tmp_path, seed=seed(), cuts=6, unsynced=True, faults=(0.0,))
    print(report.line(), report.losses[:5])
    assert report.losses, report.line()


def test_an_acknowledged_rescan_survives_a_power_cut(tmp_path: Path) -> None:
    """The internal API answers a rescan "after the rescan is durable" (docs/PROTOCOL.md §5)."""
    require_fuse()
    with LazyMount(tmp_path / "disk", tmp_path / "mnt", log_path=tmp_path / "lazyfs.log") as mount:
        db = mount.mountpoint / "anon_ticket.db"
        process = writer(db, "--rescan")
        assert process.stdout is not None
        kind, height = process.stdout.readline().split()
        assert kind == "rescan"
        mount.cut()
        process.kill()
        process.wait()
        process.stdout.close()
        mount.remount()
        store = SqliteStore(db)
        try:
            assert store.monitor_state().scan_cursor == int(height)
        finally:
            store.close()


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_a_hundred_power_cuts_of_the_store(tmp_path: Path) -> None:
    require_fuse()
    report = run_cuts(tmp_path, seed=seed(), cuts=100)
    print(report.line())
    assert not report.losses, report.losses[:10]
