"""`python -m anon_ticket backup DEST`: a consistent copy of the SQLite database while the daemon serves.

SQLite's online backup API copies the database through a connection of its own, read-only, in one
step: that step is one read transaction, so the copy is the database as of one instant (every
transaction committed before it, none after), and under WAL the daemon's writer keeps committing
meanwhile. The copy is written beside DEST under a temporary name, checked, synced, and only then
linked to DEST, which is never overwritten: an existing DEST is refused and a failed backup leaves
nothing at DEST. The copy is a single self-contained file (rollback journal mode); the daemon
switches it back to WAL when it opens it.

PostgreSQL keeps no file of ours: `pg_dump` is the tool there (docs/OPERATIONS.md).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from anon_ticket.config import DatabaseUrl
from anon_ticket.errors import StorageError
from anon_ticket.storage import migrations
from anon_ticket.storage.sqlite import sqlite_module

PG_DUMP_HINT = (
    "DATABASE_URL names PostgreSQL: back it up with PostgreSQL's own tools, e.g. "
    "pg_dump --format=custom --file=DEST 'postgresql://…' (restore with pg_restore); "
    "see docs/OPERATIONS.md"
)


class BackupRefused(StorageError):
    """The backup was not attempted (DEST exists, PostgreSQL, no database yet)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    schema_version: int


def backup(url: DatabaseUrl, dest: Path) -> BackupResult:
    """Copy the database named by `url` to `dest` (which must not exist)."""
    if url.sqlite_path is None:
        raise BackupRefused(PG_DUMP_HINT)
    source = url.sqlite_path
    if not source.is_file():
        raise BackupRefused(f"DATABASE_URL: there is no database at {source} to back up")
    if dest.exists() or dest.is_symlink():
        raise BackupRefused(f"{dest} already exists; a backup never overwrites a file")
    if not dest.parent.is_dir():
        raise BackupRefused(f"the folder {dest.parent} does not exist")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create {partial}: {exc.strerror}") from exc
    os.close(fd)
    try:
        version = _copy(source, partial)
        _fsync(partial)
        try:
            os.link(partial, dest)  # fails if DEST appeared meanwhile: still never overwritten
        except FileExistsError:
            raise BackupRefused(f"{dest} already exists; a backup never overwrites a file") from None
        except OSError as exc:
            raise StorageError(f"cannot create {dest}: {exc.strerror}") from exc
        _fsync(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(dest, dest.stat().st_size, version)


def _copy(source: Path, target: Path) -> int:
    sqlite = sqlite_module()
    try:
        # Read-only by URI: a mistyped path is an error, never a new empty database.
        src = sqlite.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None, timeout=10.0)
    except sqlite.Error as exc:
        raise StorageError(f"cannot open {source}: {exc}") from exc
    try:
        dst = sqlite.connect(str(target), isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")
            (check,) = dst.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise StorageError(f"the copy failed its integrity check: {check}")
            version = migrations.current_version_sqlite(dst)
        finally:
            dst.close()
    except sqlite.Error as exc:
        raise StorageError(f"backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    return version


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
