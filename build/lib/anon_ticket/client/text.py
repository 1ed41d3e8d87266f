"""Turning numbers and untrusted server text into something safe to show on a terminal.

The server may be hostile: its messages could carry terminal escape sequences that rewrite what the
buyer sees (a fake token, a fake address). Every string that came over the network goes through
`clean()` before it is printed.
"""

from __future__ import annotations

import unicodedata

ATOMIC_PER_XMR = 10**12
MAX_SHOWN_CHARS = 300


def format_xmr(atomic: int) -> str:
    """Exact decimal XMR (no float rounding), without trailing zeros: 10000000000 → "0.01"."""
    whole, fraction = divmod(atomic, ATOMIC_PER_XMR)
    digits = f"{fraction:012d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def clean(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Drop control and format characters (escapes, bidi overrides), make all whitespace one space, cap."""
    kept = "".join(_shown(char) for char in text)
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def _shown(char: str) -> str:
    category = unicodedata.category(char)
    if char.isspace():
        return " "
    if category.startswith("C"):
        return ""
    return char
