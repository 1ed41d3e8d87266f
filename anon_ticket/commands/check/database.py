"""The database: reachable, migrated to this package's schema, and the wallet address it is bound to.

Read only: SQLite is opened with `mode=ro` (a missing file is reported, never created) and PostgreSQL
in a read-only session. `migrate` is the fix for an old schema; a newer one means a newer anon_ticket
wrote it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path

from anon_ticket.commands.check.report import Finding, ok, problem, warning
from anon_ticket.config import Config
from anon_ticket.errors import StorageError
from anon_ticket.storage import migrations

SUBJECT = "database"
# Besides its pool, a node holds the daemon lock, the poller's leadership, the PID feed and the writer.
NODE_EXTRA_CONNECTIONS = 4
MIGRATE = "python -m anon_ticket migrate (as the daemon's user; the daemon also migrates at start)"


@dataclass
class DatabaseView:
    """What the other checks need from the database: the bound address, if it could be read."""

    findings: list[Finding] = field(default_factory=list)
    reachable: bool = False
    wallet_address: str | None = None


def check(config: Config) -> DatabaseView:
    url = config.database_url
    if url.sqlite_path is not None:
        return _sqlite(url.sqlite_path)
    assert url.postgres_dsn is not None
    return _postgres(url.postgres_dsn.reveal(), str(url), config.database_pool_size)


def _versions(found: int, backend: str, where: str, view: DatabaseView) -> None:
    wanted = len(migrations.available(backend))
    if found == wanted:
        view.findings.append(ok(SUBJECT, f"{where} answers, schema version {found} (this anon_ticket's)"))
    elif found < wanted:
        view.findings.append(
            problem(
                SUBJECT,
                f"{where} is at schema version {found}, this anon_ticket needs {wanted}"
                + (" (not migrated at all)" if found == 0 else ""),
                MIGRATE,
            )
        )
    else:
        view.findings.append(
            problem(
                SUBJECT,
                f"{where} is at schema version {found}, newer than this anon_ticket's {wanted}",
                "install the anon_ticket release that migrated it (a database is never migrated down)",
            )
        )


def _sqlite(path: Path) -> DatabaseView:
    view = DatabaseView()
    folder = path.parent
    if not folder.is_dir():
        view.findings.append(
            problem(
                "database folder",
                f"{folder} does not exist",
                f"install -d -m 0700 -o <daemon user> {folder} (or systemd's StateDirectory=)",
            )
        )
        return view
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o002:
        view.findings.append(
            problem(
                "database folder",
                f"{folder} is writable by every user (mode {mode:04o}): anyone could replace the database",
                f"chmod 0700 {folder}",
            )
        )
    elif not os.access(folder, os.W_OK | os.X_OK):
        view.findings.append(
            problem(
                "database folder",
                f"{folder} is not writable by this user (SQLite writes -wal, -shm and the lock there)",
                f"run check as the daemon's user, or chown <daemon user> {folder}",
            )
        )
    else:
        view.findings.append(ok("database folder", f"{folder} (mode {mode:04o})"))
    if not path.exists():
        view.findings.append(problem(SUBJECT, f"{path} does not exist", MIGRATE))
        return view
    file_mode = stat.S_IMODE(path.stat().st_mode)
    if file_mode & 0o077:
        view.findings.append(
            warning(
                "database file",
                f"{path} is open to the group or others (mode {file_mode:04o})",
                f"chmod 600 {path}",
            )
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = 0
            if "schema_migrations" in tables:
                version = int(
                    conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
                )
            if "monitor_state" in tables:
                row = conn.execute("SELECT wallet_address FROM monitor_state WHERE id = 1").fetchone()
                view.wallet_address = row[0] if row else None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        view.findings.append(
            problem(SUBJECT, f"{path} cannot be read: {exc}", "check the file (is it a SQLite database?)")
        )
        return view
    view.reachable = True
    _versions(version, "sqlite", str(path), view)
    return view


def _postgres(dsn: str, shown: str, pool_size: int) -> DatabaseView:
    view = DatabaseView()
    try:
        from anon_ticket.storage import postgres  # noqa: PLC0415 (the optional extra)
    except ImportError:
        view.findings.append(
            problem(
                SUBJECT,
                "DATABASE_URL names PostgreSQL, psycopg is missing",
                "pip install 'anon_ticket[postgresql]'",
            )
        )
        return view
    try:
        with postgres.connect(dsn, read_only=True) as conn:
            version = migrations.current_version_postgres(conn)
            if version:
                row = conn.execute("SELECT wallet_address FROM monitor_state WHERE id = 1").fetchone()
                view.wallet_address = row[0] if row else None
            room = conn.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity)"
            ).fetchone()
    except StorageError as exc:
        view.findings.append(
            problem(SUBJECT, f"{shown}: {exc}", "check DATABASE_URL, the server and its pg_hba.conf")
        )
        return view
    except Exception as exc:
        view.findings.append(problem(SUBJECT, f"{shown}: {type(exc).__name__}: {exc}", MIGRATE))
        return view
    view.reachable = True
    _versions(version, "postgresql", shown, view)
    if room is not None:
        view.findings.append(_connections(int(room[0]), pool_size))
    return view


def _connections(free: int, pool_size: int) -> Finding:
    """Room on the server for this node: its pool plus 4 (docs/OPERATIONS.md §15, Sizing)."""
    needed = pool_size + NODE_EXTRA_CONNECTIONS
    if free >= needed:
        return ok(
            "database connections", f"the server has {free} connections free, a node uses up to {needed}"
        )
    return warning(
        "database connections",
        f"the server has {free} connections free, a node uses up to {needed} (DATABASE_POOL_SIZE="
        f"{pool_size} + {NODE_EXTRA_CONNECTIONS}; this node's own are counted if it runs)",
        "raise max_connections on the server, or lower DATABASE_POOL_SIZE",
    )
