"""The shop of the demo: `python -m anon_ticket serve` on SQLite against the chain's view-only wallet.

It runs as a child process exactly as an operator runs it, with an environment of its own: nothing
from the caller's shell (an operator's DATABASE_URL, say) can point the demo at real data. Both
listeners are on loopback ports chosen here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import requests

from anon_ticket.demo import processes, waiting
from anon_ticket.demo.chain import RegtestChain
from anon_ticket.demo.ports import free_ports, unused_udp_port

ATOMIC_PER_XMR = 10**12
READY_TIMEOUT = 60.0
STOP_GRACE = 15.0
# Passed on so that the daemon runs the same Python, from the same checkout or install, as the demo.
_INHERITED = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


class DemoShop:
    """The daemon process: `spawn()` it, then `wait_selling()` until its buyer's page can sell."""

    def __init__(self, folder: Path, chain: RegtestChain, *, price: Decimal, confirmations: int) -> None:
        self.folder = folder / "shop"
        self.folder.mkdir(mode=0o700)
        public_port, internal_port = free_ports(2)
        self.public_url = f"http://127.0.0.1:{public_port}"
        self.internal_url = f"http://127.0.0.1:{internal_port}"
        self.token_file = self.folder / "internal_api_token"
        self.log = folder / "anon_ticket.log"
        self.env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.folder / 'anon_ticket.db'}",
                "API_BIND_ADDRESS": f"127.0.0.1:{public_port}",
                "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal_port}",
                "MONERO_RPC_URL": chain.merchant.url,
                "MONERO_RPC_TIMEOUT_SECS": "10",
                "MONITOR_POLL_INTERVAL_SECS": "1",
                "MONITOR_MIN_CONFIRMATIONS": str(confirmations),
                "MIN_PAYMENT_AMOUNT": str(int(price * ATOMIC_PER_XMR)),
                "STATSD_HOST": "127.0.0.1",
                "STATSD_PORT": str(unused_udp_port()),
                # One person clicking around may redeem more often than a shop would allow a stranger.
                "ABUSE_PID_PER_MINUTE": "600",
                "NODE_NAME": "demo",
            }
        )
        self.popen: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the daemon (it serves at once, and sells once it has read the wallet)."""
        self.popen = processes.spawn(
            [sys.executable, "-m", "anon_ticket", "serve"], self.log, env=self.env, die_with_parent=True
        )

    def wait_selling(self) -> None:
        """Until `/api/v1/info` answers 200: the daemon knows the wallet's address, the page can sell."""

        def selling() -> bool | None:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(
                    f"the daemon exited with {self.popen.returncode}; its log: {self.log}\n{self.tail()}"
                )
            with requests.Session() as session:
                session.trust_env = False  # never through a proxy from the environment
                answer = session.get(f"{self.public_url}/api/v1/info", timeout=2)
            return True if answer.status_code == 200 else None

        waiting.wait_for(
            "the daemon selling", selling, READY_TIMEOUT, 0.2, tolerate=(requests.RequestException,)
        )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def token(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (the daemon finishes in-flight requests and exits 0), SIGKILL after a grace."""
        processes.stop_all([self.popen], STOP_GRACE)
