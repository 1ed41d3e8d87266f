"""A private Monero regtest chain: real monerod plus real monero-wallet-rpc processes, on loopback.

The demo (`python -m anon_ticket demo`) and the test suite's end-to-end tests (tests/support/regtest.py)
both run this. Everything lives in one work directory and on free loopback ports; monerod runs with
`--regtest --offline` and a fixed difficulty of 1 (no peer, no real chain, a block in ~60 ms); every
process is started by this module and stopped by pid (`RegtestChain.stop`, also registered with
atexit, and called when `start` itself fails).

    chain = RegtestChain.start(workdir)
    try:
        integrated = chain.merchant.make_integrated_address("0123456789abcdef")
        txid = chain.payer.transfer(integrated, 10**12)
        chain.mine(1)
        chain.sync_wallets()
        chain.merchant.get_transfers(**{"in": True, "filter_by_height": True, "min_height": 0})
    finally:
        chain.stop()

Facts that shape the setup (measured with monero 0.18):
- the wallets are created only once monerod answers: a wallet created while the daemon is unreachable
  sets its refresh-from height from the mainnet calendar and would never see a regtest block;
- the payer needs >= 80 mined blocks before its first transfer (-19 "not enough outputs" otherwise);
  100 are mined;
- a wallet sees new blocks only after a refresh: `auto_refresh` runs every second here, and
  `sync_wallets()` forces a refresh and waits until the wallets reach the daemon's height;
- with `view_only_merchant` the merchant's wallet-rpc holds a view-only copy (`generate_from_keys`
  with the address and the secret view key, no spend key) of the merchant wallet it created, which
  stays closed in the same folder: what an operator runs (docs/OPERATIONS.md).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from anon_ticket.demo import processes, waiting
from anon_ticket.demo.ports import free_ports
from anon_ticket.demo.processes import STOP_GRACE
from anon_ticket.errors import ChainRpcError

MONEROD = "monerod"
WALLET_RPC = "monero-wallet-rpc"
PREMINE_BLOCKS = 100
START_TIMEOUT = 60.0

T = TypeVar("T")


def missing_binaries() -> list[str]:
    """Which of monerod / monero-wallet-rpc are not on PATH (empty when regtest can run)."""
    return [name for name in (MONEROD, WALLET_RPC) if shutil.which(name) is None]


def _post(url: str, payload: dict[str, Any], timeout: float) -> Any:
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy from the environment
        response = session.post(url, json=payload, timeout=timeout)
        response.raise_for_status()
        return response.json()


def json_rpc(
    url: str, method: str, params: dict[str, Any] | None = None, *, timeout: float = 60.0
) -> dict[str, Any]:
    """Call `method` at `url` (a /json_rpc endpoint); the `result` object, or `ChainRpcError`."""
    body = _post(url, {"jsonrpc": "2.0", "id": "0", "method": method, "params": params or {}}, timeout)
    error = body.get("error")
    if error is not None:
        raise ChainRpcError(method, error.get("code"), str(error.get("message")))
    result: dict[str, Any] = body.get("result", {})
    return result


def _wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    """`waiting.wait_for`, with a node or wallet that does not answer yet counted as "not yet"."""
    return waiting.wait_for(
        what, check, timeout, interval, tolerate=(requests.RequestException, ChainRpcError)
    )


@dataclass
class _Process:
    """One child process, started and stopped by pid; its stdout/stderr go to `output`."""

    name: str
    argv: list[str]
    output: Path
    die_with_parent: bool = False
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.popen = processes.spawn(self.argv, self.output, die_with_parent=self.die_with_parent)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} (pid {self.popen.pid}) exited with {self.popen.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.output.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def reap(self, grace: float = STOP_GRACE) -> None:
        """Wait for the exit (after a signal sent elsewhere); SIGKILL by pid after `grace` seconds."""
        processes.reap(self.popen, grace)

    def stop(self, grace: float = STOP_GRACE) -> None:
        processes.stop_all([self.popen], grace)


class WalletRpc:
    """A real monero-wallet-rpc process with one wallet file in its own --wallet-dir."""

    def __init__(
        self, name: str, workdir: Path, port: int, daemon_port: int, *, die_with_parent: bool = False
    ) -> None:
        self.name = name
        self.filename = name
        self.spend_filename = name  # the wallet file that can spend (its view-only copy may be open)
        self.password = ""
        self.port = port
        self.url = f"http://127.0.0.1:{port}/json_rpc"
        self.wallet_dir = workdir / f"{name}-wallet"
        self.ringdb_dir = workdir / f"{name}-ringdb"
        self.wallet_dir.mkdir(parents=True, exist_ok=True)
        self.ringdb_dir.mkdir(parents=True, exist_ok=True)
        self._address: str | None = None
        argv = [
            WALLET_RPC,
            "--daemon-address", f"127.0.0.1:{daemon_port}",
            "--trusted-daemon",
            "--disable-rpc-login",
            "--wallet-dir", str(self.wallet_dir),
            "--rpc-bind-ip", "127.0.0.1",
            "--rpc-bind-port", str(port),
            "--non-interactive",
            "--shared-ringdb-dir", str(self.ringdb_dir),
            "--log-file", str(workdir / f"{name}-wallet-rpc.log"),
        ]  # fmt: skip
        self.process = _Process(
            f"{WALLET_RPC} ({name})", argv, workdir / f"{name}-wallet-rpc.out", die_with_parent
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """JSON-RPC `method` with keyword params (use `**{"in": True}` for reserved words)."""
        return json_rpc(self.url, method, params, timeout=timeout)

    def start_process(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool | None:
            self.process.check_alive()
            self.call("get_version", timeout=2.0)
            return True

        _wait_for(f"{self.process.name} answering", ready, timeout)

    def create(self) -> None:
        self.call("create_wallet", filename=self.filename, password=self.password, language="English")

    def open(self, *, auto_refresh_period: int | None = 1) -> None:
        """Open the wallet file (after a restart the process has none: -13 "No wallet file")."""
        self.call("open_wallet", filename=self.filename, password=self.password)
        if auto_refresh_period:
            self.enable_auto_refresh(auto_refresh_period)

    def enable_auto_refresh(self, period: int = 1) -> None:
        self.call("auto_refresh", enable=True, period=period)

    def disable_auto_refresh(self) -> None:
        """From now on the wallet sees new blocks only at a `refresh` (a wallet left behind)."""
        self.call("auto_refresh", enable=False)

    def make_view_only(self) -> None:
        """Close the wallet and open a view-only copy of it instead (`<name>-view` in the same folder).

        The copy is made from the primary address and the secret *view* key (`query_key view_key`):
        it sees every incoming payment and can never spend. The spend-capable file stays closed;
        `switch_to(wallet.spend_filename)` opens it again (a test of a wrongly configured wallet).
        """
        address = self.address
        view_key = str(self.call("query_key", key_type="view_key")["key"])
        self.call("close_wallet")
        view_filename = f"{self.spend_filename}-view"
        self.call(
            "generate_from_keys",
            filename=view_filename,
            address=address,
            viewkey=view_key,
            password=self.password,
            restore_height=0,
        )
        del view_key
        self.filename = view_filename

    def switch_to(self, filename: str, *, auto_refresh_period: int | None = 1) -> None:
        """Close the open wallet and open `filename` (one of this process's wallet files)."""
        self.call("close_wallet")
        self.filename = filename
        self.open(auto_refresh_period=auto_refresh_period)

    @property
    def address(self) -> str:
        """The primary address (account 0), cached."""
        if self._address is None:
            self._address = str(self.call("get_address", account_index=0)["address"])
        return self._address

    def height(self) -> int:
        return int(self.call("get_height")["height"])

    def refresh(self) -> dict[str, Any]:
        return self.call("refresh", timeout=120.0)

    def get_transfers(self, **params: Any) -> dict[str, Any]:
        return self.call("get_transfers", **params)

    def transfer(self, address: str, amount: int, unlock_time: int = 0, **extra: Any) -> str:
        """Send `amount` atomic units to `address`; the txid (relayed to the daemon's pool)."""
        result = self.call(
            "transfer",
            destinations=[{"amount": amount, "address": address}],
            unlock_time=unlock_time,
            **extra,
        )
        return str(result["tx_hash"])

    def make_integrated_address(self, payment_id_hex: str) -> str:
        return str(self.call("make_integrated_address", payment_id=payment_id_hex)["integrated_address"])


class RegtestChain(processes.ProcessGroup):
    """monerod --regtest --offline plus merchant and payer wallet-rpc, all on loopback.

    Build it with `RegtestChain.start(workdir)`; always `stop()` it (the fixture does).
    """

    def __init__(self, workdir: Path, *, die_with_parent: bool = False) -> None:
        self.workdir = workdir
        self.daemon_port, p2p_port, merchant_port, payer_port = free_ports(4)
        self.daemon_url = f"http://127.0.0.1:{self.daemon_port}"
        daemon_dir = workdir / "daemon"
        daemon_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            MONEROD,
            "--regtest",
            "--offline",
            "--fixed-difficulty", "1",
            "--data-dir", str(daemon_dir),
            "--non-interactive",
            "--no-zmq",
            "--no-igd",
            "--hide-my-port",
            "--rpc-bind-ip", "127.0.0.1",
            "--rpc-bind-port", str(self.daemon_port),
            "--p2p-bind-ip", "127.0.0.1",
            "--p2p-bind-port", str(p2p_port),
            "--disable-dns-checkpoints",
            "--check-updates", "disabled",
            "--log-file", str(workdir / "monerod.log"),
            "--log-level", "0",
        ]  # fmt: skip
        self.daemon = _Process(MONEROD, argv, workdir / "monerod.out", die_with_parent)
        self.merchant = WalletRpc(
            "merchant", workdir, merchant_port, self.daemon_port, die_with_parent=die_with_parent
        )
        self.payer = WalletRpc(
            "payer", workdir, payer_port, self.daemon_port, die_with_parent=die_with_parent
        )
        self.timings: dict[str, float] = {}
        super().__init__("chain", workdir)  # from here on, stopped at exit

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workdir: Path | str,
        *,
        premine: int = PREMINE_BLOCKS,
        view_only_merchant: bool = False,
        die_with_parent: bool = False,
        on_wallets: Callable[[RegtestChain], None] | None = None,
    ) -> RegtestChain:
        """Start the three processes, create both wallets, mine `premine` blocks to the payer.

        `view_only_merchant`: the merchant's wallet-rpc then holds the view-only copy of its wallet.
        `die_with_parent`: the processes get SIGTERM if this process is killed outright (the demo).
        `on_wallets(chain)` runs once both wallets exist, before the premine: the demo starts its
        daemon there, so that the daemon's start overlaps the mining.
        On any failure every process already started is stopped before the error propagates.
        """
        chain = cls(Path(workdir), die_with_parent=die_with_parent)
        try:
            chain._boot(premine, view_only_merchant, on_wallets)
        except BaseException:
            chain.stop()
            raise
        return chain

    def _boot(
        self, premine: int, view_only_merchant: bool, on_wallets: Callable[[RegtestChain], None] | None
    ) -> None:
        t0 = time.monotonic()
        self.daemon.start()
        self.merchant.start_process()
        self.payer.start_process()
        self.wait_daemon_ready()
        self.timings["daemon_ready"] = time.monotonic() - t0
        self.merchant.wait_ready()
        self.payer.wait_ready()
        self.timings["wallets_ready"] = time.monotonic() - t0
        # Only now: a wallet created while the daemon is unreachable would skip the regtest blocks.
        merchant_setup = [self.merchant.create]
        if view_only_merchant:
            merchant_setup.append(self.merchant.make_view_only)
        processes.in_parallel([lambda: [step() for step in merchant_setup], self.payer.create])
        self.timings["wallets_created"] = time.monotonic() - t0
        if on_wallets is not None:
            on_wallets(self)
        self.mine(premine, to_address=self.payer.address)
        self.timings["premined"] = time.monotonic() - t0
        for wallet in (self.merchant, self.payer):
            wallet.enable_auto_refresh(1)
        self.sync_wallets()
        _ = self.merchant.address
        self.timings["ready"] = time.monotonic() - t0

    def wait_daemon_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool | None:
            self.daemon.check_alive()
            self.daemon_rpc("get_info", timeout=2.0)
            return True

        _wait_for("monerod answering", ready, timeout)

    @property
    def pids(self) -> list[int]:
        """Pids of the processes currently running."""
        children = (self.daemon, self.merchant.process, self.payer.process)
        return [p.pid for p in children if p.running() and p.pid is not None]

    def children(self) -> list[subprocess.Popen[bytes] | None]:
        """The processes `stop()` ends: the wallets first, then monerod."""
        return [self.merchant.process.popen, self.payer.process.popen, self.daemon.popen]

    def restart_merchant_wallet(self) -> None:
        """Kill the merchant's wallet-rpc (by pid) and start it again on the same port.

        Like a restarted monero-wallet-rpc with --wallet-dir it then has no wallet open: wallet methods
        answer -13 "No wallet file" until `chain.merchant.open()` (`open_wallet`).
        """
        self.merchant.process.stop()
        self.merchant.start_process()
        self.merchant.wait_ready()

    # -- daemon ------------------------------------------------------------------------------------

    def daemon_rpc(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """monerod JSON-RPC (`/json_rpc`)."""
        return json_rpc(f"{self.daemon_url}/json_rpc", method, params, timeout=timeout)

    def daemon_http(self, path: str, timeout: float = 60.0, **body: Any) -> dict[str, Any]:
        """monerod plain endpoint, e.g. `daemon_http("/pop_blocks", nblocks=1)`."""
        result: dict[str, Any] = _post(f"{self.daemon_url}/{path.lstrip('/')}", body, timeout)
        status = result.get("status")
        if status not in (None, "OK"):
            raise ChainRpcError(path, None, str(status))
        return result

    def height(self) -> int:
        """The daemon's height (number of blocks, like the wallets' get_height once synced)."""
        return int(self.daemon_rpc("get_block_count")["count"])

    def mine(self, n: int = 1, to_address: str | None = None, *, include: Sequence[str] = ()) -> int:
        """Mine `n` blocks (generateblocks), paying the payer unless `to_address`. The new height.

        monerod sometimes leaves a just-relayed transaction out of the next block (seen in 2 of 25
        transfers): with `include`, it first waits until those txids are in its pool, and after the
        `n` blocks mines one more at a time (at most 5) until none of them is left in the pool.
        Wallets notice within a second (auto_refresh) or at `sync_wallets()`.
        """
        wanted = set(include)
        if wanted:
            _wait_for(
                f"{sorted(wanted)} in the daemon's pool",
                lambda: True if wanted <= set(self.pool_txids()) else None,
                30.0,
                interval=0.1,
            )
        self._generate(n, to_address)
        for _ in range(5):
            if not wanted & set(self.pool_txids()):
                break
            self._generate(1, to_address)
        else:
            raise RuntimeError(f"monerod would not mine {sorted(wanted & set(self.pool_txids()))}")
        return self.height()

    def _generate(self, n: int, to_address: str | None) -> None:
        self.daemon_rpc(
            "generateblocks",
            timeout=max(60.0, n * 1.0),
            amount_of_blocks=n,
            wallet_address=to_address or self.payer.address,
        )

    def pop_blocks(self, n: int = 1) -> int:
        """Pop the top `n` blocks (their transactions return to the pool). The new height."""
        return int(self.daemon_http("/pop_blocks", nblocks=n)["height"])

    def flush_txpool(self, txids: Sequence[str] | None = None) -> None:
        """Drop transactions (all when `txids` is None) from the daemon's pool."""
        params: dict[str, Any] = {} if txids is None else {"txids": list(txids)}
        self.daemon_rpc("flush_txpool", **params)

    def pool_txids(self) -> list[str]:
        result = self.daemon_http("/get_transaction_pool_hashes")
        return list(result.get("tx_hashes", []))

    def sync_wallets(self, *wallets: WalletRpc, timeout: float = 60.0) -> int:
        """Refresh the wallets (both by default) until they reach the daemon's height; that height."""
        target = self.height()
        for wallet in wallets or (self.merchant, self.payer):

            def synced(wallet: WalletRpc = wallet) -> bool | None:
                wallet.refresh()
                return True if wallet.height() >= target else None

            _wait_for(f"{wallet.name} wallet at height {target}", synced, timeout, interval=0.2)
        return target

    def wait_for_pool(self, wallet: WalletRpc, txid: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until `wallet` lists `txid` under `pool`; that entry."""

        def listed() -> dict[str, Any] | None:
            result = wallet.get_transfers(pool=True)
            for entry in result.get("pool", []):
                if entry["txid"] == txid:
                    return dict(entry)
            return None

        return _wait_for(f"{txid} in {wallet.name}'s pool", listed, timeout, interval=0.2)
