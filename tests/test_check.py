"""`python -m anon_ticket check` against real wallets on the regtest chain (docs/PROTOCOL.md §7).

The starting point is a deployment that is right: a migrated SQLite database bound to the merchant's
address, a view-only copy of the merchant's wallet in a monero-wallet-rpc of its own (synced, on the
suite's chain), a token file of mode 0600, free listener ports, and conf/torrc.snippet as it ships
(circuit ids off) with PROXY_PROTOCOL off. It exits 0. Each test then makes one mistake an operator
makes — a wallet that can spend, a wallet left behind, a token file others can read, too few
descriptors, a torrc and PROXY_PROTOCOL that disagree, a database not migrated, an unreachable wallet —
and `check` must name it with its fix and exit 1. The command runs as a child process, as an
operator runs it, with `--env-file` like every other command.
"""

from __future__ import annotations

import os
import resource
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from anon_ticket.config import DatabaseUrl, Secret
from anon_ticket.storage.database import Database
from tests.support.daemon import REPO_ROOT, DaemonProcess, free_ports
from tests.support.fake_wallet import FakeWallet
from tests.support.postgres import fresh_schema_url
from tests.support.regtest import RegtestChain, WalletRpc

pytest_plugins = ("tests.support.fixtures",)
pytestmark = pytest.mark.regtest

SNIPPET = REPO_ROOT / "conf" / "torrc.snippet"
EXPORT_LINE = "HiddenServiceExportCircuitID haproxy\n"
# What this machine's hard descriptor limit holds on both listeners (1,024 where it is big enough).
CONNECTIONS = min(1024, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 128) // 2)
NEEDED_DESCRIPTORS = 2 * CONNECTIONS + 128


@pytest.fixture(scope="module")
def view_only(regtest_chain: RegtestChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletRpc]:
    """The merchant's view-only copy, in a monero-wallet-rpc of its own on the suite's chain."""
    chain = regtest_chain
    (port,) = free_ports(1)
    wallet = WalletRpc("checked", tmp_path_factory.mktemp("view-only"), port, chain.daemon_port)
    wallet.start_process()
    try:
        wallet.wait_ready()
        view_key = str(chain.merchant.call("query_key", key_type="view_key")["key"])
        wallet.call(
            "generate_from_keys",
            filename="checked",
            address=chain.merchant.address,
            viewkey=view_key,
            password="",
            restore_height=0,
        )
        wallet.enable_auto_refresh(1)
        chain.sync_wallets(wallet)
        yield wallet
    finally:
        wallet.process.stop()


@dataclass
class Deployment:
    """One operator's setup: an env file and a torrc in a folder; `check()` runs the command."""

    folder: Path
    env: dict[str, str]
    monerod: str
    torrc: Path

    @property
    def token_file(self) -> Path:
        return self.folder / "internal_api_token"

    def check(self, *extra: str, preexec: Callable[[], None] | None = None) -> tuple[int, str]:
        env_file = self.folder / "env"
        env_file.write_text("".join(f"{name}={value}\n" for name, value in self.env.items()))
        environ = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")}
        environ["PYTHONPATH"] = str(REPO_ROOT)
        command = [sys.executable, "-m", "anon_ticket", "--env-file", str(env_file), "check"]
        result = subprocess.run(
            [*command, "--monerod", self.monerod, "--torrc", str(self.torrc), *extra],
            env=environ,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=preexec,  # a child without threads: setrlimit only
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, result.stdout + result.stderr


def problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem")]


def the_problem(output: str, subject: str) -> str:
    """The one problem line, about `subject`, with its fix (any other problem fails the test)."""
    found = problems(output)
    assert len(found) == 1, output
    assert found[0].startswith(f"problem  {subject}:") and " — fix: " in found[0], output
    return found[0]


@pytest.fixture
def deployment(regtest_chain: RegtestChain, view_only: WalletRpc, tmp_path: Path) -> Deployment:
    api, internal = free_ports(2)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'anon_ticket.db'}",
        "API_BIND_ADDRESS": f"127.0.0.1:{api}",
        "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal}",
        "MONERO_RPC_URL": view_only.url,
        "MIN_PAYMENT_AMOUNT": "1000000",
        "HTTP_MAX_CONNECTIONS": str(CONNECTIONS),
        "PROXY_PROTOCOL": "off",
    }
    database = Database(DatabaseUrl("sqlite", tmp_path / "anon_ticket.db", None))
    database.migrate()
    store = database.open_writer()
    try:
        store.bind_wallet(regtest_chain.merchant.address)
    finally:
        store.close()
    fd = os.open(tmp_path / "internal_api_token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"a-token-of-at-least-sixteen-characters\n")
    os.close(fd)
    torrc = tmp_path / "torrc"
    torrc.write_text(SNIPPET.read_text())
    return Deployment(tmp_path, env, regtest_chain.daemon_url, torrc)


def test_a_right_deployment_passes_every_check(deployment: Deployment) -> None:
    code, output = deployment.check()
    assert code == 0, output
    assert problems(output) == [], output
    for subject in (
        "database:",
        "wallet:",
        "wallet view-only: view-only",
        "wallet synced:",
        "wallet bound:",
        "token file:",
        "descriptors:",
        "public listener:",
        "internal listener:",
        "torrc:",
    ):
        assert f"ok       {subject}" in output, output
    assert output.rstrip().endswith("everything holds")


def test_a_wallet_that_can_spend_is_not_view_only_and_its_key_never_shows(
    deployment: Deployment, regtest_chain: RegtestChain
) -> None:
    deployment.env["MONERO_RPC_URL"] = regtest_chain.merchant.url  # the spend-capable merchant wallet
    code, output = deployment.check()
    assert code == 1
    line = the_problem(output, "wallet view-only")
    assert "not view-only" in line and "generate-from-view-key" in line
    spend_key = str(regtest_chain.merchant.call("query_key", key_type="spend_key")["key"])
    assert spend_key not in output


def test_a_wallet_far_behind_its_daemon(
    deployment: Deployment, regtest_chain: RegtestChain, view_only: WalletRpc
) -> None:
    view_only.disable_auto_refresh()
    try:
        regtest_chain.mine(5)
        code, output = deployment.check()
    finally:
        view_only.enable_auto_refresh(1)
        regtest_chain.sync_wallets(view_only)
    assert code == 1
    line = the_problem(output, "wallet synced")
    assert "blocks behind its daemon" in line and "catch up" in line


def test_a_token_file_others_can_read(deployment: Deployment) -> None:
    deployment.token_file.chmod(0o644)
    code, output = deployment.check()
    assert code == 1
    line = the_problem(output, "token file")
    assert "mode 0644" in line and f"chmod 600 {deployment.token_file}" in line
    assert "a-token-of-at-least" not in output  # only its mode was read


def test_a_privacy_pass_key_file_others_can_read(deployment: Deployment) -> None:
    key = deployment.folder / "privacy_pass_key.pem"
    key.write_text("not read by check\n")
    key.chmod(0o640)
    code, output = deployment.check()
    assert code == 1
    assert f"chmod 600 {key}" in the_problem(output, "Privacy Pass key")


def test_a_descriptor_limit_too_low_for_the_connection_cap(deployment: Deployment) -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NEEDED_DESCRIPTORS - 1, NEEDED_DESCRIPTORS - 1))

    code, output = deployment.check(preexec=low_limit)
    assert code == 1
    line = the_problem(output, "descriptors")
    assert f"HTTP_MAX_CONNECTIONS={CONNECTIONS}" in line and f"LimitNOFILE={NEEDED_DESCRIPTORS}" in line


def test_a_torrc_exporting_circuit_ids_while_proxy_protocol_is_off(deployment: Deployment) -> None:
    deployment.torrc.write_text(SNIPPET.read_text() + EXPORT_LINE)
    code, output = deployment.check()
    assert code == 1
    assert "PROXY_PROTOCOL=tor" in the_problem(output, "torrc")


def test_proxy_protocol_tor_without_the_torrc_line(deployment: Deployment) -> None:
    deployment.env["PROXY_PROTOCOL"] = "tor"
    code, output = deployment.check()
    assert code == 1
    assert "HiddenServiceExportCircuitID haproxy" in the_problem(output, "torrc")
    # Both on is right again.
    deployment.torrc.write_text(SNIPPET.read_text() + EXPORT_LINE)
    assert deployment.check()[0] == 0


def test_a_database_not_migrated(deployment: Deployment, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    deployment.env["DATABASE_URL"] = f"sqlite:///{empty}"
    code, output = deployment.check()
    assert code == 1
    line = the_problem(output, "database")
    assert "schema version 0" in line and "python -m anon_ticket migrate" in line


def test_a_database_that_does_not_exist_is_not_created(deployment: Deployment, tmp_path: Path) -> None:
    deployment.env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'missing.db'}"
    code, output = deployment.check()
    assert code == 1
    assert "python -m anon_ticket migrate" in the_problem(output, "database")
    assert not (tmp_path / "missing.db").exists()


def test_a_wallet_that_does_not_answer(deployment: Deployment) -> None:
    (closed,) = free_ports(1)
    deployment.env["MONERO_RPC_URL"] = f"http://127.0.0.1:{closed}/json_rpc"
    code, output = deployment.check()
    assert code == 1
    assert "start monero-wallet-rpc" in the_problem(output, "wallet")


def test_a_database_bound_to_another_wallet(deployment: Deployment, regtest_chain: RegtestChain) -> None:
    deployment.env["MONERO_RPC_URL"] = regtest_chain.payer.url  # can spend, and is another wallet
    code, output = deployment.check()
    assert code == 1
    found = problems(output)
    assert [line.split(":")[0] for line in found] == ["problem  wallet view-only", "problem  wallet bound"]


def test_a_listener_port_another_program_holds(deployment: Deployment) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        deployment.env["API_BIND_ADDRESS"] = f"127.0.0.1:{squatter.getsockname()[1]}"
        code, output = deployment.check()
    assert code == 1
    assert "in use by another program" in the_problem(output, "public listener")


def test_listeners_held_by_a_running_daemon_are_fine(deployment: Deployment, tmp_path: Path) -> None:
    other = tmp_path / "running"
    other.mkdir()
    with FakeWallet() as wallet, DaemonProcess(other, wallet_url=wallet.url) as daemon:
        for name in ("API_BIND_ADDRESS", "INTERNAL_BIND_ADDRESS"):
            deployment.env[name] = str(daemon.env[name])
        code, output = deployment.check()
    assert code == 0, output
    assert "ok       public listener: 127.0.0.1:" in output
    assert output.count("is bound by a running anon_ticket daemon") == 2, output


def test_a_world_writable_database_folder(deployment: Deployment, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    try:
        code, output = deployment.check()
    finally:
        tmp_path.chmod(0o700)
    assert code == 1
    assert f"chmod 0700 {tmp_path}" in the_problem(output, "database folder")


def test_a_postgresql_node(deployment: Deployment, request: pytest.FixtureRequest) -> None:
    url = fresh_schema_url(request.config)
    deployment.env["DATABASE_URL"] = url
    code, output = deployment.check()
    assert code == 1
    assert "not migrated at all" in the_problem(output, "database")
    Database(DatabaseUrl("postgresql", None, Secret(url))).migrate()
    code, output = deployment.check()
    assert code == 0, output
    assert "wallet bound: the database is not bound yet" in output
    assert "ok       database connections:" in output or "warning  database connections:" in output
    deployment.env["DATABASE_POOL_SIZE"] = "1000"  # more than the server's max_connections (100)
    code, output = deployment.check()
    assert code == 0, output  # a warning: this node's own connections may be among those counted
    assert "warning  database connections:" in output and "DATABASE_POOL_SIZE=1000 + 4" in output
