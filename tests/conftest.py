"""Shared fixtures: real database files in temporary folders, and Pykka hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from anon_ticket.config import DatabaseUrl
from anon_ticket.storage.database import Database
from anon_ticket.storage.sqlite import SqliteStore


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(DatabaseUrl("sqlite", tmp_path / "anon_ticket.db", None))
    db.migrate()
    yield db
    db.close()


@pytest.fixture
def store(database: Database) -> Iterator[SqliteStore]:
    writer = SqliteStore(database.path)
    yield writer
    writer.close()


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """No actor outlives its test (Mopidy's rule): leaked actor threads would cross-talk."""
    yield
    pykka.ActorRegistry.stop_all()
