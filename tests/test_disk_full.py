"""A full disk: nothing half-written, claims answer 503, and everything resumes once there is room.

The database lives on a real tmpfs of a few hundred KiB (needs root to mount; skipped otherwise).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.core.domain import PaymentId
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline, pipeline_config
from tests.support.services import require


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    require("root", os.geteuid() == 0, "mounting a small tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    require("a tmpfs mount", result.returncode == 0, result.stderr.strip())
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Take all the free space with a file the test can delete."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


def test_a_full_disk_costs_nothing_and_heals(small_disk: Path, wallet: FakeWallet) -> None:
    running = Pipeline(pipeline_config(small_disk / "at.db", wallet.url, MONITOR_START_HEIGHT="100"))
    try:
        early = PaymentId.generate()
        wallet.add_confirmed(payment_id=early.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
        assert running.poll().ok
        cursor = running.state().scan_cursor
        ballast = fill(small_disk)
        # Many payments arrive while the disk is full: the batch cannot commit, so none is recorded
        # and the cursor stays where it was (the next poll asks for them again).
        late = [PaymentId.generate() for _ in range(300)]
        for pid in late:
            wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
        wallet.mine(1)
        report = running.poll()
        assert not report.ok and "full" in (report.error or "")
        assert running.state().scan_cursor == cursor
        assert len(running.transfer_rows()) == 1
        # A claim needs a write: the buyer gets 503 with Retry-After, and nothing is claimed.
        status, body = running.redeem(early)
        assert (status, body["error"]) == (503, "unavailable")
        assert running.claim_of(early) is None
        # Room again: the same poll now records everything exactly once, and the claim goes through.
        ballast.unlink()
        assert running.poll().ok
        assert len(running.transfer_rows()) == 301
        assert running.redeem(early)[0] == 200
        assert all(running.redeem(pid)[0] == 200 for pid in late[:5])
    finally:
        running.close()
