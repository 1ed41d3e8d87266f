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
from typing import Any

from anon_ticket.api.wsgi import Environ, StartResponse, respond_bytes

PATH = "/api/v1/openapi.json"
RESOURCE = "openapi.json"


@functools.cache
def document_bytes() -> bytes:
    """The document, compact, read once: the file cannot change under a running daemon's feet.

    Read through importlib.resources so it resolves both from a source checkout (`pip install -e .`)
    and from an installed wheel (where setup.cfg must list it as package data).
    """
    raw = importlib.resources.files("anon_ticket.api").joinpath(RESOURCE).read_bytes()
    parsed = json.loads(raw.decode("utf-8"))
    if not isinstance(parsed, dict) or not str(parsed.get("openapi", "")).startswith("3.1"):
        raise ValueError(f"{RESOURCE} is not an OpenAPI 3.1 document")
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def document() -> dict[str, Any]:
    """A fresh copy of the parsed document (callers may change it without affecting what is served)."""
    parsed: dict[str, Any] = json.loads(document_bytes())
    return parsed


def respond_document(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """200 with the document: a route handler for GET (and so HEAD) behind the bearer check.

    It does no authentication of its own: InternalApp routes `PATH` to it only after `authenticate`.
    """
    return respond_bytes(start_response, 200, document_bytes())
