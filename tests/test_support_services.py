"""tests/support/services.py: a missing service skips locally and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.support.services import require


def test_an_available_service_neither_skips_nor_fails() -> None:
    require("anything", True, "never shown")


def test_a_missing_service_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not available: no server"):
        require("PostgreSQL", False, "no server")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true and chromium is not available"):
        require("chromium", False, "install it")
