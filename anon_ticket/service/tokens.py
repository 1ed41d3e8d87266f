"""The operator's token use cases (docs/PROTOCOL.md §5): look a token up, revoke it.

A look-up reads the calling thread's own store; a revocation is a write, so it goes to the storage
writer and is answered only once committed. Both answer the record as §5 shows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anon_ticket.actors.locator import ActorLocator, wait
from anon_ticket.actors.storage_writer import StorageWriterProxy
from anon_ticket.core.domain import ServiceToken
from anon_ticket.core.payments import TokenStatus, evaluate
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.errors import TokenNotFound
from anon_ticket.storage.protocols import ClaimRecord, Store

if TYPE_CHECKING:  # only for the annotation: private_tokens imports the Privacy Pass package
    from anon_ticket.service.private_tokens import PrivateTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """What the operator's use cases (tokens, status) and the admin panel need from the configuration."""

    min_payment_amount: int
    min_confirmations: int
    actor_timeout_secs: float
    access_policy: bool = False  # ACCESS_SECONDS_PER_PAYMENT is set: records show `access_until`


class TokenService:
    """Callable from any request thread; holds no per-request state."""

    def __init__(
        self,
        actors: ActorLocator,
        reader: Callable[[], Store],
        settings: OperatorSettings,
        clock: Callable[[], float] = time.time,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        """`private_tokens`: the Privacy Pass issuer whose counts the record shows (None: it is off)."""
        self._actors = actors
        self._reader = reader
        self._settings = settings
        self._clock = clock
        self._private_tokens = private_tokens

    def record(self, token: ServiceToken) -> dict[str, Any]:
        store = self._reader()
        record = store.claim_by_digest(token.digest().raw)
        if record is None:
            raise TokenNotFound("no token with this value was issued")
        return self._as_json(token, record, store)

    def revoke(self, token: ServiceToken, reason: str | None) -> dict[str, Any]:
        writer = self._actors.proxy("storage_writer", StorageWriterProxy)
        digest = token.digest()
        record = wait(
            writer.revoke(digest.raw, reason, int(self._clock())),
            self._settings.actor_timeout_secs,
            "storage writer",
            "storage",
        )
        if record is None:
            raise TokenNotFound("no token with this value was issued")
        log.warning("token %s… revoked by the operator", digest.log_prefix())
        return self._as_json(token, record, self._reader())

    def _as_json(self, token: ServiceToken, record: ClaimRecord, store: Store) -> dict[str, Any]:
        snapshot = store.snapshot(record.payment_id)
        view = evaluate(
            snapshot.transfers, snapshot.wallet_height, self._settings.min_confirmations, claimed=True
        )
        shown: dict[str, Any] = {
            "token": token.hex(),
            "status": "active" if record.status is TokenStatus.ACTIVE else "revoked",
            "amount": view.counted_total,
            "issued_at": rfc3339(record.claimed_at),
            "revoked_at": rfc3339(record.revoked_at),
            "revoke_reason": record.revoke_reason,
        }
        if self._settings.access_policy:
            # docs/PROTOCOL.md §13: the end of the paid time; null for a claim made before the policy
            # (good until revoked). Without a policy the record is what it always was.
            shown["access_until"] = rfc3339(record.access_until)
        if self._private_tokens is not None:  # docs/PROTOCOL.md §12
            shown["private_tokens"] = self._private_tokens.record_of(store, record)
        return shown
