"""Schema migrations: numbered plain `.sql` files in `sql/<backend>/`, applied in order.

Each file runs in one transaction together with the row that records it, so a crash mid-migration
leaves the previous version intact. A database migrated by newer code is refused rather than guessed at.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anon_ticket.errors import SchemaTooNew, StorageError

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def sql_root() -> Path:
    """The repository's `sql/` folder (override with ANON_TICKET_SQL_DIR for unusual installs)."""
    override = os.environ.get("ANON_TICKET_SQL_DIR", "").strip()
    return Path(override) if override else Path(__file__).resolve().parents[2] / "sql"


def available(backend: str) -> list[Migration]:
    folder = sql_root() / backend
    if not folder.is_dir():
        raise StorageError(f"schema folder {folder} is missing")
    found = []
    for path in sorted(folder.iterdir()):
        match = _FILE_NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError(f"schema files in {folder} must be numbered 0001, 0002, … without gaps")
    return found


def current_version_sqlite(conn: Any) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
    )
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(version)


def migrate_sqlite(conn: Any, migrations: list[Migration] | None = None) -> int:
    """Bring an SQLite database (autocommit connection) to the newest schema; return its version."""
    migrations = available("sqlite") if migrations is None else migrations
    newest = migrations[-1].version if migrations else 0
    version = current_version_sqlite(conn)
    if version > newest:
        raise SchemaTooNew(
            f"the database is at schema version {version}, but this anon_ticket knows only up to "
            f"{newest}: run the newer anon_ticket, or restore a backup"
        )
    for migration in migrations:
        if migration.version <= version:
            continue
        # executescript runs each statement in autocommit mode unless we wrap it ourselves.
        script = (
            "BEGIN IMMEDIATE;\n"
            + migration.sql()
            + f"\nINSERT INTO schema_migrations (version, applied_at) "
            f"VALUES ({migration.version}, {int(time.time())});\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"migration {migration.path.name} failed: {exc}") from exc
        version = migration.version
    return version
