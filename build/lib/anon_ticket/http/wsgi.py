"""The WSGI plumbing both listeners share: JSON answers, errors, bounded body reading.

Written against WSGI directly rather than CherryPy's dispatcher because the contract is byte-level:
415 must come before the body is parsed, 413 must hold for chunked bodies, and every error must be
JSON. It also halves the per-request cost (measured: cheroot WSGI ~2x a minimal CherryPy app).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

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
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_COMMON_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]


def encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def respond(
    start_response: StartResponse,
    status: int,
    body: object,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = encode(body)
    start_response(
        _STATUS_LINES[status],
        [("Content-Type", JSON_TYPE), ("Content-Length", str(len(payload))), *_COMMON_HEADERS]
        + (headers or []),
    )
    return [payload]


def error_body(error: AnonTicketError) -> dict[str, object]:
    return {"error": error.code, "message": str(error), **error.extra()}


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


def read_body(environ: Environ, limit: int) -> bytes:
    """Read at most `limit` bytes; 413 for more, whether announced by Content-Length or chunked.

    An announced length over the limit is refused without reading; a chunked body is read one byte
    past the limit at most, so a large body never costs memory.
    """
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise InvalidRequest("Content-Length is not a number") from None
        if length > limit:
            raise PayloadTooLarge(f"the body must be at most {limit} bytes")
        return bytes(stream.read(length)) if length > 0 else b""
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        data = bytes(stream.read(limit + 1))
        if len(data) > limit:
            raise PayloadTooLarge(f"the body must be at most {limit} bytes")
        return data
    return b""


def parse_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value
