"""The public, Tor-facing listener: `GET /api/v1/info`, `POST /api/v1/redeem` and the buyer's page.

Every client is anonymous and possibly hostile: the body is checked for type and size before it is
parsed, unknown PIDs are answered from the in-memory screen, and every outcome is counted (not
logged per request: a log line per request would be a record of who asked when).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from actors.abuse_metrics import Event
from actors.registry import Registry
from anon_ticket.domain import PAYMENT_ID_SCHEME, PaymentId
from anon_ticket.errors import (
    AnonTicketError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Unavailable,
)
from anon_ticket.http.buyer_page import BuyerPage
from anon_ticket.http.wsgi import (
    Environ,
    StartResponse,
    parse_object,
    read_body,
    require_json,
    respond,
    respond_error,
)
from anon_ticket.redeem import Redeemer
from anon_ticket.storage.base import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024


class PublicApp:
    """The WSGI application of the public listener."""

    def __init__(
        self,
        registry: Registry,
        redeemer: Redeemer,
        reader: Callable[[], Store],
        min_payment_amount: int,
        min_confirmations: int,
        buyer_page: BuyerPage | None = None,
    ) -> None:
        """`buyer_page` serves `/` and `/static/` (docs/PROTOCOL.md §10); None (BUYER_PAGE=off): 404."""
        self._registry = registry
        self._buyer_page = buyer_page
        self._redeemer = redeemer
        self._reader = reader
        self._min_payment_amount = min_payment_amount
        self._min_confirmations = min_confirmations
        self._routes: dict[str, tuple[str, Callable[[Environ, StartResponse], list[bytes]]]] = {
            "/api/v1/info": ("GET", self._info),
            "/api/v1/redeem": ("POST", self._redeem),
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = self._routes.get(path)
        try:
            if route is None and self._buyer_page is not None and self._buyer_page.owns(path):
                answer = self._buyer_page.serve(environ, start_response)
                self._count("page")
                return answer
            if route is None:
                raise NotFound("no such path")
            method, handler = route
            if environ.get("REQUEST_METHOD") != method:
                raise MethodNotAllowed((method,))
            return handler(environ, start_response)
        except AnonTicketError as error:
            self._count(error.code)
            return respond_error(start_response, error)
        except Exception:
            log.exception("unexpected error in the public listener")
            self._count("internal_error")
            return respond_error(start_response, Unavailable("internal error"))

    def _count(self, outcome: str) -> None:
        self._registry.tell("abuse_metrics", Event("public." + outcome))

    def _info(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        address = self._registry.primary_address
        if address is None:
            address = self._reader().monitor_state().wallet_address
            if address is None:
                raise Unavailable("the wallet's address is not known yet")
            self._registry.primary_address = address
        self._count("info")
        return respond(
            start_response,
            200,
            {
                "primary_address": address,
                "min_payment_amount": self._min_payment_amount,
                "required_confirmations": self._min_confirmations,
                "payment_id_scheme": PAYMENT_ID_SCHEME,
            },
        )

    def _redeem(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        require_json(environ)
        body = parse_object(read_body(environ, MAX_BODY_BYTES))
        if "pid" not in body:
            raise InvalidRequest("the body must have a pid")
        pid = PaymentId.parse(body["pid"])
        answer = self._redeemer.redeem(pid)
        self._count(str(answer.body["status"]))
        return respond(start_response, answer.status, answer.body)
