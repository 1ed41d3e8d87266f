"""A fake monero-wallet-rpc: a real JSON-RPC HTTP server on a loopback socket, for fault injection.

It answers `POST /json_rpc` with the exact shapes monero-wallet-rpc 0.18 produced on a real regtest chain
(see `tests/support/samples/` and `tests/test_support_fake_wallet.py`, which replays the captured runs
and compares the answers field by field). What it models, as observed on the real wallet:

- `get_height` is the number of blocks the wallet knows; a transfer in block `h` has
  `confirmations = height - h` (a transfer in the top block has 1).
- `get_transfers`: `min_height` is exclusive and `max_height` inclusive (only with `filter_by_height`);
  pool entries are not filtered by height; empty lists are omitted (`{}` when nothing matches);
  pool entries have `type` "pool", `height` 0, `locked` true and no `confirmations` key; `in` entries are
  listed newest first (reverse order of mining), pool entries in arrival order.
- `locked` is true until 10 confirmations and while a non-zero `unlock_time` is not reached;
  `suggested_confirmations_threshold` is ceil(amount / block reward), or more while `unlock_time` is ahead.
- Mining a pool transaction clears its `double_spend_seen` flag (the real wallet re-reads the mined tx).
- `pop_blocks` reproduces the real reorg: the wallet keeps listing the popped transfers under `in`
  (heights and confirmations unchanged, it has not seen the reorg yet). A popped transaction that the
  wallet never scanned in the pool is also listed under `pool` with the same txid and `amount` 0 (no
  `amounts`, no `suggested_confirmations_threshold`), as in samples/reorg_2; one it had scanned is not
  (wallet2 remembers scanned pool txids; checked on the real chain). The next `mine` makes the wallet
  see the new chain: popped transfers still in the daemon's pool are mined again into the first new
  block, flushed ones (`flush_pool`) vanish from `get_transfers`.
- A transaction that leaves the daemon's pool (`flush_pool`) stays listed until the wallet's next
  refresh, as wallet2 forgets pool entries only when refreshing; `drop` removes one at once.
- With `lazy_refresh=True`, mined blocks reach the wallet only at a `refresh` call (or
  `apply_refresh()`), like a wallet whose auto-refresh has not run yet (a mined transaction stays
  listed under `pool` meanwhile); pool entries always appear at once, as on the real wallet. Without
  it, `mine` refreshes the wallet at once.

Everything scriptable is thread-safe. Faults: `set_down` (the listening socket is closed, so clients get
"connection refused"; open connections are cut), `set_delay`, `set_garbage`, `set_no_wallet` (-13
"No wallet file", cleared by `open_wallet`), `fail_next`, `set_drip` (every byte of the answer, status
line included, trickles out one at a time), `set_huge_answer` (an endless or enormous body, streamed
without ever being held), `rewind` (a restored wallet resyncing from an old height: lower height, the
transfers above it not listed), and HTTP digest auth like `--rpc-login` (as in epee, a nonce is only
accepted on the connection it was issued on).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack

try:  # the `monero` test dependency builds integrated addresses offline
    from monero.address import address as parse_address
except ImportError:  # pragma: no cover
    parse_address = None

# The merchant wallet of the captured regtest run (samples/get_address_merchant.json).
MERCHANT_ADDRESS = (
    "48cdQyLdVoHhbTBqbFsts2fRPCF4GcDWcgm8UDofy7rpe2uqzK28U8tKRX8LSiRYWf3rPJRePskpS2hZ5eGx6ErKDeBYBFV"
)
# Its subaddress 0/1 (samples/create_address_subaddr.json).
MERCHANT_SUBADDRESS_1 = (
    "88nXQZ3ijccNjSoypJKsWp1xekDNQJWgRNTTpH83PsyFQkJsofJ566DJXx8FB2bT3qA1auTUchfxxjXNH57KiUg6SVPFonN"
)
# The fee of an ordinary 2-in/2-out transfer on the captured chain.
DEFAULT_FEE = 2_618_400_000
# Approximate regtest block reward (~35.18 XMR early on, decreasing); used only for
# suggested_confirmations_threshold, which the samples reproduce with this value.
BLOCK_REWARD = 35_000_000_000_000
# monero-wallet-rpc --version of the Debian 0.18 package (get_version answered this).
WALLET_RPC_VERSION = 65561

CRYPTONOTE_MAX_BLOCK_NUMBER = 500_000_000
SPENDABLE_AGE = 10  # CRYPTONOTE_DEFAULT_TX_SPENDABLE_AGE
DIFFICULTY_TARGET = 120
LOCKED_TX_ALLOWED_DELTA_SECONDS = 120

# JSON-RPC error codes and messages as monero-wallet-rpc sends them.
ERR_NO_WALLET = (-13, "No wallet file")
ERR_OPEN_FAILED = (-1, "Failed to open wallet")
ERR_TX_NOT_FOUND = (-8, "Transaction not found.")
ERR_METHOD_NOT_FOUND = (-32601, "Method not found")
ERR_PARSE = (-32700, "Parse error")
ERR_INVALID_REQUEST = (-32600, "Invalid Request")
ERR_INVALID_PARAMS = (-32602, "Invalid params")

DIGEST_REALM = "monero-rpc"
UNAUTHORIZED_BODY = (
    b"<html><head><title>Unauthorized Access</title></head><body><h1>401 Unauthorized</h1></body></html>"
)
GARBAGE_BODY = b"<html><body>502 Bad Gateway</body></html> this is not JSON {"

FailMode = Literal["error", "http_500", "disconnect", "garbage"]

# Methods a wallet-rpc without an open wallet still answers.
_NO_WALLET_OK = frozenset({"get_version", "open_wallet"})


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TxDetails(TypedDict, total=False):
    """What `add_pool` and `add_confirmed` may say about a payment beyond its id and amount; what is
    left out takes the default `FakeWallet._new_tx` states once for both."""

    unlock_time: int  # 0
    double_spend_seen: bool  # False
    subaddr_major: int  # 0
    subaddr_minor: int  # 0
    fee: int  # DEFAULT_FEE
    amounts: list[int] | None  # the outputs; None: [amount]
    address: str | None  # None: the (sub)address of subaddr_major/subaddr_minor
    timestamp: int | None  # None: now
    note: str  # ""


@dataclass
class _Tx:
    txid: str
    payment_id: str
    amount: int
    amounts: list[int]
    fee: int
    unlock_time: int
    double_spend_seen: bool
    major: int
    minor: int
    address: str
    timestamp: int
    note: str = ""
    height: int | None = None  # None while in the pool
    arrival: int = 0  # pool order
    mined_seq: int = 0  # `in` lists newest first
    daemon_pool: bool = False  # in the daemon's pool (what the next block would mine)
    seen_in_pool: bool = False  # the wallet scanned it in the pool (get_transfers pool / refresh)
    popped: bool = False  # its block was popped; the wallet has not noticed yet
    ghost: bool = False  # popped, and listed under pool too with amount 0
    ghost_timestamp: int = 0


@dataclass
class _Fault:
    mode: FailMode
    code: int
    message: str
    remaining: int


@dataclass
class _ServerHandle:
    server: _Server
    thread: threading.Thread
    abort: threading.Event = field(default_factory=threading.Event)


def _now() -> int:
    return int(time.time())


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close (no thread outlives the fake); open connections are cut first.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeWallet, abort: threading.Event) -> None:
        self.fake = fake
        self.abort = abort
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or disconnect are part of the tests, not errors.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Epee-based"
    sys_version = ""
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle_http(self)

    def do_GET(self) -> None:
        self.server.fake._handle_http(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    drip = 0.0  # set per request: seconds between the answer's bytes

    def setup(self) -> None:
        super().setup()
        self.nonces: set[str] = set()  # digest nonces issued on this connection

    def send_body(
        self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        if self.drip:
            self._drip_body(status, body, content_type)
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if not self.server.fake.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _drip_body(self, status: int, body: bytes, content_type: str) -> None:
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        self.close_connection = True
        for i, byte in enumerate(head + body):
            if i and self.server.abort.wait(self.drip):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client gave up: what a deadline is for


class FakeWallet:
    """A scriptable monero-wallet-rpc on `http://127.0.0.1:PORT/json_rpc` (see the module docstring).

    Use as a context manager or call `close()`. All state methods may be called from any thread.
    """

    def __init__(
        self,
        *,
        address: str = MERCHANT_ADDRESS,
        height: int = 200,
        user: str | None = None,
        password: str | None = None,
        filename: str = "merchant",
        wallet_password: str = "",
        keep_alive: bool = True,
        lazy_refresh: bool = False,
        no_wallet: bool = False,
        port: int = 0,
    ) -> None:
        if height < 1:
            raise ValueError("a wallet height is at least 1 (the genesis block)")
        if (user is None) != (password is None):
            raise ValueError("give both user and password for digest auth, or neither")
        self.address = address
        self.user = user
        self.password = password
        self.filename = filename
        self.wallet_password = wallet_password
        self.keep_alive = keep_alive
        self.lazy_refresh = lazy_refresh
        self.calls: Counter[str] = Counter()
        self.call_log: list[tuple[str, dict[str, Any]]] = []
        # Calls per (method, query string of the URL): clients told apart by `?node=…` in their URL.
        self.calls_by_query: Counter[tuple[str, str]] = Counter()
        self.auto_refresh_period: int | None = None

        self._lock = threading.RLock()
        self._lifecycle = threading.Lock()
        self._height = height
        self._txs: dict[str, _Tx] = {}
        self._subaddresses: dict[tuple[int, int], tuple[str, str]] = {(0, 0): (address, "Primary account")}
        self._arrival = itertools.count(1)
        self._mined = itertools.count(1)
        self._reorg_base: int | None = None  # daemon height after pop_blocks, until the wallet sees it
        self._deferred: list[list[str]] = []  # lazy_refresh: blocks mined but not refreshed yet
        self._refreshed_height = height
        self._received_since_refresh = False
        self._no_wallet = no_wallet
        self._garbage = False
        self._delays: dict[str, float] = {}
        self._drips: dict[str, float] = {}
        self._huge: tuple[int, bool] | None = None
        self._rewound: int | None = None
        self._faults: dict[str, list[_Fault]] = {}
        self._nonces: set[str] = set()
        self._closed = False

        self._handle: _ServerHandle | None = None
        self._start_server(port)
        assert self._handle is not None
        self.port: int = int(self._handle.server.server_address[1])
        self.host: str = "127.0.0.1"
        self.url: str = f"http://{self.host}:{self.port}/json_rpc"

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeWallet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server, cut open connections and join every thread. Idempotent."""
        with self._lifecycle:
            self._closed = True
            self._stop_server()

    def _start_server(self, port: int) -> None:
        abort = threading.Event()
        server = _Server(("127.0.0.1", port), self, abort)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-wallet-{port}",
            daemon=True,
        )
        thread.start()
        self._handle = _ServerHandle(server, thread, abort)

    def _stop_server(self) -> None:
        handle = self._handle
        if handle is None:
            return
        self._handle = None
        handle.abort.set()  # wakes delayed answers, which then hang up without answering
        handle.server.shutdown()
        handle.server.cut_connections()
        handle.server.server_close()  # closes the listening socket and joins the handler threads
        handle.thread.join()

    @property
    def is_down(self) -> bool:
        return self._handle is None

    def set_down(self, down: bool = True) -> None:
        """Down: the listening socket is closed (clients get ECONNREFUSED) and open connections are cut.

        Up again: a new server listens on the same port. The wallet state is kept.
        """
        with self._lifecycle:
            if self._closed:
                raise RuntimeError("the fake wallet is closed")
            if down:
                self._stop_server()
            elif self._handle is None:
                self._start_server(self.port)

    def restart(self, *, no_wallet: bool = True) -> None:
        """Like restarting monero-wallet-rpc with --wallet-dir: down, up, and no wallet open (-13)."""
        self.set_down(True)
        with self._lock:
            self._no_wallet = no_wallet
        self.set_down(False)

    # -- faults ------------------------------------------------------------------------------------

    def set_delay(self, seconds: float, method: str | None = None) -> None:
        """Answer `method` (every method if None) only after `seconds`; 0 removes the delay."""
        with self._lock:
            key = method or "*"
            if seconds > 0:
                self._delays[key] = seconds
            else:
                self._delays.pop(key, None)

    def set_drip(self, interval: float, method: str | None = None) -> None:
        """Send the answer to `method` (every method if None) one byte every `interval` seconds; 0 stops.

        The status line and headers drip too, so no single read ever waits longer than `interval`.
        """
        with self._lock:
            key = method or "*"
            if interval > 0:
                self._drips[key] = interval
            else:
                self._drips.pop(key, None)

    def set_huge_answer(self, size: int | None, *, declared: bool = False) -> None:
        """Answer every request with HTTP 200 and a JSON-looking body of `size` bytes; None stops.

        The body is generated while it is sent (the fake never holds it). `declared` sends its
        Content-Length; otherwise the body ends when the connection closes, so only counting the
        bytes as they arrive can stop a client.
        """
        with self._lock:
            self._huge = None if size is None else (size, declared)

    def rewind(self, height: int | None) -> None:
        """Act like this wallet restored with an old restore height and resyncing: until `rewind(None)`,
        `get_height` answers `height` (if below the real one) and `get_transfers` lists no transfer in
        a block at or above it. Call again with higher values to show it catching up.
        """
        with self._lock:
            self._rewound = height

    def _visible_height(self) -> int:
        rewound = self._rewound
        return self._height if rewound is None else min(self._height, rewound)

    def set_garbage(self, on: bool = True) -> None:
        """Answer every request with HTTP 200 and a body that is not JSON."""
        with self._lock:
            self._garbage = on

    def set_no_wallet(self, on: bool = True) -> None:
        """Every wallet method answers -13 "No wallet file" until `open_wallet` succeeds."""
        with self._lock:
            self._no_wallet = on

    @property
    def no_wallet(self) -> bool:
        with self._lock:
            return self._no_wallet

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        mode: FailMode = "error",
        code: int = -1,
        message: str = "Fake failure",
    ) -> None:
        """The next `times` calls of `method` ("*" for any) fail.

        Modes: "error" (JSON-RPC error `code`/`message`), "http_500", "disconnect" (the connection is
        closed without an answer), "garbage" (HTTP 200, not JSON). Calls still count in `calls`.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(mode, code, message, times))

    def clear_faults(self) -> None:
        """Forget every pending `fail_next`."""
        with self._lock:
            self._faults.clear()

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.call_log.clear()
            self.calls_by_query.clear()

    def params_of(self, method: str) -> list[dict[str, Any]]:
        """The params of every call of `method` received so far, oldest first."""
        with self._lock:
            return [copy.deepcopy(params) for name, params in self.call_log if name == method]

    # -- chain and wallet state ------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The wallet's height (what `get_height` answers)."""
        with self._lock:
            return self._height

    @property
    def daemon_height(self) -> int:
        """The daemon's height: differs from `height` after `pop_blocks` or with unrefreshed lazy blocks."""
        with self._lock:
            base = self._height if self._reorg_base is None else self._reorg_base
            return base + len(self._deferred)

    @staticmethod
    def new_txid() -> str:
        """A random 64-hex txid (what `add_pool`/`add_confirmed` use when given none)."""
        return secrets.token_hex(32)

    def _address_for(self, major: int, minor: int) -> str:
        known = self._subaddresses.get((major, minor))
        if known is not None:
            return known[0]
        if (major, minor) == (0, 1) and self.address == MERCHANT_ADDRESS:
            address = MERCHANT_SUBADDRESS_1
        else:
            digest = hashlib.sha256(f"{self.address}/{major}/{minor}".encode()).hexdigest()
            address = ("8" + digest + digest)[:95]
        self._subaddresses[(major, minor)] = (address, "")
        return address

    def _new_tx(self, txid: str | None, payment_id: str, amount: int, details: TxDetails) -> _Tx:
        txid = txid if txid is not None else self.new_txid()
        if txid in self._txs:
            raise ValueError(f"txid {txid} is already known to the fake wallet")
        fee = details.get("fee", DEFAULT_FEE)
        unlock_time = details.get("unlock_time", 0)
        if amount < 0 or fee < 0 or unlock_time < 0:
            raise ValueError("amount, fee and unlock_time are non-negative")
        major, minor = details.get("subaddr_major", 0), details.get("subaddr_minor", 0)
        amounts, address, timestamp = details.get("amounts"), details.get("address"), details.get("timestamp")
        return _Tx(
            txid=txid,
            payment_id=payment_id,
            amount=amount,
            amounts=list(amounts) if amounts is not None else [amount],
            fee=fee,
            unlock_time=unlock_time,
            double_spend_seen=details.get("double_spend_seen", False),
            major=major,
            minor=minor,
            address=address if address is not None else self._address_for(major, minor),
            timestamp=timestamp if timestamp is not None else _now(),
            note=details.get("note", ""),
            arrival=next(self._arrival),
        )

    def add_pool(
        self, txid: str | None = None, *, payment_id: str, amount: int, **details: Unpack[TxDetails]
    ) -> str:
        """A transaction paying the wallet arrives in the pool. Returns its txid.

        `details` (`TxDetails`): `amounts` lists the outputs (default `[amount]`); `address` defaults to
        the (sub)address of `subaddr_major/subaddr_minor`. A subaddress payment really carries payment
        id "0000000000000000".
        """
        with self._lock:
            tx = self._new_tx(txid, payment_id, amount, details)
            tx.daemon_pool = True
            self._txs[tx.txid] = tx
            return tx.txid

    def add_confirmed(
        self,
        txid: str | None = None,
        *,
        payment_id: str,
        amount: int,
        confirmations: int = 1,
        height: int | None = None,
        **details: Unpack[TxDetails],
    ) -> str:
        """A transaction already in block `height` (default: the block giving `confirmations`).

        The wallet height does not move, and the wallet never saw it in the pool. Returns the txid.
        """
        with self._lock:
            block = height if height is not None else self._height - confirmations
            if not 0 < block < self._height:
                raise ValueError(f"block {block} is not below the wallet height {self._height}")
            tx = self._new_tx(txid, payment_id, amount, details)
            tx.height = block
            tx.mined_seq = next(self._mined)
            self._txs[tx.txid] = tx
            self._received_since_refresh = True
            return tx.txid

    def mine(self, n: int = 1, *, txids: Iterable[str] | None = None) -> int:
        """Mine `n` blocks; the daemon's pool transactions (only `txids` if given) go into the first one.

        Returns the height of the first new block (the height the mined transfers get). Unless
        `lazy_refresh`, the wallet refreshes at once (see `apply_refresh`). Mining clears
        `double_spend_seen` of the mined transactions, as on the real wallet. After `pop_blocks`, this is
        when the wallet sees the new chain.
        """
        if n < 1:
            raise ValueError("mine at least one block")
        with self._lock:
            wanted = set(txids) if txids is not None else None
            deferred = self._deferred_txids()
            in_pool = sorted(
                (tx for tx in self._txs.values() if tx.daemon_pool and tx.txid not in deferred),
                key=lambda tx: tx.arrival,
            )
            first = [tx.txid for tx in in_pool if wanted is None or tx.txid in wanted]
            first_height = self.daemon_height
            self._deferred.extend([first] + [[] for _ in range(n - 1)])
            if not self.lazy_refresh:
                self.apply_refresh()
            return first_height

    def apply_refresh(self) -> int:
        """What a wallet refresh does (the `refresh` RPC runs this): returns the blocks fetched.

        The wallet takes the blocks mined since its last refresh (resolving a pending `pop_blocks`),
        forgets pool entries whose transaction left the daemon's pool without being mined, and scans
        the pool (so those transactions will not come back as amount-0 entries after a reorg).
        """
        with self._lock:
            blocks, self._deferred = self._deferred, []
            if blocks:
                self._apply_blocks(blocks)
            for tx in list(self._txs.values()):
                if tx.height is None and not tx.daemon_pool:
                    del self._txs[tx.txid]  # flushed or dropped by the daemon, never mined
                    continue
                if tx.ghost and not tx.daemon_pool:
                    tx.ghost = False
                if tx.height is None:
                    tx.seen_in_pool = True
            return len(blocks)

    def _deferred_txids(self) -> set[str]:
        return {txid for block in self._deferred for txid in block}

    def _apply_blocks(self, blocks: list[list[str]]) -> None:
        remined = {txid for block in blocks for txid in block}
        if self._reorg_base is not None:  # the wallet detaches the popped blocks
            self._height = self._reorg_base
            self._reorg_base = None
            for tx in list(self._txs.values()):
                if not tx.popped or tx.txid in remined:
                    continue
                if tx.daemon_pool:  # back to an ordinary pool transaction
                    tx.popped = tx.ghost = False
                    tx.height = None
                    tx.timestamp = tx.ghost_timestamp
                else:  # popped and flushed: it vanishes
                    del self._txs[tx.txid]
        now = _now()
        for block in blocks:
            for txid in block:
                mined = self._txs.get(txid)
                if mined is None:  # dropped meanwhile
                    continue
                tx = mined
                tx.height = self._height
                tx.daemon_pool = tx.popped = tx.ghost = False
                tx.double_spend_seen = False
                tx.timestamp = now
                tx.mined_seq = next(self._mined)
                self._received_since_refresh = True
            self._height += 1

    def pop_blocks(self, n: int = 1, *, pool_entry: bool | None = None) -> None:
        """The daemon pops its top `n` blocks (monerod `/pop_blocks`); their txs go back to its pool.

        As on the real wallet, until the next `mine` the wallet still lists the popped transfers under
        `in` (same height, confirmations unchanged: it has not seen the reorg). If the wallet never saw
        a transaction in the pool (it was mined before any `get_transfers` with `pool` or `refresh`, or
        was added with `add_confirmed`), the wallet also lists a `pool` entry with the same txid and
        `amount` 0 (samples reorg_2); a transaction it had seen in the pool gets no such entry (wallet2
        remembers scanned pool txids). `pool_entry` forces either behaviour.

        Then `flush_pool` takes them out of the daemon's pool (they vanish at the next `mine`), or
        `mine` directly mines them again into the first new block.
        """
        if n < 1:
            raise ValueError("pop at least one block")
        with self._lock:
            while n and self._deferred:  # lazy: blocks the wallet never saw go first; their txs
                for txid in self._deferred.pop():  # are still listed as pool, and back in the daemon pool
                    if txid in self._txs:
                        self._txs[txid].daemon_pool = True
                n -= 1
            if not n:
                return
            base = (self._height if self._reorg_base is None else self._reorg_base) - n
            if base < 1:
                raise ValueError("cannot pop the genesis block")
            self._reorg_base = base
            now = _now()
            for tx in self._txs.values():
                if tx.height is not None and tx.height >= base and not tx.popped:
                    tx.popped = True
                    tx.daemon_pool = True
                    tx.ghost = pool_entry if pool_entry is not None else not tx.seen_in_pool
                    tx.ghost_timestamp = now

    def flush_pool(self, txids: Iterable[str] | None = None) -> None:
        """The daemon's `flush_txpool`: transactions (all, or `txids`) leave the daemon's pool.

        As on the real wallet, the wallet keeps listing their pool entries until its next refresh
        (`refresh` RPC, `apply_refresh`, or `mine` unless `lazy_refresh`); popped transfers flushed
        this way vanish when the wallet sees the new chain. Use `drop` to remove a transfer at once.
        """
        with self._lock:
            wanted = set(txids) if txids is not None else None
            for tx in self._txs.values():
                if wanted is None or tx.txid in wanted:
                    tx.daemon_pool = False

    def drop(self, txid: str) -> None:
        """The transaction is gone from both lists at once (e.g. a double spend won, or a wallet rescan)."""
        with self._lock:
            if self._txs.pop(txid, None) is None:
                raise KeyError(txid)
            for block in self._deferred:
                if txid in block:
                    block.remove(txid)

    def flag_double_spend(self, txid: str, flag: bool = True) -> None:
        """Set `double_spend_seen` (the real wallet shows it on pool entries; any entry here)."""
        with self._lock:
            self._txs[txid].double_spend_seen = flag

    def set_unlock_time(self, txid: str, unlock_time: int) -> None:
        with self._lock:
            self._txs[txid].unlock_time = unlock_time

    def known_txids(self) -> list[str]:
        with self._lock:
            return list(self._txs)

    # -- rendering ---------------------------------------------------------------------------------

    def _threshold(self, tx: _Tx) -> int:
        threshold = (tx.amount + BLOCK_REWARD - 1) // BLOCK_REWARD if BLOCK_REWARD else 0
        if tx.unlock_time < CRYPTONOTE_MAX_BLOCK_NUMBER:
            if tx.unlock_time > self._height:
                threshold = max(threshold, tx.unlock_time - self._height)
        else:
            now = _now()
            if tx.unlock_time > now:
                blocks = (tx.unlock_time - now + DIFFICULTY_TARGET - 1) // DIFFICULTY_TARGET
                threshold = max(threshold, blocks)
        return threshold

    def _unlocked(self, tx: _Tx) -> bool:
        assert tx.height is not None
        if tx.unlock_time < CRYPTONOTE_MAX_BLOCK_NUMBER:
            if self._height < tx.unlock_time:  # height - 1 + CRYPTONOTE_LOCKED_TX_ALLOWED_DELTA_BLOCKS
                return False
        elif _now() + LOCKED_TX_ALLOWED_DELTA_SECONDS < tx.unlock_time:
            return False
        return tx.height + SPENDABLE_AGE <= self._height

    def _entry(self, tx: _Tx, kind: Literal["in", "pool", "ghost"]) -> dict[str, Any]:
        index = {"major": tx.major, "minor": tx.minor}
        entry: dict[str, Any] = {"address": tx.address}
        if kind == "ghost":
            entry["amount"] = 0
        else:
            entry["amount"] = tx.amount
            if tx.amounts:
                entry["amounts"] = list(tx.amounts)
        if kind == "in":
            assert tx.height is not None
            top = self._visible_height()
            entry["confirmations"] = top - tx.height if top > tx.height else 0
        entry["double_spend_seen"] = tx.double_spend_seen if kind != "ghost" else False
        entry["fee"] = tx.fee
        entry["height"] = tx.height if kind == "in" else 0
        entry["locked"] = (not self._unlocked(tx)) if kind == "in" else True
        entry["note"] = tx.note
        entry["payment_id"] = tx.payment_id
        entry["subaddr_index"] = dict(index)
        entry["subaddr_indices"] = [dict(index)]
        if kind != "ghost":
            threshold = self._threshold(tx)
            if threshold:
                entry["suggested_confirmations_threshold"] = threshold
        entry["timestamp"] = tx.ghost_timestamp if kind == "ghost" else tx.timestamp
        entry["txid"] = tx.txid
        entry["type"] = "in" if kind == "in" else "pool"
        entry["unlock_time"] = tx.unlock_time
        return entry

    def _listed(self) -> tuple[list[_Tx], list[tuple[_Tx, Literal["pool", "ghost"]]]]:
        confirmed = [tx for tx in self._txs.values() if tx.height is not None]
        confirmed.sort(key=lambda t: -t.mined_seq)
        pool: list[tuple[_Tx, Literal["pool", "ghost"]]] = []
        for tx in sorted(self._txs.values(), key=lambda t: t.arrival):
            if tx.height is None:
                pool.append((tx, "pool"))
            elif tx.ghost:
                pool.append((tx, "ghost"))
        # Ghost entries arrive in the wallet's pool list when they re-enter the pool, after older ones.
        pool.sort(key=lambda item: (item[1] == "ghost", item[0].arrival))
        return confirmed, pool

    # -- JSON-RPC methods --------------------------------------------------------------------------

    def get_transfers(self, **params: Any) -> dict[str, Any]:
        """What `get_transfers` answers for `params` (same code path as the RPC, no faults).

        Like the RPC, a query with `pool` marks the listed pool transactions as scanned by the wallet
        (see `pop_blocks`).
        """
        return self._rpc_get_transfers(params)

    @staticmethod
    def _param(params: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = params.get(name, default)
        if value is default:
            return value
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RpcError(*ERR_INVALID_PARAMS)
        return value

    def _int_param(self, params: dict[str, Any], name: str, default: int) -> int:
        value = params.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RpcError(*ERR_INVALID_PARAMS)
        return value

    def _rpc_get_transfers(self, params: dict[str, Any]) -> dict[str, Any]:
        want_in = self._param(params, "in", bool, False)
        want_pool = self._param(params, "pool", bool, False)
        for ignored in ("out", "pending", "failed", "all_accounts"):
            self._param(params, ignored, bool, False)
        filter_by_height = self._param(params, "filter_by_height", bool, False)
        min_height = self._int_param(params, "min_height", 0)
        max_height = self._int_param(params, "max_height", CRYPTONOTE_MAX_BLOCK_NUMBER)
        account = self._int_param(params, "account_index", 0)
        subaddrs = self._param(params, "subaddr_indices", list, [])
        if any(isinstance(i, bool) or not isinstance(i, int) for i in subaddrs):
            raise RpcError(*ERR_INVALID_PARAMS)
        all_accounts = bool(params.get("all_accounts", False))
        if not filter_by_height:
            min_height, max_height = 0, CRYPTONOTE_MAX_BLOCK_NUMBER
        max_height = min(max_height, CRYPTONOTE_MAX_BLOCK_NUMBER)

        def mine(tx: _Tx) -> bool:
            if all_accounts:
                return True
            return tx.major == account and (not subaddrs or tx.minor in subaddrs)

        result: dict[str, Any] = {}
        with self._lock:
            confirmed, pool = self._listed()
            if want_in:
                entries = [
                    self._entry(tx, "in")
                    for tx in confirmed
                    if mine(tx)
                    and tx.height is not None
                    and min_height < tx.height <= max_height
                    and tx.height < self._visible_height()
                ]
                if entries:
                    result["in"] = entries
            if want_pool:
                for tx, kind in pool:  # wallet2 scans the daemon's pool for every such call
                    if kind == "pool" and tx.daemon_pool:
                        tx.seen_in_pool = True
                pool_entries = [self._entry(tx, kind) for tx, kind in pool if mine(tx)]
                if pool_entries:
                    result["pool"] = pool_entries
        return result

    def _rpc_get_transfer_by_txid(self, params: dict[str, Any]) -> dict[str, Any]:
        txid = self._param(params, "txid", str, "")
        try:
            raw = bytes.fromhex(txid)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise RpcError(-8, f"Transaction ID has invalid size: {txid}")
        with self._lock:
            tx = self._txs.get(txid.lower())
            if tx is None:
                raise RpcError(*ERR_TX_NOT_FOUND)
            entries = []
            if tx.height is not None:
                entries.append(self._entry(tx, "in"))
                if tx.ghost:
                    entries.append(self._entry(tx, "ghost"))
            else:
                entries.append(self._entry(tx, "pool"))
        return {"transfer": entries[0], "transfers": entries}

    def _rpc_get_height(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"height": self._visible_height()}

    def _rpc_get_address(self, params: dict[str, Any]) -> dict[str, Any]:
        account = self._int_param(params, "account_index", 0)
        wanted = self._param(params, "address_index", list, [])
        with self._lock:
            rows = []
            for (major, minor), (address, label) in sorted(self._subaddresses.items()):
                if major != account or (wanted and minor not in wanted):
                    continue
                used = any(
                    (tx.major, tx.minor) == (major, minor) and tx.height is not None
                    for tx in self._txs.values()
                )
                rows.append({"address": address, "address_index": minor, "label": label, "used": used})
            if not rows and account != 0:
                raise RpcError(-14, "account index is out of bound")
            primary = self._subaddresses.get((account, 0), (self.address, ""))[0]
        return {"address": primary, "addresses": rows}

    def _rpc_refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.apply_refresh()
            fetched = max(self._height - self._refreshed_height, 0)
            self._refreshed_height = self._height
            received, self._received_since_refresh = self._received_since_refresh, False
        return {"blocks_fetched": fetched, "received_money": received}

    def _rpc_auto_refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        enable = self._param(params, "enable", bool, True)
        period = self._int_param(params, "period", 0)
        with self._lock:
            self.auto_refresh_period = (period or 20) if enable else None
        return {}

    def _rpc_open_wallet(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = self._param(params, "filename", str, "")
        password = self._param(params, "password", str, "")
        if filename != self.filename or password != self.wallet_password:
            raise RpcError(*ERR_OPEN_FAILED)
        with self._lock:
            self._no_wallet = False
        return {}

    def _rpc_close_wallet(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._no_wallet = True
        return {}

    def _rpc_store(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _rpc_get_version(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"release": False, "version": WALLET_RPC_VERSION}

    def _rpc_make_integrated_address(self, params: dict[str, Any]) -> dict[str, Any]:
        payment_id = self._param(params, "payment_id", str, "") or secrets.token_hex(8)
        if len(payment_id) != 16 or any(c not in "0123456789abcdefABCDEF" for c in payment_id):
            raise RpcError(-5, "Invalid payment ID")
        if parse_address is None:  # pragma: no cover - the test extra installs it
            raise RpcError(-32601, "make_integrated_address needs the `monero` package")
        integrated = parse_address(self.address).with_payment_id(payment_id.lower())
        return {"integrated_address": str(integrated), "payment_id": payment_id.lower()}

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "get_version": self._rpc_get_version,
            "get_height": self._rpc_get_height,
            "get_address": self._rpc_get_address,
            "refresh": self._rpc_refresh,
            "auto_refresh": self._rpc_auto_refresh,
            "get_transfers": self._rpc_get_transfers,
            "get_transfer_by_txid": self._rpc_get_transfer_by_txid,
            "open_wallet": self._rpc_open_wallet,
            "close_wallet": self._rpc_close_wallet,
            "store": self._rpc_store,
            "make_integrated_address": self._rpc_make_integrated_address,
        }

    def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one JSON-RPC method as the server would (no faults, no counting). Raises `RpcError`."""
        handler = self._methods().get(method)
        if handler is None:
            raise RpcError(*ERR_METHOD_NOT_FOUND)
        if method not in _NO_WALLET_OK and self.no_wallet:
            raise RpcError(*ERR_NO_WALLET)
        return handler(params)

    # -- HTTP --------------------------------------------------------------------------------------

    def _handle_http(self, h: _Handler) -> None:  # noqa: PLR0911 - one branch per HTTP outcome
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        if self.user is not None and not self._authorized(h):
            self._challenge(h)
            return
        path = h.path.split("?", 1)[0]
        if path != "/json_rpc":
            h.send_body(404, b"", "text/plain")
            return
        if h.command != "POST":
            self._send_rpc(h, 0, error=ERR_INVALID_REQUEST)
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._send_rpc(h, 0, error=ERR_PARSE)
            return
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            self._send_rpc(h, 0, error=ERR_INVALID_REQUEST)
            return
        rid = request.get("id", 0)
        method: str = request["method"]
        params = request.get("params")
        if params is None or params == []:
            params = {}

        with self._lock:
            self.calls[method] += 1
            self.calls_by_query[(method, h.path.partition("?")[2])] += 1
            self.call_log.append((method, copy.deepcopy(params) if isinstance(params, dict) else {}))
            garbage = self._garbage
            delay = self._delays.get(method, self._delays.get("*", 0.0))
            drip = self._drips.get(method, self._drips.get("*", 0.0))
            huge = self._huge
            fault = self._take_fault(method)

        if delay and h.server.abort.wait(delay):
            h.close_connection = True  # the server went down meanwhile: hang up without an answer
            return
        if huge is not None:
            self._send_huge(h, rid, *huge)
            return
        h.drip = drip
        if fault is not None:
            if fault.mode == "disconnect":
                h.close_connection = True
                return
            if fault.mode == "http_500":
                h.send_body(500, b"Internal Server Error", "text/plain")
                return
            if fault.mode == "garbage":
                garbage = True
            else:
                self._send_rpc(h, rid, error=(fault.code, fault.message))
                return
        if garbage:
            h.send_body(200, GARBAGE_BODY, "text/html")
            return
        if not isinstance(params, dict):
            self._send_rpc(h, rid, error=ERR_INVALID_PARAMS)
            return
        try:
            result = self.dispatch(method, params)
        except RpcError as exc:
            self._send_rpc(h, rid, error=(exc.code, exc.message))
            return
        self._send_rpc(h, rid, result=result)

    @staticmethod
    def _send_huge(h: _Handler, rid: Any, size: int, declared: bool) -> None:
        head = f'{{"id": {json.dumps(rid)}, "jsonrpc": "2.0", "result": {{"pad": "'.encode()
        tail = b'"}}'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if declared:
            h.send_header("Content-Length", str(size))
        h.send_header("Connection", "close")
        h.close_connection = True
        h.end_headers()
        chunk = b"x" * 65536
        try:
            h.wfile.write(head)
            left = size - len(head) - len(tail)
            while left > 0 and not h.server.abort.is_set():
                piece = chunk if left >= len(chunk) else chunk[:left]
                h.wfile.write(piece)
                left -= len(piece)
            h.wfile.write(tail)
            h.wfile.flush()
        except OSError:
            return  # the client stopped reading at its cap and hung up

    def _take_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
                return fault
        return None

    @staticmethod
    def _send_rpc(
        h: _Handler,
        rid: Any,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[int, str] | None = None,
    ) -> None:
        answer: dict[str, Any]
        if error is not None:
            answer = {"error": {"code": error[0], "message": error[1]}, "id": rid, "jsonrpc": "2.0"}
        else:
            answer = {"id": rid, "jsonrpc": "2.0", "result": result if result is not None else {}}
        h.send_body(200, json.dumps(answer, indent=2).encode(), "application/json")

    # -- digest auth (server side of RFC 2617, MD5 and MD5-sess, qop=auth, as epee does) -----------

    def _challenge(self, h: _Handler) -> None:
        nonce = base64.b64encode(secrets.token_bytes(16)).decode()
        with self._lock:
            if len(self._nonces) > 10_000:
                self._nonces.clear()
            self._nonces.add(nonce)
        h.nonces.add(nonce)
        headers = [
            (
                "WWW-authenticate",
                f'Digest qop="auth",algorithm={algorithm},realm="{DIGEST_REALM}",nonce="{nonce}",stale=false',
            )
            for algorithm in ("MD5", "MD5-sess")
        ]
        h.send_body(401, UNAUTHORIZED_BODY, "text/html", headers)

    def _authorized(self, h: _Handler) -> bool:  # noqa: PLR0911 - one branch per RFC 2617 check
        assert self.user is not None and self.password is not None
        header = h.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(rest))
        nonce = fields.get("nonce", "")
        with self._lock:
            # Like epee: a nonce is only good on the connection it was issued on.
            if nonce not in self._nonces or nonce not in h.nonces:
                return False
        if fields.get("username") != self.user or fields.get("realm") != DIGEST_REALM:
            return False
        uri = fields.get("uri", "")
        if uri != h.path:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        algorithm = fields.get("algorithm", "MD5").upper()
        ha1 = md5(f"{self.user}:{DIGEST_REALM}:{self.password}")
        cnonce = fields.get("cnonce", "")
        if algorithm == "MD5-SESS":
            ha1 = md5(f"{ha1}:{nonce}:{cnonce}")
        elif algorithm != "MD5":
            return False
        ha2 = md5(f"{h.command}:{uri}")
        qop = fields.get("qop")
        if qop == "auth":
            expected = md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{cnonce}:auth:{ha2}")
        elif qop is None:
            expected = md5(f"{ha1}:{nonce}:{ha2}")
        else:
            return False
        return hmac.compare_digest(expected, fields.get("response", ""))
