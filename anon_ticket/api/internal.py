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

from anon_ticket.api import openapi
from anon_ticket.api.routing import ROUTING_ARGS, Router
from anon_ticket.api.wsgi import (
    Environ,
    StartResponse,
    has_body,
    parse_object,
    read_body,
    require_json,
    respond,
)
from anon_ticket.config import Secret
from anon_ticket.core import rescan
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import InvalidRequest, PrivateTokenInvalid, TokenSpent, Unauthorized
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.private_tokens import SPEND_PATH, PrivateTokens, SpendResult
from anon_ticket.service.scan import ScanService
from anon_ticket.service.status import StatusService, status_json
from anon_ticket.service.tokens import TokenService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 256
# The access log masks every run of this many hex digits or more (a token, a PID, or a part of one).
MASKED_HEX_RUN = 16
MAX_LOGGED_PATH = 200
MAX_LOGGED_METHOD = 16
_HEX_RUN = re.compile(f"[0-9a-fA-F]{{{MASKED_HEX_RUN},}}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InternalApp:
    """The WSGI application of the internal listener."""

    def __init__(
        self,
        metrics: Metrics,
        api_token: Secret,
        tokens: TokenService,
        status: StatusService,
        scan: ScanService,
        extra_routes: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] | None = None,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        """`private_tokens`: the Privacy Pass spend endpoint (docs/PROTOCOL.md §12); None: 404."""
        self._private_tokens = private_tokens
        self._metrics = metrics
        self._expected = api_token.reveal().encode("utf-8")
        self._tokens = tokens
        self._status = status
        self._scan = scan
        self.router = Router("internal", count=self._count, guard=self._guard, access_log=_access_log)
        self.router.add("/healthz", "healthz", GET=self._healthz_route)
        self.router.add(openapi.PATH, "openapi", GET=openapi.respond_document)
        self.router.add("/api/v1/status", "status", GET=self._status_route)
        self.router.add("/api/v1/token/{token}", "token", GET=self._token)
        self.router.add("/api/v1/token/{token}/revoke", "revoke", POST=self._revoke)
        self.router.add("/api/v1/rescan", "rescan", POST=self._rescan)
        if private_tokens is not None:
            self.router.add(SPEND_PATH, "private_token_spend", POST=self._spend)
        for prefix, app in (extra_routes or {}).items():
            self.mount(prefix, app)

    def mount(self, prefix: str, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        """Serve `app` under `prefix` before authentication: such apps (the admin panel) sign in alone.

        A method, not only a constructor argument, because the panel itself needs this InternalApp.
        The app answers every method itself; HEAD answers still lose their body in the router.
        """
        self.router.mount(prefix, app, prefix.strip("/") or "mounted")

    # -- dispatch -------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.router(environ, start_response)

    def _guard(self, environ: Environ, path: str) -> None:
        """Every /api/v1/ request is authenticated before its path is even looked up (§5)."""
        if path.startswith("/api/v1/") or path == "/api/v1":
            self.authenticate(environ.get("HTTP_AUTHORIZATION", ""))

    def _count(self, event: str) -> None:
        self._metrics.count(event)

    def _healthz_route(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        return self._healthz(start_response)

    def _status_route(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        return respond(start_response, 200, status_json(self._status.status()))

    def _token(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        token = ServiceToken.parse(environ[ROUTING_ARGS][1]["token"])
        return respond(start_response, 200, self._tokens.record(token))

    def _revoke(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        token = ServiceToken.parse(environ[ROUTING_ARGS][1]["token"])
        reason = self._revoke_reason(environ)
        return respond(start_response, 200, self._tokens.revoke(token, reason))

    def _rescan(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        require_json(environ)
        request = rescan.parse_request(parse_object(read_body(environ, MAX_BODY_BYTES)))
        return respond(start_response, 200, self._scan.rescan(request))

    def _spend(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """docs/PROTOCOL.md §12: verify, then record the first use; 409 after, 400 for a bad token."""
        assert self._private_tokens is not None
        require_json(environ)
        token = parse_object(read_body(environ, MAX_BODY_BYTES)).get("token")
        if not isinstance(token, str):
            raise InvalidRequest('the body must be {"token": "<base64url Token>"}')
        result = self._private_tokens.spend(token)
        if result is SpendResult.ALREADY_SPENT:
            raise TokenSpent("this token has been spent before")
        if result is SpendResult.INVALID:
            raise PrivateTokenInvalid("the token does not verify with this issuer's key and challenge")
        return respond(start_response, 200, {"status": "spent"})

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
        down = self._status.down_actors()
        if down is not None:
            return respond(
                start_response,
                503,
                {"status": "down", "reasons": [f"actor:{name}" for name in down] or ["actor:starting"]},
                [("Retry-After", "5")],
            )
        reasons = self._status.degraded_reasons()
        if reasons:
            return respond(start_response, 200, {"status": "degraded", "reasons": reasons})
        return respond(start_response, 200, {"status": "ok"})

    def _revoke_reason(self, environ: Environ) -> str | None:
        if not has_body(environ):
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


def _access_log(method: str, path: str, status: int | None) -> None:
    log.info("internal %s %s -> %s", loggable(method, MAX_LOGGED_METHOD), loggable(path), status or "-")


def loggable(text: str, limit: int = MAX_LOGGED_PATH) -> str:
    """`text` fit for one log line: hex runs masked, control characters escaped, length capped.

    A run of exactly 64 hex digits (a token) shows a prefix of its digest, so the operator can
    match it with other lines; any other run of 16 or more (part of a token, a PID) shows only its
    length. The cap applies last, so a cut can never leave a long run unmasked.
    """

    def masked(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) == 64:
            return "digest:" + ServiceToken.parse(run).digest().log_prefix()
        return f"<{len(run)} hex>"

    shown = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", _HEX_RUN.sub(masked, text))
    return shown if len(shown) <= limit else shown[:limit] + "…"
