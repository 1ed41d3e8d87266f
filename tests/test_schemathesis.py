"""Schemathesis against the real daemon: the served OpenAPI document, both listeners, generated requests.

The document is loaded from where operators get it (`GET /api/v1/openapi.json` on the internal
listener, with the bearer token), and requests generated from it — valid ones, and for the public
listener invalid ones too — go to the listener each operation names. Every answer must be no 5xx, have
a documented content type and match its schema (docs/PROTOCOL.md §4, §5). Bounded: a few dozen
examples per listener, so the module runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 40


wallet = module_wallet()


@pytest.fixture(scope="module", autouse=True)
def _token_request_bodies() -> None:
    """docs/PROTOCOL.md §12's issuance body is raw bytes: sent as the octet streams schemathesis knows."""
    schemathesis.serializer.alias("application/private-token-request", "application/octet-stream")


def _served_schema(daemon: DaemonProcess) -> Any:
    return schemathesis.openapi.from_url(
        daemon.internal_url + "/api/v1/openapi.json", headers=daemon.auth_headers(), timeout=10
    )


def _run(strategy: st.SearchStrategy[Any], call: Callable[[Any], None]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        call(case)

    run()


def test_public_listener_conforms(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    claim_token(daemon, wallet)  # a wallet address is known: /info answers 200, not 503
    schema = _served_schema(daemon).include(tag="public")
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {
        ("GET", "/api/v1/info"),
        ("HEAD", "/api/v1/info"),
        ("POST", "/api/v1/redeem"),
        ("GET", "/.well-known/private-token-issuer-directory"),  # docs/PROTOCOL.md §12
        ("HEAD", "/.well-known/private-token-issuer-directory"),
        ("POST", "/api/v1/private-token/issue"),
    }
    strategy = st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    _run(strategy, lambda case: case.call_and_validate(base_url=daemon.public_url, checks=CHECKS))


def test_internal_listener_conforms(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, token = claim_token(daemon, wallet)
    schema = _served_schema(daemon).include(tag="internal")
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert ("POST", "/api/v1/token/{token}/revoke") in operations
    assert ("HEAD", "/api/v1/status") in operations
    assert ("POST", "/api/v1/private-token/spend") in operations
    headers = daemon.auth_headers()
    strategy = schema.as_strategy(generation_mode=GenerationMode.POSITIVE, headers=headers)
    _run(strategy, lambda case: case.call_and_validate(base_url=daemon.internal_url, checks=CHECKS))
    # The generated tokens were random: the real one is untouched and still active.
    record = daemon.internal("GET", f"/api/v1/token/{token}")
    assert record.status_code == 200 and record.json()["status"] == "active"
