"""The daemon's real actors on a real database against a wallet URL, without HTTP listeners.

Polls are driven by the test (`poll()`), not by the clock: the poller's interval is an hour, so after
its first automatic poll at start nothing happens unless the test asks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from anon_ticket.actors.locator import wait
from anon_ticket.actors.storage_writer import StorageWriterProxy
from anon_ticket.actors.wallet_poller import PollReport, WalletPollerProxy
from anon_ticket.config import Config
from anon_ticket.core.domain import PaymentId
from anon_ticket.daemon import Daemon
from anon_ticket.errors import AnonTicketError
from anon_ticket.service.redeem import RedeemAnswer
from anon_ticket.storage.protocols import ClaimRecord, MonitorState
from anon_ticket.storage.sqlite import SqliteStore

MIN_AMOUNT = 1_000_000_000
CONFIRMATIONS = 10


def pipeline_config(db_path: Path, wallet_url: str, **overrides: str) -> Config:
    env = {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "MONERO_RPC_URL": wallet_url,
        "MONERO_RPC_TIMEOUT_SECS": "2",
        "MONITOR_POLL_INTERVAL_SECS": "3600",
        "MONITOR_MIN_CONFIRMATIONS": str(CONFIRMATIONS),
        "MIN_PAYMENT_AMOUNT": str(MIN_AMOUNT),
        "INTERNAL_API_TOKEN": "test-internal-token-0123456789",
        "ACTOR_TIMEOUT_SECS": "10",
        **overrides,
    }
    return Config.from_environ(env)


class Pipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.daemon = Daemon(config)
        self.daemon.database.migrate()
        self.daemon.start_actors()
        self.redeemer = self.daemon.redeemer()
        self._store = SqliteStore(self.path, query_only=True)

    @property
    def path(self) -> Path:
        assert self.config.database_url.sqlite_path is not None
        return self.config.database_url.sqlite_path

    def poll(self) -> PollReport:
        proxy = self.daemon.actors.proxy("wallet_poller", WalletPollerProxy)
        report: PollReport = proxy.poll_now().get(timeout=30)
        return report

    def redeem(self, pid: PaymentId) -> tuple[int, dict[str, Any]]:
        """The redeem answer as (status, body); errors as their status and code."""
        try:
            answer: RedeemAnswer = self.redeemer.redeem(pid)
        except AnonTicketError as error:
            return error.status, {"error": error.code, **error.extra()}
        return answer.status, answer.body

    def claim_of(self, pid: PaymentId) -> ClaimRecord | None:
        return self._store.claim_for(pid.chain_payment_id().raw)

    def state(self) -> MonitorState:
        return self._store.monitor_state()

    def transfer_rows(self) -> list[tuple[Any, ...]]:
        conn = self._store._conn
        return list(
            conn.execute("SELECT payment_id, txid, amount, height, flags FROM transfers ORDER BY txid")
        )

    def revoke(self, token_digest: bytes, reason: str | None = None) -> ClaimRecord | None:
        writer = self.daemon.actors.proxy("storage_writer", StorageWriterProxy)
        return wait(writer.revoke(token_digest, reason, 1), 10, "storage writer")

    def close(self) -> None:
        self._store.close()
        self.daemon.supervisor.stop()
        self.daemon.close()


def environ_without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
