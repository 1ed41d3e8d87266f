"""Compare wallet-rpc answers by shape (keys and value types) rather than by value."""

from __future__ import annotations

import json
from typing import Any


def shape(entry: dict[str, Any]) -> dict[str, Any]:
    """Key -> type name; nested objects recursively; lists as ["list", sorted element shapes]."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            out[key] = shape(value)
        elif isinstance(value, list):
            kinds = {json.dumps(shape(v)) if isinstance(v, dict) else type(v).__name__ for v in value}
            out[key] = ["list", sorted(kinds)]
        else:
            out[key] = type(value).__name__
    return out


def without_timestamps(value: Any) -> Any:
    """`value` with every `timestamp` (wall-clock dependent) checked to be an int and removed."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "timestamp":
                assert isinstance(item, int) and not isinstance(item, bool), item
                continue
            out[key] = without_timestamps(item)
        return out
    if isinstance(value, list):
        return [without_timestamps(item) for item in value]
    return value
