"""The published test vectors the suite checks against (tests/privacypass/data/, each file says where
its values come from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def rfc9474() -> list[dict[str, Any]]:
    """RFC 9474 Appendix A: one vector per named RSABSSA variant."""
    vectors: list[dict[str, Any]] = json.loads((DATA / "rfc9474_vectors.json").read_text())["vectors"]
    return vectors


def rfc9578_type2() -> list[dict[str, Any]]:
    """RFC 9578 token type 2 issuance: five cases with key, challenge, randomness and wire bytes."""
    vectors: list[dict[str, Any]] = json.loads((DATA / "rfc9578_type2_vectors.json").read_text())["vectors"]
    return vectors


def number(text: str) -> int:
    """A vector's integer (hex, with or without 0x)."""
    return int(text.removeprefix("0x"), 16)
