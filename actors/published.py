"""What actors publish for request threads to read without a message round trip.

Each attribute has one writer and is replaced whole (never mutated in place where a reader could
see half a change), so a request thread reads it with a plain attribute access and no lock: the
PID screen costs ~2 µs to test this way against ~25 µs for an `ask` to its actor.
"""

from __future__ import annotations

from collections.abc import Callable

from anon_ticket.core.pid_screen import PidScreen
from anon_ticket.core.wallet_health import WalletHealth
from anon_ticket.storage.pool import PoolFigures


class PublishedState:
    """The board actors write and request threads read; who writes what is said beside it."""

    def __init__(self) -> None:
        # The PID cache: None until it has built the screen from storage (redeem answers 503).
        self.pid_screen: PidScreen | None = None
        # AbuseMetrics: "normal", "elevated" or "under_attack".
        self.abuse_level = "normal"
        # The wallet poller: height, last error, stale and fault signals.
        self.wallet = WalletHealth()
        # The wallet poller, once it has bound the database to the wallet it serves.
        self.primary_address: str | None = None
        # The wallet poller: "leader" while this node polls the wallet, else "standby" (§11).
        self.node_role = "standby"
        # The daemon, once at wiring: the PostgreSQL pool's figures; None on SQLite (no pool).
        self.storage_pool: Callable[[], PoolFigures | None] = lambda: None
