"""Shared fixtures: real database files in temporary folders, and Pykka hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from anon_ticket.config import DatabaseUrl
from anon_ticket.storage.database import Database
from anon_ticket.storage.sqlite import SqliteStore
from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import Pipeline, pipeline_config

pytest_plugins = ("tests.support.fixtures", "tests.support.postgres")


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


@pytest.fixture
def wallet() -> Iterator[FakeWallet]:
    """A scriptable monero-wallet-rpc on a real socket, at height 200."""
    with FakeWallet(height=200) as fake:
        yield fake


@pytest.fixture
def pipeline(tmp_path: Path, wallet: FakeWallet) -> Iterator[Pipeline]:
    """The real actors on a real database file, scanning that wallet from height 100."""
    running = Pipeline(pipeline_config(tmp_path / "at.db", wallet.url, MONITOR_START_HEIGHT="100"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet
) -> Iterator[DaemonProcess]:
    """One daemon process per test module (starting one takes about a second).

    A module using it overrides `wallet` with a module-scoped one (`wallet = module_wallet()`, from
    tests/support/fixtures.py), which the daemon polls.
    """
    folder = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with DaemonProcess(folder, wallet_url=wallet.url) as running:
        yield running
