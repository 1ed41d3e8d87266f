"""The operator's view of the daemon: `/api/v1/status` and `/healthz` (docs/PROTOCOL.md §5, §9).

Read from what actors publish (health, wallet, abuse level) and the calling thread's own store
(cursor, counts); nothing here asks an actor, so status answers even while one is down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.locator import ActorLocator
from actors.published import PublishedState
from anon_ticket import __version__
from anon_ticket.service.tokens import OperatorSettings
from anon_ticket.storage.base import Store
from anon_ticket.timefmt import rfc3339


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

    def status(self) -> dict[str, Any]:
        store = self._reader()
        state = store.monitor_state()
        counts = store.counts(self._settings.min_confirmations, self._settings.min_payment_amount)
        wallet = self._published.wallet
        return {
            "version": __version__,
            "actors": {
                name: {"state": health.state, "restarts": health.restarts}
                for name, health in sorted(self._actors.health.items())
            },
            "wallet": {
                "height": wallet.height if wallet.height is not None else state.wallet_height,
                "primary_address": state.wallet_address,
                "last_poll_at": rfc3339(wallet.last_poll_at or state.last_poll_at),
                "last_error": wallet.last_error,
                "stale": wallet.stale(),
                # The last applied poll: this process's, else the one stored by an earlier run.
                "last_success_at": rfc3339(wallet.last_success_at or state.last_poll_at),
            },
            "scan_cursor": state.scan_cursor,
            "payments": {
                "pending": counts.payments_pending,
                "redeemable": counts.payments_redeemable,
                "claimed": counts.payments_claimed,
            },
            "tokens": {"active": counts.tokens_active, "revoked": counts.tokens_revoked},
            "abuse_level": self._published.abuse_level,
        }
