"""Captured monero-wallet-rpc 0.18 request/response pairs (see README.md beside this file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES_DIR = Path(__file__).resolve().parent


def load_sample(name: str) -> dict[str, Any]:
    """The `{"request", "response"}` pair stored as `<name>.json` (the `.json` suffix is optional)."""
    path = SAMPLES_DIR / (name if name.endswith(".json") else f"{name}.json")
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
