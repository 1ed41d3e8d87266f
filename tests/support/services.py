"""One place that decides what a test does when a service it needs is missing.

Locally a missing PostgreSQL server, monero package, Chromium or root is a skip that says why. Under
`CI=true` it is a failure: CI installs and starts all of them (scripts/test, .ci/run), so a skip there
would only hide that a whole part of the suite did not run.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(service: str, available: bool, how: str) -> None:
    """Return if `available`; otherwise skip (locally) or fail (under CI=true), naming `service`."""
    if available:
        return
    message = f"{service} is not available: {how}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def need(tool: str, how: str) -> str:
    """The path of the program `tool` on PATH; if it is missing, skip or fail as `require` does."""
    found = shutil.which(tool)
    require(tool, found is not None, how)
    assert found is not None
    return found
