"""Schema migrations: numbered plain `.sql` files in `sql/<backend>/`, applied in order.

The files are package data (`anon_ticket/sql`, a link to the repository's top-level `sql/` that the
wheel turns into real files), found with `importlib.resources`, so an installed wheel works from any
directory and never looks for a source tree.

Each file runs in one transaction together with the row that records it, so a crash mid-migration
leaves the previous version intact. A database migrated by newer code is refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anon_ticket.errors import SchemaTooNew, StorageError

if TYPE_CHECKING:  # psycopg is the optional `postgresql` extra: imported only where it is used
    import psycopg
    from psycopg.rows import TupleRow

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_lock(class, key) class for migrations ("ant" 0x02); the key is the schema's name hash,
# so instances in different schemas of one database migrate independently.
PG_MIGRATION_LOCK_CLASS = 0x616E7402


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def sql_root() -> Path:
    """The installed package's `sql/` folder (override with ANON_TICKET_SQL_DIR for unusual installs)."""
    override = os.environ.get("ANON_TICKET_SQL_DIR", "").strip()
    if override:
        return Path(override)
    # A real directory in every supported install (wheel, editable, source tree): never a zip.
    return Path(str(importlib.resources.files("anon_ticket").joinpath("sql")))


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
    version = current_version_sqlite(conn)
    for migration in _pending(migrations, version):
        # executescript runs each statement in autocommit mode unless we wrap it ourselves.
        script = (
            "BEGIN IMMEDIATE;\n" + migration.sql() + f"\nINSERT INTO schema_migrations (version, applied_at) "
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


def _pending(migrations: list[Migration], version: int) -> list[Migration]:
    """The migrations a database at `version` still needs, in order; refuses a newer database
    (whatever a newer anon_ticket stored, this one cannot know how to read it)."""
    newest = migrations[-1].version if migrations else 0
    if version > newest:
        raise SchemaTooNew(
            f"the database is at schema version {version}, but this anon_ticket knows only up to "
            f"{newest}: run the newer anon_ticket, or restore a backup"
        )
    return [migration for migration in migrations if migration.version > version]


def current_version_postgres(conn: psycopg.Connection[TupleRow]) -> int:
    """The schema version of the first schema in search_path (0 before the first migration)."""
    import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

    try:
        # In the first schema of search_path only: another instance's table further down the path
        # must not pass for ours.
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'schema_migrations')"
        ).fetchone()
        if row is None or not row[0]:
            return 0
        found = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    except psycopg.Error as exc:
        raise StorageError(f"cannot read the schema version: {exc}") from exc
    assert found is not None
    return int(found[0])


def migrate_postgres(conn: psycopg.Connection[TupleRow], migrations: list[Migration] | None = None) -> int:
    """Bring a PostgreSQL schema (autocommit connection) to the newest version; return it.

    PostgreSQL DDL is transactional: each file runs in one transaction with its `schema_migrations`
    row, so a failing file leaves nothing behind. A session advisory lock makes concurrent migrators
    (the daemon and `migrate`, two daemons racing for the daemon lock) take turns.
    """
    import psycopg  # noqa: PLC0415 (the optional extra is imported only on this backend)

    migrations = available("postgresql") if migrations is None else migrations
    lock = "SELECT pg_advisory_{}(%s, hashtext(coalesce(current_schema(), '')))"
    try:
        conn.execute(lock.format("lock"), (PG_MIGRATION_LOCK_CLASS,))
    except psycopg.Error as exc:
        raise StorageError(f"cannot lock the schema for migration: {exc}") from exc
    try:
        version = current_version_postgres(conn)
        for migration in _pending(migrations, version):
            try:
                with conn.transaction():
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
                    )
                    # No parameters: sent as one simple query, so a file may hold many statements.
                    conn.execute(migration.sql().encode("utf-8"))
                    conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                        (migration.version, int(time.time())),
                    )
            except psycopg.Error as exc:
                raise StorageError(f"migration {migration.path.name} failed: {exc}") from exc
            version = migration.version
        return version
    finally:
        # A broken connection has released the lock with its session.
        with contextlib.suppress(psycopg.Error):
            conn.execute(lock.format("unlock"), (PG_MIGRATION_LOCK_CLASS,))
