"""The WSGI plumbing both listeners share: JSON answers, errors, framing checks, bounded body reading.

Written against WSGI directly rather than CherryPy's dispatcher because the contract is byte-level:
415 must come before the body is parsed, 413 must hold for chunked bodies, and every error must be
JSON. It also halves the per-request cost (measured: cheroot WSGI ~2x a minimal CherryPy app).
The route table that dispatches to handlers is in routing.py.

Nothing here trusts the server to have caught a client's mistakes: whatever the environ and
`wsgi.input` hold (conflicting lengths, broken chunked framing, a body cut short, a read that times
out) becomes a 4xx answer, never a traceback or a 5xx (docs/PROTOCOL.md §4, "HTTP details").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from cheroot.errors import MaxSizeExceeded

from anon_ticket.api import strict_json
from anon_ticket.errors import (
    AnonTicketError,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
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


def check_framing(environ: Environ) -> None:
    """400 for a message whose length is ambiguous: what the server let through, checked again.

    A Content-Length that is not plain digits (`5, 6` is how a server joins two of them; `+5` and
    `5_0` are what `int()` would accept), or a Content-Length beside a Transfer-Encoding (RFC 9112
    §6.3: request smuggling territory), or a transfer coding other than chunked.
    """
    length = environ.get("CONTENT_LENGTH") or ""
    coding = (environ.get("HTTP_TRANSFER_ENCODING") or "").strip()
    if length and not (length.isascii() and length.isdigit()):
        raise InvalidRequest("Content-Length must be one decimal number")
    if coding:
        if length:
            raise InvalidRequest("Content-Length and Transfer-Encoding must not both be sent")
        if coding.lower() != "chunked":
            raise InvalidRequest("the only transfer coding accepted is chunked")


def has_body(environ: Environ) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    length = environ.get("CONTENT_LENGTH") or ""
    return bool(length.strip("0")) or bool(environ.get("HTTP_TRANSFER_ENCODING"))


def read_body(environ: Environ, limit: int) -> bytes:
    """Read at most `limit` bytes; 413 for more, whether announced by Content-Length or chunked.

    An announced length over the limit is refused without reading; a chunked body is read one byte
    past the limit at most, so a large body never costs memory. Whatever the server's input stream
    raises is the client's doing (broken chunked framing, a body shorter than announced, a
    connection gone, a read past the request deadline): 400, or 408 for a timeout, and 413 when the
    server says the body is too large.
    """
    stream = environ["wsgi.input"]
    try:
        check_framing(environ)
        length_text = environ.get("CONTENT_LENGTH") or ""
        if length_text:
            length = int(length_text)
            if length > limit:
                raise PayloadTooLarge(f"the body must be at most {limit} bytes")
            data = _read(stream, length)
            if len(data) < length:
                raise InvalidRequest("the body ended before its Content-Length")
            return data
        if environ.get("HTTP_TRANSFER_ENCODING"):
            data = _read(stream, limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"the body must be at most {limit} bytes")
            return data
        return b""
    except (InvalidRequest, RequestTimeout):
        abandon_body(environ)
        raise


def abandon_body(environ: Environ) -> None:
    """Tell the server not to read what is left of a body whose framing failed or that timed out.

    cheroot drains the unread rest of a Content-Length body before it sends the answer; for a body
    that will never arrive (or whose length is ambiguous) that wait would swallow our 400/408 and end
    in a traceback. Its input stream counts what is left in `remaining`: setting it to 0 lets the
    answer go out. Servers that buffer whole requests first have nothing to drain and no such field.
    """
    stream = environ.get("wsgi.input")
    if stream is not None and isinstance(getattr(stream, "remaining", None), int):
        stream.remaining = 0


def _read(stream: Any, size: int) -> bytes:
    """Up to `size` bytes, looping over short reads until the stream ends."""
    chunks: list[bytes] = []
    got = 0
    try:
        while got < size:
            chunk = bytes(stream.read(size - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except TimeoutError:
        raise RequestTimeout("the body did not arrive in time") from None
    except MaxSizeExceeded:
        raise PayloadTooLarge("the body is too large") from None
    except Exception as exc:  # any stream failure is the client's framing or connection
        if isinstance(exc, OSError) and "too large" in str(exc).lower():
            raise PayloadTooLarge("the body is too large") from None  # cheroot's chunk-size guard
        raise InvalidRequest("the body could not be read (broken framing or connection)") from None
    return b"".join(chunks)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, strictly (RFC 8259); 400 `invalid_request` otherwise."""
    try:
        value = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value
