"""The real daemon as a child process: `python -m anon_ticket` in a temporary folder, for black-box tests.

`DaemonProcess` starts it with a clean environment (nothing inherited from the developer's shell can
change what is tested), on free loopback ports, with its standard output and error captured to a log
file that survives restarts (each start appends). It can be stopped gracefully (SIGTERM), killed
(SIGKILL) and started again on the same ports and database, and it talks to both listeners, including
over Unix sockets.

    with FakeWallet() as wallet, DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        pid, token = claim_token(daemon, wallet, amount=daemon.min_payment_amount)
        daemon.internal("GET", f"/api/v1/token/{token}")

Every wait polls with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests

from anon_ticket.core.domain import PaymentId
from anon_ticket.demo.ports import free_ports, unused_udp_port
from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECS = 30.0
STOP_TIMEOUT_SECS = 20.0
DEFAULT_MIN_PAYMENT_AMOUNT = 1_000_000
DEFAULT_CONFIRMATIONS = 2

# Variables the daemon reads (docs/PROTOCOL.md §6 and our extras): never inherited from the caller's shell.
_OWN_PREFIXES = (
    "DATABASE_URL",
    "API_",
    "INTERNAL_",
    "MONERO_",
    "MONITOR_",
    "MIN_PAYMENT_AMOUNT",
    "STATSD_",
    "LOG_",
    "PUBLIC_THREADS",
    "HTTP_",
    "PROXY_PROTOCOL",
    "ABUSE_",
    "PID_SCREEN",
    "ACTOR_",
    "SUPERVISOR_",
    "ANON_TICKET_",
    "ACCESS_",
    "PRIVACY_PASS",
    "NOTIFY_SOCKET",  # systemd's: a test runner started by systemd must not notify on the daemon's behalf
    "WATCHDOG_",
)

T = TypeVar("T")


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, with the standard library only."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def unix_request(
    path: Path,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request over a Unix socket: (status, lower-cased headers, body)."""
    conn = UnixConnection(path, timeout)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class DaemonProcess:
    """`python -m anon_ticket [args]` in `workdir`, on its own ports, logging to `log_path`.

    `env` overrides the defaults below; a value of None removes the variable (e.g. to test the
    generated internal token, pass nothing: INTERNAL_API_TOKEN is unset by default). The ports are
    chosen once, so a restarted daemon answers on the same URLs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        wallet_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
        python: Path | None = None,
        nofile: int | None = None,
        module: str = "anon_ticket",
    ) -> None:
        """`python`: another interpreter (an installed release's venv), run without this checkout on
        PYTHONPATH; by default this test run's interpreter with the checkout first on PYTHONPATH.
        `module`: what `python -m` runs (a test's deliberately broken copy of the daemon, e.g.
        tests/support/unsynced_claims.py); the daemon itself by default."""
        self.module = module
        self.workdir = Path(workdir)
        self.python = str(python) if python is not None else sys.executable
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) of the child, to test descriptor exhaustion
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.log_path = log_path or self.workdir / "daemon.log"
        public_port, internal_port = free_ports(2)
        defaults: dict[str, str] = {
            "DATABASE_URL": "sqlite:///anon_ticket.db",
            "API_BIND_ADDRESS": f"127.0.0.1:{public_port}",
            "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal_port}",
            "MONERO_RPC_URL": wallet_url or f"http://127.0.0.1:{free_ports(1)[0]}/json_rpc",
            "MONERO_RPC_TIMEOUT_SECS": "2",
            "MONITOR_POLL_INTERVAL_SECS": "0.2",
            "MONITOR_MIN_CONFIRMATIONS": str(DEFAULT_CONFIRMATIONS),
            "MIN_PAYMENT_AMOUNT": str(DEFAULT_MIN_PAYMENT_AMOUNT),
            "STATSD_PORT": str(unused_udp_port()),
            "LOG_LEVEL": "INFO",
        }
        for name, value in (env or {}).items():
            if value is None:
                defaults.pop(name, None)
            else:
                defaults[name] = value
        self.settings = defaults
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        if python is None:
            python_path = [str(REPO_ROOT), *filter(None, [base.get("PYTHONPATH")])]
            self.env = {**base, **defaults, "PYTHONPATH": os.pathsep.join(python_path)}
        else:
            self.env = {k: v for k, v in {**base, **defaults}.items() if k != "PYTHONPATH"}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- where it listens ------------------------------------------------------------------------

    @staticmethod
    def _port(address: str) -> int:
        return int(address.rpartition(":")[2])

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self._port(self.settings['API_BIND_ADDRESS'])}"

    @property
    def internal_socket(self) -> Path | None:
        value = self.settings.get("INTERNAL_UNIX_SOCKET")
        return self._resolve(value) if value else None

    @property
    def internal_url(self) -> str:
        """The internal listener's TCP URL (meaningless when INTERNAL_UNIX_SOCKET is set)."""
        return f"http://127.0.0.1:{self._port(self.settings['INTERNAL_BIND_ADDRESS'])}"

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.workdir / path

    @property
    def database_path(self) -> Path:
        url = self.settings["DATABASE_URL"]
        assert url.startswith("sqlite:///"), "only SQLite databases have a path"
        return self._resolve(url[len("sqlite:///") :])

    @property
    def token_file(self) -> Path:
        """Where the daemon generates the internal API token when INTERNAL_API_TOKEN is unset."""
        return self.database_path.with_name("internal_api_token")

    @property
    def api_token(self) -> str:
        configured = self.settings.get("INTERNAL_API_TOKEN")
        return configured if configured else self.token_file.read_text(encoding="ascii").strip()

    @property
    def min_payment_amount(self) -> int:
        return int(self.settings["MIN_PAYMENT_AMOUNT"])

    @property
    def confirmations(self) -> int:
        return int(self.settings["MONITOR_MIN_CONFIRMATIONS"])

    # -- lifecycle -------------------------------------------------------------------------------

    def command(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`python -m anon_ticket ARGS` (an operator's command: migrate, rescan, backup …) with this
        daemon's interpreter, environment and folder, to completion; its exit code is the caller's."""
        return subprocess.run(
            [self.python, "-m", "anon_ticket", *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *, wait: bool = True, timeout: float = READY_TIMEOUT_SECS) -> DaemonProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            log.write(
                f"--- start {self.starts + 1}: python -m {self.module} {' '.join(self.args)}\n".encode()
            )
            log.flush()
            self.process = subprocess.Popen(
                [self.python, "-m", self.module, *self.args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Only setrlimit runs between fork and exec, which is safe with threads around.
                preexec_fn=self._limit_descriptors if self.nofile is not None else None,  # noqa: PLW1509
            )
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def _limit_descriptors(self) -> None:
        """Runs in the child between fork and exec."""
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> tuple[int, Any] | None:
        """(status, JSON) of GET /healthz on the internal listener, or None if it does not answer."""
        try:
            if self.internal_socket is not None:
                status, _, body = unix_request(self.internal_socket, "GET", "/healthz", timeout=2)
                return status, json.loads(body)
            with requests.get(self.internal_url + "/healthz", timeout=2) as response:
                return response.status_code, response.json()
        except (OSError, requests.RequestException, ValueError, http.client.HTTPException):
            return None

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECS) -> None:
        """Until /healthz answers 200; fails at once (with the log) if the process exits meanwhile."""

        def ready() -> bool | None:
            if not self.running:
                raise AssertionError(
                    f"the daemon exited with {self.returncode} before it was ready:\n{self.log_tail()}"
                )
            answer = self.health()
            return True if answer is not None and answer[0] == 200 else None

        try:
            wait_for("the daemon's /healthz", ready, timeout)
        except AssertionError:
            if self.running:
                self.kill()
            raise

    def wait_exit(self, timeout: float = STOP_TIMEOUT_SECS) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout}s:\n{self.log_tail()}") from None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_SECS) -> int:
        """SIGTERM and wait (SIGKILL if it hangs, and fail); returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"SIGTERM did not stop the daemon:\n{self.log_tail()}") from None
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL: a crash, with no chance to flush anything."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(STOP_TIMEOUT_SECS)

    def __enter__(self) -> DaemonProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self.kill()

    # -- log -------------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        wait_for(f"{text!r} in the log", lambda: True if text in self.log_text() else None, timeout)

    # -- requests --------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    def internal(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """A request to the internal listener over TCP; the body is read, the connection released."""
        headers = {**(self.auth_headers() if auth else {}), **kwargs.pop("headers", {})}
        with requests.request(
            method, self.internal_url + path, headers=headers, timeout=10, **kwargs
        ) as response:
            _ = response.content
            return response

    def public(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        with requests.request(method, self.public_url + path, timeout=10, **kwargs) as response:
            _ = response.content
            return response

    def redeem(self, pid: PaymentId | str) -> requests.Response:
        text = pid.hex() if isinstance(pid, PaymentId) else pid
        return self.public("POST", "/api/v1/redeem", json={"pid": text})

    def status(self) -> dict[str, Any]:
        """GET /api/v1/status, over the Unix socket when the internal listener has one."""
        if self.internal_socket is not None:
            code, _, raw = unix_request(
                self.internal_socket, "GET", "/api/v1/status", headers=self.auth_headers()
            )
            assert code == 200, raw
            body: dict[str, Any] = json.loads(raw)
            return body
        response = self.internal("GET", "/api/v1/status")
        assert response.status_code == 200, response.text
        body = response.json()
        return body

    def wait_scanning(self, timeout: float = 15.0) -> dict[str, Any]:
        """Until the wallet poller has fixed its scan start (payments made later are then seen)."""

        def scanning() -> dict[str, Any] | None:
            status = self.status()
            return status if status["scan_cursor"] is not None else None

        return wait_for("the first wallet poll", scanning, timeout)


def pay(wallet: Any, pid: PaymentId, amount: int, confirmations: int) -> str:
    """A transfer to `pid`'s integrated address, mined and buried under `confirmations` blocks.

    `wallet` is a `tests.support.fake_wallet.FakeWallet`. With `confirmations` 0 it stays in the pool.
    """
    txid: str = wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=amount)
    if confirmations > 0:
        wallet.mine(confirmations, txids=[txid])
    return txid


def redeem_until(
    daemon: DaemonProcess, pid: PaymentId, status: int = 200, timeout: float = 15.0
) -> requests.Response:
    """Redeem until the answer has `status` (the poller needs a moment to see a new transfer)."""
    last: list[requests.Response] = []

    def attempt() -> requests.Response | None:
        response = daemon.redeem(pid)
        last[:] = [response]
        return response if response.status_code == status else None

    try:
        return wait_for(f"redeem to answer {status}", attempt, timeout, 0.05)
    except AssertionError as exc:
        seen = f"{last[0].status_code} {last[0].text}" if last else "nothing"
        raise AssertionError(f"{exc}; last answer: {seen}") from None


def claim_token(daemon: DaemonProcess, wallet: Any, amount: int | None = None) -> tuple[PaymentId, str]:
    """A fresh paid and redeemed PID and its service token (hex)."""
    daemon.wait_scanning()
    pid = PaymentId.generate()
    pay(wallet, pid, daemon.min_payment_amount if amount is None else amount, daemon.confirmations)
    response = redeem_until(daemon, pid, 200)
    body = response.json()
    assert body["status"] == "claimed", body
    return pid, str(body["token"])


@contextlib.contextmanager
def running_daemon(workdir: Path, **kwargs: Any) -> Iterator[DaemonProcess]:
    """A started, ready daemon that is stopped (or killed) afterwards."""
    daemon = DaemonProcess(workdir, **kwargs)
    with daemon:
        yield daemon
