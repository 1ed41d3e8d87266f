"""The operator's view of the daemon: `/api/v1/status` and `/healthz` (docs/PROTOCOL.md §5, §9).

`/api/v1/status` is built once as a typed value (`Status`, frozen dataclasses) that the internal API
turns into its JSON with `status_json` and the admin panel renders directly, so the two cannot
drift apart and nobody reads the status by string keys. It is read from what actors publish
(health, wallet, abuse level) and the calling thread's own store (cursor, counts); nothing here asks
an actor, so status answers even while one is down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anon_ticket import __version__
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.process.node import node_id
from anon_ticket.service.tokens import OperatorSettings
from anon_ticket.storage.pool import PoolFigures
from anon_ticket.storage.protocols import Store


@dataclass(frozen=True, slots=True)
class ActorStatus:
    state: str  # starting, running, restarting, stopped, failed
    restarts: int


@dataclass(frozen=True, slots=True)
class WalletStatus:
    """Times are Unix seconds here; the JSON shows them as RFC 3339, the panel in its own format."""

    height: int | None
    primary_address: str | None
    last_poll_at: int | None
    last_error: str | None
    stale: bool
    last_success_at: int | None


@dataclass(frozen=True, slots=True)
class PaymentCounts:
    pending: int
    redeemable: int
    claimed: int


@dataclass(frozen=True, slots=True)
class TokenCounts:
    active: int
    revoked: int


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """Which daemon answered, when several share one PostgreSQL database (docs/PROTOCOL.md §11)."""

    id: str  # "hostname:pid"
    role: str  # "leader" or "standby"


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """The node's PostgreSQL pool (docs/PROTOCOL.md §11); `pool` is None on SQLite, which has none."""

    pool: PoolFigures | None


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    actors: tuple[tuple[str, ActorStatus], ...]  # sorted by name
    wallet: WalletStatus
    scan_cursor: int | None
    payments: PaymentCounts
    tokens: TokenCounts
    abuse_level: str
    node: NodeStatus | None = None  # always set by StatusService; None only in hand-made values
    storage: StorageStatus | None = None  # the same


def status_json(status: Status) -> dict[str, Any]:
    """`status` as the JSON object of docs/PROTOCOL.md §5, keys in the documented order."""
    wallet = status.wallet
    body: dict[str, Any] = {
        "version": status.version,
        "actors": {name: {"state": a.state, "restarts": a.restarts} for name, a in status.actors},
        "wallet": {
            "height": wallet.height,
            "primary_address": wallet.primary_address,
            "last_poll_at": rfc3339(wallet.last_poll_at),
            "last_error": wallet.last_error,
            "stale": wallet.stale,
            "last_success_at": rfc3339(wallet.last_success_at),
        },
        "scan_cursor": status.scan_cursor,
        "payments": {
            "pending": status.payments.pending,
            "redeemable": status.payments.redeemable,
            "claimed": status.payments.claimed,
        },
        "tokens": {"active": status.tokens.active, "revoked": status.tokens.revoked},
        "abuse_level": status.abuse_level,
    }
    if status.node is not None:
        body["node"] = {"id": status.node.id, "role": status.node.role}
    if status.storage is not None:
        pool = status.storage.pool
        body["storage"] = {
            "pool": None
            if pool is None
            else {
                "size": pool.size,
                "in_use": pool.in_use,
                "waiting": pool.waiting,
                "waits": pool.waits,
                "timeouts": pool.timeouts,
                "replaced": pool.replaced,
            }
        }
    return body


class StatusService:
    def __init__(
        self,
        actors: ActorLocator,
        published: PublishedState,
        reader: Callable[[], Store],
        settings: OperatorSettings,
    ) -> None:
        self._actors = actors
        self._published = published
        self._reader = reader
        self._settings = settings

    def down_actors(self) -> list[str] | None:
        """None while every actor runs; else the names of those that do not (for a 503 `down`)."""
        if self._actors.all_running():
            return None
        return self._actors.down()

    def degraded_reasons(self) -> list[str]:
        """`wallet_stale` and/or `wallet_fault`: the service runs, the operator should look."""
        return self._published.wallet.reasons()

    def status(self) -> Status:
        store = self._reader()
        state = store.monitor_state()
        counts = store.counts(self._settings.min_confirmations, self._settings.min_payment_amount)
        wallet = self._published.wallet
        return Status(
            version=__version__,
            actors=tuple(
                (name, ActorStatus(health.state, health.restarts))
                for name, health in sorted(self._actors.health.items())
            ),
            wallet=WalletStatus(
                height=wallet.height if wallet.height is not None else state.wallet_height,
                primary_address=state.wallet_address,
                last_poll_at=wallet.last_poll_at or state.last_poll_at,
                last_error=wallet.last_error,
                stale=wallet.stale(),
                # The last applied poll: this process's, else the one stored by an earlier run.
                last_success_at=wallet.last_success_at or state.last_poll_at,
            ),
            scan_cursor=state.scan_cursor,
            payments=PaymentCounts(
                pending=counts.payments_pending,
                redeemable=counts.payments_redeemable,
                claimed=counts.payments_claimed,
            ),
            tokens=TokenCounts(active=counts.tokens_active, revoked=counts.tokens_revoked),
            abuse_level=self._published.abuse_level,
            node=NodeStatus(node_id(), self._published.node_role),
            storage=StorageStatus(self._published.storage_pool()),
        )
