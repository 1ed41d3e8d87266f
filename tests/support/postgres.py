"""Throwaway PostgreSQL databases and schemas on the server this machine runs, and their fixtures.

Every test session creates its own database (`anon_ticket_test_<random>`, dropped at the end) and every
test its own schema in it, reached through `?options=-csearch_path%3D<schema>` in the URL — the same
way an operator hosts several instances in one database. A test that must count its own connections
(`pg_stat_activity` knows databases, not schemas) takes a whole database of its own instead
(`fresh_database_url`), dropped when the session ends. Other developers' tests share the server:
nothing here changes a server setting or touches a database it did not create.

Set ANON_TICKET_TEST_POSTGRES to an admin URL to use another server; the tests skip, saying why, only
when no server answers (and fail under CI=true: tests/support/services.py).

The fixtures (`pg_url`, `pg_database`) are registered for the whole suite by tests/conftest.py.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Iterator
from typing import Any

import psycopg  # the test extra: installed with the suite, never skipped for
import pytest
from psycopg import sql

from anon_ticket.config import DatabaseUrl, Secret
from anon_ticket.storage.database import Database
from tests.support.services import require

ADMIN_URL = os.environ.get("ANON_TICKET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
_SESSION_DB = pytest.StashKey[str]()
_UNREACHABLE = pytest.StashKey[str]()


def _admin(config: pytest.Config) -> psycopg.Connection[Any]:
    if _UNREACHABLE in config.stash:
        require("PostgreSQL", False, config.stash[_UNREACHABLE])
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        config.stash[_UNREACHABLE] = f"no PostgreSQL server reachable at {ADMIN_URL}: {exc}".strip()
        require("PostgreSQL", False, config.stash[_UNREACHABLE])
        raise  # require() skipped or failed already; this line is never reached


def _new_database(config: pytest.Config) -> str:
    """A new empty database, dropped (with whatever is still connected to it) when pytest ends."""
    name = f"anon_ticket_test_{secrets.token_hex(6)}"
    with _admin(config) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    config.add_cleanup(drop)
    parts = urllib.parse.urlsplit(ADMIN_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def session_database_url(config: pytest.Config) -> str:
    """The URL of this session's own database, created on first use and dropped when pytest ends."""
    if _SESSION_DB not in config.stash:
        config.stash[_SESSION_DB] = _new_database(config)
    return config.stash[_SESSION_DB]


def fresh_schema_url(config: pytest.Config) -> str:
    """A URL whose search_path is a new, empty schema in the session's database."""
    base = session_database_url(config)
    schema = f"s_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return f"{base}?options=-csearch_path%3D{schema}"


def fresh_database_url(config: pytest.Config) -> str:
    """A whole new database of its own (for counting its connections), dropped when pytest ends."""
    return _new_database(config)


def database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def connections_to(url: str, application_prefix: str = "anon_ticket") -> list[str]:
    """The application_name of every session on `url`'s database whose name starts with the prefix
    (our test connections, which libpq names after the script, are left out)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
            (database_name(url), application_prefix + "%"),
        ).fetchall()
    return [row[0] for row in rows]


def database_for(url: str, **pool: Any) -> Database:
    """A `Database` on `url`; `pool` passes `pool_size` / `pool_wait_secs` through."""
    return Database(DatabaseUrl("postgresql", None, Secret(url)), **pool)


def raw(url: str) -> Any:
    """A plain autocommit connection on the test's schema, for looking behind the store's back."""
    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    return fresh_schema_url(request.config)


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    db = database_for(pg_url)
    db.migrate()
    yield db
    db.close()
