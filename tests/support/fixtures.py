"""Pytest fixtures for the fake wallet and the regtest chain.

Load them once for the whole suite from tests/conftest.py with

    pytest_plugins = ("tests.support.fixtures",)

(a test module may also carry that line; pytest registers the plugin once, so the session-scoped chain
is started once). Importing the fixture functions by name into several modules would instead create
one session chain per importing module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.fake_wallet import FakeWallet
from tests.support.regtest import RegtestChain, missing_binaries
from tests.support.services import require


@pytest.fixture
def fake_wallet() -> Iterator[FakeWallet]:
    """A fresh fake monero-wallet-rpc (height 200, the captured merchant address), closed afterwards."""
    with FakeWallet() as wallet:
        yield wallet


@pytest.fixture(scope="session")
def regtest_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegtestChain]:
    """A private regtest chain (real monerod, merchant and payer monero-wallet-rpc), one per session.

    Skips when the Debian `monero` package is not installed (fails under CI=true). The payer has mined
    100+ blocks and can transfer at once; both wallets auto-refresh every second. Every process is
    killed by pid afterwards.
    Set ANON_TICKET_KEEP_REGTEST=1 to keep the work directory (logs) after the session.
    """
    missing = missing_binaries()
    require(
        "monero (monerod, monero-wallet-rpc)",
        not missing,
        f"regtest needs {', '.join(missing)} on PATH: install the Debian package `monero`"
        " (scripts/test does it when run as root)",
    )
    workdir = tmp_path_factory.mktemp("regtest")
    chain = RegtestChain.start(workdir)
    try:
        yield chain
    finally:
        chain.stop()
        if not os.environ.get("ANON_TICKET_KEEP_REGTEST"):
            chain.remove_workdir()
