"""Schema migrations: from empty, from every earlier version, atomic, and refusing newer schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anon_ticket.errors import SchemaTooNew, StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.sqlite import connect

REPO = Path(__file__).resolve().parents[1]


def test_from_empty_to_newest(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db")
    newest = migrations.available("sqlite")[-1].version
    assert migrations.migrate_sqlite(conn) == newest
    assert migrations.migrate_sqlite(conn) == newest  # idempotent
    conn.close()


@pytest.mark.parametrize("start", range(1, len(migrations.available("sqlite")) + 1))
def test_from_every_earlier_version_keeping_data(tmp_path: Path, start: int) -> None:
    every = migrations.available("sqlite")
    conn = connect(tmp_path / "a.db")
    assert migrations.migrate_sqlite(conn, every[:start]) == start
    conn.execute(
        "INSERT INTO transfers (payment_id, txid, amount, height) VALUES (?, ?, 5, 7)", (b"p" * 8, b"t" * 32)
    )
    assert migrations.migrate_sqlite(conn, every) == every[-1].version
    assert conn.execute("SELECT amount FROM transfers").fetchall() == [(5,)]
    conn.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db")
    migrations.migrate_sqlite(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    with pytest.raises(SchemaTooNew, match="999"):
        migrations.migrate_sqlite(conn)
    conn.close()


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    folder = tmp_path / "sqlite"
    folder.mkdir()
    good = migrations.available("sqlite")
    for m in good:
        (folder / m.path.name).write_text(m.sql())
    broken = folder / f"{len(good) + 1:04d}_broken.sql"
    broken.write_text("CREATE TABLE half_done (x INTEGER);\nTHIS IS NOT SQL;\n")
    conn = connect(tmp_path / "a.db")
    all_of_them = [*good, migrations.Migration(len(good) + 1, broken)]
    with pytest.raises(StorageError, match="broken"):
        migrations.migrate_sqlite(conn, all_of_them)
    assert migrations.current_version_sqlite(conn) == len(good)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables
    conn.close()


def test_migrate_command_prints_the_version(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()  # the folder is the operator's (docs/OPERATIONS.md): never created for them
    result = subprocess.run(
        [sys.executable, "-m", "anon_ticket", "migrate"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DATABASE_URL": "sqlite:///x/at.db"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(migrations.available("sqlite")[-1].version)
    assert (tmp_path / "x" / "at.db").stat().st_mode & 0o777 == 0o600


def test_rescan_moves_the_cursor_back_but_never_forward(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DATABASE_URL": "sqlite:///at.db"}

    def rescan(height: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "anon_ticket", "rescan", "--from", str(height)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert rescan(500).returncode == 0  # no cursor yet: it becomes the start
    assert rescan(400).returncode == 0
    ahead = rescan(450)
    assert ahead.returncode == 2 and "ahead of the scan cursor" in ahead.stderr
    assert "scan cursor moved to 300" in rescan(300).stdout
