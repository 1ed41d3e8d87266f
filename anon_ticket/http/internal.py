"""The operator's listener (docs/PROTOCOL.md §5): token introspection and revocation, status, health.

Every `/api/v1/` request is authenticated before anything else, so even unknown paths answer 401 to
a stranger. The bearer token is compared in constant time. Tokens in paths never reach a log: the
access log written here shows a digest prefix instead.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from actors.registry import Registry, wait
from actors.storage_writer import StorageWriterProxy
from anon_ticket import __version__
from anon_ticket.config import Secret
from anon_ticket.domain import ServiceToken
from anon_ticket.errors import (
    AnonTicketError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TokenNotFound,
    Unauthorized,
    Unavailable,
)
from anon_ticket.http import openapi
from anon_ticket.http.wsgi import (
    Environ,
    StartResponse,
    parse_object,
    read_body,
    require_json,
    respond,
    respond_error,
)
from anon_ticket.payments import TokenStatus, TransferFlag, evaluate
from anon_ticket.storage.base import ClaimRecord, Store
from anon_ticket.timefmt import rfc3339

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 256
_TOKEN_PATH = re.compile(r"^/api/v1/token/([^/]*)(/revoke)?$")
_TOKEN_SHAPE = re.compile(r"[0-9a-fA-F]{16,}")  # any long hex run: a token, or most of one

Handler = Callable[[Environ, StartResponse, "list[str]"], list[bytes]]


@dataclass(frozen=True, slots=True)
class InternalSettings:
    min_payment_amount: int
    min_confirmations: int
    writer_timeout_secs: float


class InternalApp:
    """The WSGI application of the internal listener."""

    def __init__(
        self,
        registry: Registry,
        reader: Callable[[], Store],
        api_token: Secret,
        settings: InternalSettings,
        clock: Callable[[], float],
        extra_routes: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] | None = None,
    ) -> None:
        self._registry = registry
        self._reader = reader
        self._expected = api_token.reveal().encode("utf-8")
        self._settings = settings
        self._clock = clock
        self._extra_routes = dict(extra_routes or {})

    def mount(self, prefix: str, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        """Serve `app` under `prefix` before authentication: such apps (the admin panel) sign in alone.

        A method, not only a constructor argument, because the panel itself needs this InternalApp.
        """
        self._extra_routes[prefix] = app

    # -- dispatch -------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        status_box: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_box.append(int(status[:3]))
            return start_response(status, headers, exc_info)

        try:
            return self._dispatch(environ, recording_start_response, path, method)
        except AnonTicketError as error:
            return respond_error(recording_start_response, error)
        except Exception:
            log.exception("unexpected error in the internal listener")
            return respond_error(recording_start_response, Unavailable("internal error"))
        finally:
            log.info("internal %s %s -> %s", method, _loggable(path), status_box[0] if status_box else "-")

    def _dispatch(
        self, environ: Environ, start_response: StartResponse, path: str, method: str
    ) -> Iterable[bytes]:
        if path == "/healthz":
            # HEAD too: load balancers and monitors probe with it (cheroot sends no body for HEAD).
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed(("GET", "HEAD"))
            return self._healthz(start_response)
        for prefix, app in self._extra_routes.items():
            if path == prefix.rstrip("/") or path.startswith(prefix):
                return app(environ, start_response)
        if not path.startswith("/api/v1/") and path != "/api/v1":
            raise NotFound("no such path")
        self.authenticate(environ.get("HTTP_AUTHORIZATION", ""))
        if path == openapi.PATH:
            _only(method, "GET")
            return openapi.respond_document(start_response)
        if path == "/api/v1/status":
            _only(method, "GET")
            return respond(start_response, 200, self.status())
        match = _TOKEN_PATH.match(path)
        if match is None:
            raise NotFound("no such path")
        _only(method, "POST" if match.group(2) else "GET")  # 405 comes before judging the token
        token = ServiceToken.parse(match.group(1))
        if match.group(2):
            reason = self._revoke_reason(environ)
            return respond(start_response, 200, self.revoke(token, reason))
        return respond(start_response, 200, self.token_record(token))

    def authenticate(self, header: str) -> None:
        """Accept `Bearer <token>`: the scheme in any case, one or more spaces (RFC 7235, RFC 6750).

        Only the token is compared, in constant time; its length may leak, its content cannot.
        """
        scheme, _, credentials = header.strip().partition(" ")
        presented = credentials.lstrip(" ").encode("utf-8", "surrogateescape")
        valid = hmac.compare_digest(presented, self._expected)
        if not valid or scheme.lower() != "bearer":
            raise Unauthorized("a valid Authorization: Bearer token is required")

    # -- handlers -------------------------------------------------------------------------------

    def _healthz(self, start_response: StartResponse) -> list[bytes]:
        """docs/PROTOCOL.md §9: 503 `down` only for a dead actor; a stale or faulted wallet is `degraded`."""
        registry = self._registry
        if not registry.all_running():
            down = sorted(
                name
                for name, h in registry.health.items()
                if h.state != "running" or (ref := registry.ref(name)) is None or not ref.is_alive()
            )
            return respond(
                start_response,
                503,
                {"status": "down", "reasons": [f"actor:{name}" for name in down] or ["actor:starting"]},
                [("Retry-After", "5")],
            )
        reasons = registry.wallet.reasons()
        if reasons:
            return respond(start_response, 200, {"status": "degraded", "reasons": reasons})
        return respond(start_response, 200, {"status": "ok"})

    def token_record(self, token: ServiceToken) -> dict[str, Any]:
        store = self._reader()
        record = store.claim_by_digest(token.digest().raw)
        if record is None:
            raise TokenNotFound("no token with this value was issued")
        return self._record(token, record, store)

    def revoke(self, token: ServiceToken, reason: str | None) -> dict[str, Any]:
        writer = self._registry.proxy("storage_writer", StorageWriterProxy)
        digest = token.digest()
        record = wait(
            writer.revoke(digest.raw, reason, int(self._clock())),
            self._settings.writer_timeout_secs,
            "storage writer",
        )
        if record is None:
            raise TokenNotFound("no token with this value was issued")
        log.warning("token %s… revoked by the operator", digest.log_prefix())
        return self._record(token, record, self._reader())

    def _record(self, token: ServiceToken, record: ClaimRecord, store: Store) -> dict[str, Any]:
        snapshot = store.snapshot(record.payment_id)
        view = evaluate(
            snapshot.transfers, snapshot.wallet_height, self._settings.min_confirmations, claimed=True
        )
        return {
            "token": token.hex(),
            "status": "active" if record.status is TokenStatus.ACTIVE else "revoked",
            "amount": view.counted_total,
            "issued_at": rfc3339(record.claimed_at),
            "revoked_at": rfc3339(record.revoked_at),
            "revoke_reason": record.revoke_reason,
        }

    def _revoke_reason(self, environ: Environ) -> str | None:
        has_body = bool(environ.get("CONTENT_LENGTH") not in (None, "", "0")) or (
            environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        )
        if not has_body:
            return None
        require_json(environ)
        raw = read_body(environ, MAX_BODY_BYTES)
        if not raw.strip():
            return None
        reason = parse_object(raw).get("reason")
        if reason is None:
            return None
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise InvalidRequest(f"reason must be a string of at most {MAX_REASON_CHARS} characters")
        return reason

    def flagged_transfers(self, limit: int = 50) -> list[dict[str, Any]]:
        """Transfers recorded but never counted (docs/PROTOCOL.md §3), for the admin panel."""
        store = self._reader()
        height = store.monitor_state().wallet_height or 0
        return [
            {
                "txid": transfer.txid.hex(),
                "payment_id": payment_id.hex(),
                "amount": transfer.amount,
                "height": transfer.height,
                "confirmations": transfer.confirmations(height),
                "locked": bool(transfer.flags & TransferFlag.LOCKED),
                "double_spend_seen": bool(transfer.flags & TransferFlag.DOUBLE_SPEND),
            }
            for payment_id, transfer in store.flagged_transfers(limit)
        ]

    def status(self) -> dict[str, Any]:
        store = self._reader()
        state = store.monitor_state()
        counts = store.counts(self._settings.min_confirmations, self._settings.min_payment_amount)
        registry = self._registry
        wallet = registry.wallet
        return {
            "version": __version__,
            "actors": {
                name: {"state": health.state, "restarts": health.restarts}
                for name, health in sorted(registry.health.items())
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
            "abuse_level": registry.abuse_level,
        }


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed((allowed,))


def _loggable(path: str) -> str:
    """The path with every token-shaped run replaced by its digest prefix (and capped in length)."""

    def masked(match: re.Match[str]) -> str:
        if len(match.group(0)) != 64:
            return f"<{len(match.group(0))} hex>"
        return "digest:" + ServiceToken.parse(match.group(0)).digest().log_prefix()

    shown = _TOKEN_SHAPE.sub(masked, path)
    return shown if len(shown) <= 200 else shown[:200] + "…"
