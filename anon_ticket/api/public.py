"""The public, Tor-facing listener: `GET /api/v1/info`, `POST /api/v1/redeem`, the buyer's page and,
with PRIVACY_PASS=on, the Privacy Pass issuer directory and issuance (docs/PROTOCOL.md §12).

Every client is anonymous and possibly hostile: the body is checked for type and size before it is
parsed, unknown PIDs are answered from the in-memory screen, and every outcome is counted (not
logged per request: a log line per request would be a record of who asked when).
"""

from __future__ import annotations

from collections.abc import Iterable

from anon_ticket.actors.abuse_metrics import Event
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState
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
from anon_ticket.core.domain import PAYMENT_ID_SCHEME, PaymentId
from anon_ticket.errors import InvalidRequest, Unavailable, UnsupportedMediaType
from anon_ticket.httpd.wsgi_bridge import CIRCUIT_KEY
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
        actors: ActorLocator,
        published: PublishedState,
        redeemer: Redeemer,
        min_payment_amount: int,
        min_confirmations: int,
        buyer_page: BuyerPage | None = None,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        """`buyer_page` serves `/` and `/static/` (docs/PROTOCOL.md §10); None (BUYER_PAGE=off): 404.
        `private_tokens`: the Privacy Pass issuer (§12); None (PRIVACY_PASS=off): its paths are 404."""
        self._private_tokens = private_tokens
        self._actors = actors
        self._published = published
        self._redeemer = redeemer
        self._min_payment_amount = min_payment_amount
        self._min_confirmations = min_confirmations
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
        self._actors.tell("abuse_metrics", Event(event))

    def _info(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        # Published by the wallet poller alone (the stored address at its start, then the wallet's).
        address = self._published.primary_address
        if address is None:
            raise Unavailable("the wallet's address is not known yet", component="wallet")
        info: dict[str, object] = {
            "primary_address": address,
            "min_payment_amount": self._min_payment_amount,
            "required_confirmations": self._min_confirmations,
            "payment_id_scheme": PAYMENT_ID_SCHEME,
        }
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
