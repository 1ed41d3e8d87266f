"""Pytest fixtures for the fake wallet, the regtest chain, the private Tor network and the Privacy Pass
reference implementation (privacypass-ts in node).

Load them once for the whole suite from tests/conftest.py with

    pytest_plugins = ("tests.support.fixtures",)

(a test module may also carry that line; pytest registers the plugin once, so the session-scoped chain
is started once). Importing the fixture functions by name into several modules would instead create
one session chain per importing module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.fake_wallet import FakeWallet
from tests.support.privacypass_node import ReferenceImplementation, install_web_packages
from tests.support.regtest import RegtestChain, missing_binaries
from tests.support.services import require
from tests.support.tor_network import ServiceSpec, TorExited, TorNetwork
from tests.support.tor_network import missing_binaries as tor_missing_binaries


def module_wallet() -> Callable[[], Iterator[FakeWallet]]:
    """A `wallet` fixture scoped to one test module, for the module's daemon process to poll: one fake
    monero-wallet-rpc (height 200, the captured merchant address) from the module's first test to its
    last. A module takes it with `wallet = module_wallet()`, which overrides the function-scoped
    `wallet` of tests/conftest.py (a module-scoped daemon cannot poll a wallet that each test closes).
    """

    @pytest.fixture(scope="module", name="wallet")
    def wallet() -> Iterator[FakeWallet]:
        with FakeWallet(height=200) as fake:
            yield fake

    return wallet


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


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNetwork]:
    """A private Tor network (7 real tors on loopback), one per session, ready to fetch onions.

    Two onion services run `conf/torrc.snippet` as documented: `public` publishes the Unix socket
    `network.service("public").socket_path`, `circuits` its own with the snippet's optional
    `HiddenServiceExportCircuitID haproxy` switched on (or as it is, if the snippet has it on). A test
    puts a daemon behind either socket. Skips when the Debian `tor` package is not installed, but
    fails under CI=true, where scripts/test installs it. Booting takes about 25-55 s. Every tor is
    killed by pid afterwards. Set ANON_TICKET_KEEP_TOR=1 to keep the work directories (torrcs, logs)
    after the session.
    """
    missing = tor_missing_binaries()
    require(
        "the Tor network",
        not missing,
        f"it needs {', '.join(missing)} on PATH: install the Debian package `tor`"
        " (scripts/test does it when run as root)",
    )
    services = [ServiceSpec("public"), ServiceSpec("circuits", enable=("HiddenServiceExportCircuitID",))]
    try:
        network = TorNetwork.start(tmp_path_factory.mktemp("tor"), services)
    except TorExited:
        # Another process can take a free port between choosing it and tor binding it: once more.
        network = TorNetwork.start(tmp_path_factory.mktemp("tor"), services)
    try:
        yield network
    finally:
        network.stop()
        if not os.environ.get("ANON_TICKET_KEEP_TOR"):
            network.remove_workdir()


@pytest.fixture(scope="session")
def privacypass_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceImplementation]:
    """`@cloudflare/privacypass-ts` as web/package-lock.json pins it (`npm ci --ignore-scripts`, once per
    session), served by one node process: its client, origin and header codecs
    (tests/support/privacypass_node.py). Skips without node and npm (fails under CI=true)."""
    modules = install_web_packages(tmp_path_factory.mktemp("web-packages"))
    with ReferenceImplementation(modules) as reference:
        yield reference
