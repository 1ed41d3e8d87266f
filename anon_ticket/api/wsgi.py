"""The WSGI plumbing both listeners share: JSON answers, errors, the content-type check, bounded body reading.

Written against WSGI directly rather than CherryPy's dispatcher because the contract is byte-level:
415 must come before the body is parsed, 413 before it is kept, and every error must be JSON. The
route table that dispatches to handlers is in routing.py.

The applications run on our own HTTP server (`anon_ticket.httpd`), which frames every request before
a worker sees it (docs/PROTOCOL.md §4, "HTTP details"): ambiguous or conflicting lengths, broken
chunked framing, a body cut short or too slow are answered there. What reaches an application is
whole: `wsgi.input` holds the entire body and `CONTENT_LENGTH` is its exact length, so nothing here
parses framing or waits on a client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from anon_ticket.api import strict_json
from anon_ticket.errors import (
    AnonTicketError,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

JSON_TYPE = "application/json; charset=utf-8"
# The one table of status lines (both listeners, the OpenAPI route, every error).
STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
COMMON_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)


def status_line(status: int) -> str:
    return STATUS_LINES.get(status) or f"{status} Unknown"


def encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def respond_bytes(
    start_response: StartResponse,
    status: int,
    payload: bytes,
    headers: Iterable[tuple[str, str]] = (),
    content_type: str = JSON_TYPE,
) -> list[bytes]:
    start_response(
        status_line(status),
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            *COMMON_HEADERS,
            *headers,
        ],
    )
    return [payload]


def respond(
    start_response: StartResponse,
    status: int,
    body: object,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    return respond_bytes(start_response, status, encode(body), headers or ())


def error_body(error: AnonTicketError) -> dict[str, object]:
    return {"error": error.code, "message": error.public_message(), **error.extra()}


def respond_error(start_response: StartResponse, error: AnonTicketError) -> list[bytes]:
    return respond(start_response, error.status, error_body(error), error.headers())


def require_json(environ: Environ) -> None:
    """415 unless the body is declared `application/json` (charset, if any, utf-8)."""
    media_type, *params = environ.get("CONTENT_TYPE", "").split(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType("the body must be UTF-8 JSON")


def body_length(environ: Environ) -> int:
    """The body's length in bytes: our server always states it (0 or absent for no body)."""
    return int(environ.get("CONTENT_LENGTH") or 0)


def has_body(environ: Environ) -> bool:
    """Whether the request carries a body."""
    return body_length(environ) > 0


def read_body(environ: Environ, limit: int) -> bytes:
    """The whole body, or 413 when it is longer than `limit` (refused on its stated length)."""
    length = body_length(environ)
    if length > limit:
        raise PayloadTooLarge(f"the body must be at most {limit} bytes")
    return bytes(environ["wsgi.input"].read(length))


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, strictly (RFC 8259); 400 `invalid_request` otherwise."""
    try:
        value = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value
