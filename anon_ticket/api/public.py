"""The public, Tor-facing listener: `GET /api/v1/info`, `POST /api/v1/redeem`, the buyer's page and,
with PRIVACY_PASS=on, the Privacy Pass issuer directory and issuance (docs/PROTOCOL.md §12).

Every client is anonymous and possibly hostile: the body is checked for type and size before it is
parsed, unknown PIDs are answered from the in-memory screen, and every outcome is counted (not
logged per request: a log line per request would be a record of who asked when).
"""

from __future__ import annotations

from collections.abc import Iterable

from anon_ticket.api.buyer_page import BuyerPage
from anon_ticket.api.routing import OUTCOME, Router
from anon_ticket.api.wsgi import (
    Environ,
    StartResponse,
    encode,
    parse_object,
    read_body,
    require_json,
    respond,
    respond_bytes,
)
from anon_ticket.core.domain import PaymentId
from anon_ticket.errors import InvalidRequest, UnsupportedMediaType
from anon_ticket.httpd.wsgi_bridge import CIRCUIT_KEY
from anon_ticket.service.info import PublicInfo
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.private_tokens import (
    DIRECTORY_PATH,
    DIRECTORY_TYPE,
    ISSUE_PATH,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    PrivateTokens,
)
from anon_ticket.service.redeem import Redeemer

MAX_BODY_BYTES = 1024
TOKEN_REQUEST_BYTES = 259  # 2 + 1 + 256: a type-2 TokenRequest, the only body issuance accepts


class PublicApp:
    """The WSGI application of the public listener."""

    def __init__(
        self,
        metrics: Metrics,
        info: PublicInfo,
        redeemer: Redeemer,
        buyer_page: BuyerPage | None = None,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        """`buyer_page` serves `/` and `/static/` (docs/PROTOCOL.md §10); None (BUYER_PAGE=off): 404.
        `private_tokens`: the Privacy Pass issuer (§12); None (PRIVACY_PASS=off): its paths are 404."""
        self._private_tokens = private_tokens
        self._metrics = metrics
        self._public_info = info
        self._redeemer = redeemer
        self.router = Router("public", count=self._count)
        self.router.add("/api/v1/info", "info", GET=self._info)
        self.router.add("/api/v1/redeem", "redeem", POST=self._redeem)
        if private_tokens is not None:
            self.router.add(DIRECTORY_PATH, "private_token_directory", GET=self._directory)
            self.router.add(ISSUE_PATH, "private_token_issue", POST=self._issue)
        if buyer_page is not None:
            self.router.add("/", "page", GET=buyer_page.serve)
            self.router.mount("/static/", buyer_page.serve, "page")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.router(environ, start_response)

    def _count(self, event: str) -> None:
        self._metrics.count(event)

    def _info(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        info = self._public_info.body()
        if self._private_tokens is not None:
            info["private_token"] = self._private_tokens.info()
        return respond(start_response, 200, info)

    def _directory(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        assert self._private_tokens is not None
        return respond_bytes(
            start_response, 200, encode(self._private_tokens.directory()), content_type=DIRECTORY_TYPE
        )

    def _issue(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """docs/PROTOCOL.md §12: 415, 413, then the issuer's checks; the answer is the raw signature."""
        assert self._private_tokens is not None
        media_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media_type != REQUEST_TYPE:
            raise UnsupportedMediaType(f"the body must be {REQUEST_TYPE}")
        body = read_body(environ, TOKEN_REQUEST_BYTES)
        signature = self._private_tokens.issue(environ.get("HTTP_AUTHORIZATION", ""), body)
        return respond_bytes(start_response, 200, signature, content_type=RESPONSE_TYPE)

    def _redeem(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        require_json(environ)
        body = parse_object(read_body(environ, MAX_BODY_BYTES))
        if "pid" not in body:
            raise InvalidRequest("the body must have a pid")
        pid = PaymentId.parse(body["pid"])
        answer = self._redeemer.redeem(pid, environ.get(CIRCUIT_KEY))
        environ[OUTCOME] = str(answer.body["status"])
        return respond(start_response, answer.status, answer.body)
