"""`python -m anon_ticket backup DEST` while the daemon serves, and a daemon restored from the copy.

The copy must hold every token the daemon acknowledged before the backup began, even though claims
keep committing while it is taken; it never overwrites a file; PostgreSQL gets a pointer to pg_dump.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from anon_ticket.core.domain import PaymentId
from tests.support.daemon import DaemonProcess, redeem_until
from tests.support.fake_wallet import FakeWallet

CLAIMS_BEFORE = 10
CLAIMS_DURING = 400


def paid_pids(daemon: DaemonProcess, wallet: FakeWallet, count: int) -> list[PaymentId]:
    """`count` PIDs paid in one block, buried deep enough, and seen by the daemon's poller."""
    pids = [PaymentId.generate() for _ in range(count)]
    txids = [
        wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=daemon.min_payment_amount)
        for pid in pids
    ]
    wallet.mine(daemon.confirmations, txids=txids)
    return pids


class Claimer(threading.Thread):
    """Redeems PIDs one after another until told to stop, noting when each token was acknowledged."""

    def __init__(self, daemon: DaemonProcess, pids: list[PaymentId]) -> None:
        super().__init__(name="claimer", daemon=True)
        self.daemon_process = daemon
        self.pids = pids
        self.acknowledged: list[tuple[float, str]] = []  # (monotonic time of the answer, token)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.started_claiming = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            for pid in self.pids:
                if self.stop.is_set():
                    return
                response = session.post(
                    self.daemon_process.public_url + "/api/v1/redeem", json={"pid": pid.hex()}, timeout=10
                )
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    return
                self.acknowledged.append((time.monotonic(), response.json()["token"]))
                if len(self.acknowledged) >= 5:
                    self.started_claiming.set()


def test_a_backup_taken_during_claims_restores_every_token_acknowledged_before_it(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    dest = tmp_path / "backup" / "copy.db"
    dest.parent.mkdir()
    with DaemonProcess(tmp_path / "live", wallet_url=wallet.url) as daemon:
        daemon.wait_scanning()
        early = paid_pids(daemon, wallet, CLAIMS_BEFORE)
        tokens_before = [str(redeem_until(daemon, pid).json()["token"]) for pid in early]
        during = paid_pids(daemon, wallet, CLAIMS_DURING)
        redeem_until(daemon, during[0])  # the poller has seen the whole block
        claimer = Claimer(daemon, during[1:])
        claimer.start()
        assert claimer.started_claiming.wait(30), claimer.failures
        began = time.monotonic()
        result = daemon.command("backup", str(dest))
        ended = time.monotonic()
        claimer.stop.set()
        claimer.join(30)
        assert result.returncode == 0, result.stderr
        assert f"backup written to {dest}" in result.stdout
        assert not claimer.failures
        # The claims really were running across the backup: some were acknowledged after it began.
        assert any(when > began for when, _ in claimer.acknowledged)
        assert daemon.stop() == 0
    acknowledged_before = tokens_before + [token for when, token in claimer.acknowledged if when < began]
    assert dest.stat().st_mode & 0o777 == 0o600
    assert not list(dest.parent.glob(".*partial*"))

    restored = DaemonProcess(
        tmp_path / "restored", wallet_url=wallet.url, env={"DATABASE_URL": f"sqlite:///{dest}"}
    )
    with restored:
        for token in acknowledged_before:
            response = restored.internal("GET", f"/api/v1/token/{token}")
            assert response.status_code == 200, (token, response.text)
            assert response.json()["status"] == "active"
        # Claims acknowledged after the backup ended cannot be in it (one snapshot, taken within it).
        later = [token for when, token in claimer.acknowledged if when > ended]
        for token in later[-3:]:
            assert restored.internal("GET", f"/api/v1/token/{token}").status_code == 404


def test_a_backup_never_overwrites_an_existing_file(tmp_path: Path, wallet: FakeWallet) -> None:
    dest = tmp_path / "copy.db"
    with DaemonProcess(tmp_path / "live", wallet_url=wallet.url) as daemon:
        first = daemon.command("backup", str(dest))
        assert first.returncode == 0, first.stderr
        before = dest.read_bytes()
        second = daemon.command("backup", str(dest))
        assert second.returncode == 1
        assert f"{dest} already exists" in second.stderr
        assert "Traceback" not in second.stderr
        assert dest.read_bytes() == before
        missing = daemon.command("backup", str(tmp_path / "no" / "such" / "copy.db"))
        assert missing.returncode == 1
        assert "does not exist" in missing.stderr


def test_a_backup_of_a_database_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, env={"DATABASE_URL": "sqlite:///absent/anon_ticket.db"})
    result = daemon.command("backup", str(tmp_path / "copy.db"))
    assert result.returncode == 1
    assert "DATABASE_URL: there is no database at" in result.stderr
    assert not (tmp_path / "absent").exists()
    assert not (tmp_path / "copy.db").exists()


def test_postgresql_is_pointed_to_pg_dump(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, env={"DATABASE_URL": "postgresql://postgres@127.0.0.1/nothing"})
    result = daemon.command("backup", str(tmp_path / "copy.db"))
    assert result.returncode == 1
    assert "pg_dump" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "copy.db").exists()


def test_the_restored_copy_is_a_single_self_contained_file(tmp_path: Path, wallet: FakeWallet) -> None:
    dest = tmp_path / "copy.db"
    with DaemonProcess(tmp_path / "live", wallet_url=wallet.url) as daemon:
        assert daemon.command("backup", str(dest)).returncode == 0
    # No -wal or -shm beside it: the file alone can be moved, archived or checksummed.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    header = dest.read_bytes()[:20]
    assert header[:16] == b"SQLite format 3\x00"
    assert header[18:20] == b"\x01\x01"  # rollback journal, not WAL
