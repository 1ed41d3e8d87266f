"""Strict JSON (RFC 8259) for request bodies (docs/PROTOCOL.md §4, "HTTP details").

Python's `json` module is lenient where a hostile client would like it to be: it accepts `NaN` and
`Infinity`, keeps the last of duplicate keys (so two readers of the same body may disagree), lets
`"\\ud800"` through as a lone surrogate that later fails to encode, turns `1e400` into infinity, and
raises RecursionError, not ValueError, on deep nesting. Every one of those is the client's mistake
and must answer 400, never 5xx, so each is refused here with `JsonRejected`.
"""

from __future__ import annotations

import decimal
import json
from typing import Any, NoReturn

# Deeper than any body we accept needs (a redeem body is one flat object), far below what the C
# parser's recursion limit allows, so RecursionError is never the way nesting gets refused.
MAX_DEPTH = 32


class JsonRejected(ValueError):
    """The bytes are not one strict RFC 8259 JSON text; the message says why, for the client."""


def _reject_constant(name: str) -> NoReturn:
    raise JsonRejected(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise JsonRejected("an object has the same key twice")
    return value


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, outside strings; linear in the text."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


# One decoder, built once: `json.loads` with options would build a new one per call.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=decimal.Decimal, object_pairs_hook=_unique_keys
)


def loads(body: bytes) -> Any:
    """Parse `body` as one JSON text, strictly; numbers with a fraction or exponent become Decimal.

    Decimal rather than float: `1e400` stays a number instead of becoming infinity, and nothing we
    read needs a float.
    """
    try:
        text = body.decode("utf-8")  # strict: invalid UTF-8 and UTF-8-encoded surrogates fail here
    except UnicodeDecodeError:
        raise JsonRejected("the body is not valid UTF-8") from None
    if text.startswith("\ufeff"):
        raise JsonRejected("the body starts with a byte order mark, which JSON forbids")
    # Counting is cheap; the character scan runs only when there are enough brackets to matter.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise JsonRejected(f"the body is nested more than {MAX_DEPTH} levels deep")
    try:
        value = _DECODER.decode(text)
    except JsonRejected:
        raise
    except (ValueError, RecursionError):
        raise JsonRejected("the body is not valid JSON") from None
    if "\\u" in text:  # only an escape can produce a lone surrogate: encoding finds any, in C
        try:
            json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRejected("the body has a lone surrogate escape (\\ud800-\\udfff)") from None
    return value
