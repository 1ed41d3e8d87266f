"""The OpenAPI 3.1 document of both listeners, served at `GET /api/v1/openapi.json` (docs/PROTOCOL.md §5).

The document is hand-written JSON beside this module, kept as the source of truth and checked by the
tests against the running daemon's real answers, rather than generated from code: the contract is
byte-level and a generator would only describe what the code happens to do. It is served on the
internal listener only, behind the bearer token like every other `/api/v1/` path; the public listener
serves nothing beyond its two paths.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterable
from typing import Any

from anon_ticket.errors import MethodNotAllowed
from anon_ticket.http.wsgi import JSON_TYPE, Environ, StartResponse, WsgiApp

PATH = "/api/v1/openapi.json"
RESOURCE = "openapi.json"


@functools.cache
def document_bytes() -> bytes:
    """The document, compact, read once: the file cannot change under a running daemon's feet.

    Read through importlib.resources so it resolves both from a source checkout (`pip install -e .`)
    and from an installed wheel (where setup.cfg must list it as package data).
    """
    raw = importlib.resources.files("anon_ticket.http").joinpath(RESOURCE).read_bytes()
    parsed = json.loads(raw.decode("utf-8"))
    if not isinstance(parsed, dict) or not str(parsed.get("openapi", "")).startswith("3.1"):
        raise ValueError(f"{RESOURCE} is not an OpenAPI 3.1 document")
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def document() -> dict[str, Any]:
    """A fresh copy of the parsed document (callers may change it without affecting what is served)."""
    parsed: dict[str, Any] = json.loads(document_bytes())
    return parsed


def respond_document(start_response: StartResponse) -> list[bytes]:
    """200 with the document; the caller has already authenticated and checked the method."""
    body = document_bytes()
    start_response(
        "200 OK",
        [
            ("Content-Type", JSON_TYPE),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]


def openapi_route() -> WsgiApp:
    """A WSGI app answering GET with the document, for a router that authenticates before it.

    It does no authentication of its own: mount it only behind the internal listener's bearer check
    (InternalApp routes `PATH` itself after `authenticate`).
    """

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            raise MethodNotAllowed(("GET",))
        return respond_document(start_response)

    return app
