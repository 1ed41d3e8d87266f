"""The OpenAPI document: valid OpenAPI 3.1, complete against docs/PROTOCOL.md §4/§5, and true to the daemon.

"True" is checked by sending real requests to the real daemon process and validating every answer
(status, JSON body, required headers) against the schema the document gives for it, so the document
cannot drift from the code unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from anon_ticket import __version__
from anon_ticket.domain import PaymentId
from anon_ticket.http import openapi
from tests.support.daemon import DaemonProcess, claim_token, pay, redeem_until
from tests.support.fake_wallet import FakeWallet

DOC = openapi.document()
DOC_URI = "urn:anon-ticket:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT202012)
)
PUBLIC_PORT, INTERNAL_PORT = "8080", "8081"

# docs/PROTOCOL.md §4/§5: every status each operation can answer.
EXPECTED: dict[tuple[str, str], set[int]] = {
    ("/api/v1/info", "get"): {200, 503},
    ("/api/v1/redeem", "post"): {200, 202, 400, 402, 404, 410, 413, 415, 429, 503},
    ("/api/v1/token/{token}", "get"): {200, 400, 401, 404, 503},
    ("/api/v1/token/{token}/revoke", "post"): {200, 400, 401, 404, 413, 415, 503},
    ("/api/v1/status", "get"): {200, 401, 503},
    ("/api/v1/openapi.json", "get"): {200, 401},
    ("/healthz", "get"): {200, 503},
    ("/healthz", "head"): {200, 503},
}
# What a test cannot provoke from outside without faults the daemon does not expose.
NOT_PROVOKED = {
    ("/api/v1/redeem", "post", 429),
    ("/api/v1/redeem", "post", 503),
    ("/api/v1/token/{token}", "get", 503),
    ("/api/v1/token/{token}/revoke", "post", 503),
    ("/api/v1/status", "get", 503),
    ("/healthz", "get", 503),
    ("/healthz", "head", 503),
}


def _pointer_part(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> Any:
    node: Any = DOC
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


class Checker:
    """Validates real answers against the document and remembers which documented ones it saw."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, int]] = set()

    def response_object(self, pointer: str) -> tuple[str, dict[str, Any]]:
        node = _resolve(pointer)
        while "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = _resolve(pointer)
        return pointer, node

    def check(self, response: requests.Response, path: str, method: str) -> Any:
        operation = DOC["paths"][path][method]
        status = str(response.status_code)
        assert status in operation["responses"], (
            f"{method.upper()} {path} answered {status}, which the document does not list: {response.text}"
        )
        self.seen.add((path, method, response.status_code))
        pointer = f"/paths/{_pointer_part(path)}/{method}/responses/{status}"
        return self._validate(response, pointer)

    def check_component(self, response: requests.Response, name: str) -> Any:
        return self._validate(response, f"/components/responses/{name}")

    def _validate(self, response: requests.Response, pointer: str) -> Any:
        pointer, spec = self.response_object(pointer)
        for name in spec.get("headers", {}):
            header_pointer, header = self.response_object(f"{pointer}/headers/{_pointer_part(name)}")
            if header.get("required"):
                assert name in response.headers, f"{name} missing from {response.status_code}"
            if name in response.headers:
                _validator(f"{header_pointer}/schema").validate(response.headers[name])
        if "content" not in spec:  # HEAD: headers only
            assert response.content == b""
            return None
        assert list(spec["content"]) == ["application/json"]
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        _validator(f"{pointer}/content/application~1json/schema").validate(body)
        return body


def _validator(pointer: str) -> jsonschema.Draft202012Validator:
    _resolve(pointer)  # a KeyError here is a typo in the test, not a validation failure
    return jsonschema.Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


# -- the document itself ----------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    validate_spec(DOC)
    source = Path(openapi.__file__).with_name("openapi.json")
    assert json.loads(source.read_text(encoding="utf-8")) == DOC
    assert DOC["info"]["version"] == __version__


def test_document_covers_every_contract_status() -> None:
    operations = {
        (path, method)
        for path, item in DOC["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch", "head", "options")
    }
    assert operations == set(EXPECTED)
    for (path, method), statuses in EXPECTED.items():
        documented = {int(code) for code in DOC["paths"][path][method]["responses"]}
        assert documented == statuses, (path, method)
    assert {"NotFound", "MethodNotAllowed"} <= set(DOC["components"]["responses"])


def test_document_separates_the_listeners_and_secures_the_internal_one() -> None:
    for path, item in DOC["paths"].items():
        (server,) = item["servers"]
        for method in ("get", "post"):
            operation = item.get(method)
            if operation is None:
                continue
            (tag,) = operation["tags"]
            public = path in ("/api/v1/info", "/api/v1/redeem")
            assert tag == ("public" if public else "internal")
            assert server["url"].endswith(PUBLIC_PORT if public else INTERNAL_PORT)
            needs_token = not public and path != "/healthz"
            assert operation["security"] == ([{"internalBearer": []}] if needs_token else [])
    assert DOC["components"]["securitySchemes"]["internalBearer"] == {
        **DOC["components"]["securitySchemes"]["internalBearer"],
        "type": "http",
        "scheme": "bearer",
    }


def test_schemas_are_strict_enough_to_catch_drift() -> None:
    """The validator used below is not vacuous: wrong shapes fail."""
    record = _validator("/components/schemas/TokenRecord")
    good = {
        "token": "a" * 64,
        "status": "active",
        "amount": 1,
        "issued_at": "2026-11-27T23:59:59Z",
        "revoked_at": None,
        "revoke_reason": None,
    }
    record.validate(good)
    for bad in (
        {**good, "extra": 1},
        {**good, "amount": "1"},
        {**good, "issued_at": "2026-11-27 23:59:59"},
        {**good, "token": "A" * 64},
        {k: v for k, v in good.items() if k != "revoked_at"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            record.validate(bad)
    error = _validator("/paths/~1api~1v1~1redeem/post/responses/404/content/application~1json/schema")
    error.validate({"error": "payment_not_found", "message": "x"})
    with pytest.raises(jsonschema.ValidationError):
        error.validate({"error": "not_found", "message": "x"})


# -- the document against the running daemon ---------------------------------------------------


@pytest.fixture(scope="module")
def wallet() -> Iterator[FakeWallet]:
    """One wallet for the module, shared with its daemon (the `daemon` fixture of conftest.py)."""
    with FakeWallet(height=200) as fake:
        yield fake


def test_served_document_is_the_file_and_needs_auth(daemon: DaemonProcess) -> None:
    served = daemon.internal("GET", "/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json; charset=utf-8"
    assert served.json() == DOC
    assert daemon.internal("GET", "/api/v1/openapi.json", auth=False).status_code == 401
    post = daemon.internal("POST", "/api/v1/openapi.json")
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"
    assert daemon.public("GET", "/api/v1/openapi.json").status_code == 404


def test_real_answers_match_the_document(daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path) -> None:
    check = Checker()
    redeem = "/api/v1/redeem"

    # Public listener.
    check.check(daemon.public("GET", "/api/v1/info"), "/api/v1/info", "get")
    plain = {"Content-Type": "text/plain"}
    check.check(daemon.public("POST", redeem, data=b"{}", headers=plain), redeem, "post")
    check.check(daemon.public("POST", redeem, json={"pid": "a" * 64, "pad": "x" * 2000}), redeem, "post")
    check.check(daemon.public("POST", redeem, json={}), redeem, "post")
    check.check(daemon.public("POST", redeem, json={"pid": "0x" + "a" * 62}), redeem, "post")
    check.check(daemon.redeem(PaymentId.generate()), redeem, "post")

    daemon.wait_scanning()
    pending = PaymentId.generate()
    pay(wallet, pending, daemon.min_payment_amount, confirmations=0)
    body = check.check(redeem_until(daemon, pending, 202), redeem, "post")
    assert body == {
        "status": "pending",
        "amount": daemon.min_payment_amount,
        "confirmations": 0,
        "required_confirmations": daemon.confirmations,
    }
    short = PaymentId.generate()
    pay(wallet, short, daemon.min_payment_amount - 1, daemon.confirmations)
    body = check.check(redeem_until(daemon, short, 402), redeem, "post")
    assert body["amount"] == daemon.min_payment_amount - 1
    assert body["min_payment_amount"] == daemon.min_payment_amount

    pid, token = claim_token(daemon, wallet)
    check.check(daemon.redeem(pid), redeem, "post")  # already_claimed

    check.check_component(daemon.public("GET", redeem), "MethodNotAllowed")
    check.check_component(daemon.public("GET", "/api/v1/status"), "NotFound")

    # Internal listener.
    token_path, revoke_path = "/api/v1/token/{token}", "/api/v1/token/{token}/revoke"
    body = check.check(daemon.internal("GET", f"/api/v1/token/{token}"), token_path, "get")
    assert body["status"] == "active"
    check.check(daemon.internal("GET", "/api/v1/token/xyz"), token_path, "get")
    check.check(daemon.internal("GET", f"/api/v1/token/{'cd' * 32}"), token_path, "get")
    check.check(daemon.internal("GET", f"/api/v1/token/{token}", auth=False), token_path, "get")

    revoke = f"/api/v1/token/{token}/revoke"
    check.check(daemon.internal("POST", "/api/v1/token/xyz/revoke"), revoke_path, "post")
    check.check(daemon.internal("POST", f"/api/v1/token/{'cd' * 32}/revoke"), revoke_path, "post")
    check.check(daemon.internal("POST", revoke, auth=False), revoke_path, "post")
    check.check(daemon.internal("POST", revoke, json={"reason": "x" * 5000}), revoke_path, "post")
    check.check(
        daemon.internal("POST", revoke, data=b"reason=x", headers={"Content-Type": "text/plain"}),
        revoke_path,
        "post",
    )
    body = check.check(daemon.internal("POST", revoke, json={"reason": "schema test"}), revoke_path, "post")
    assert body["status"] == "revoked"
    body = check.check(daemon.redeem(pid), redeem, "post")
    assert body["reason"] == "revoked"

    check.check(daemon.internal("GET", "/api/v1/status"), "/api/v1/status", "get")
    check.check(daemon.internal("GET", "/api/v1/status", auth=False), "/api/v1/status", "get")
    check.check(daemon.internal("GET", "/api/v1/openapi.json"), "/api/v1/openapi.json", "get")
    check.check(daemon.internal("GET", "/api/v1/openapi.json", auth=False), "/api/v1/openapi.json", "get")
    check.check(daemon.internal("GET", "/healthz", auth=False), "/healthz", "get")
    check.check(daemon.internal("HEAD", "/healthz", auth=False), "/healthz", "head")
    check.check_component(daemon.internal("DELETE", "/api/v1/status"), "MethodNotAllowed")
    check.check_component(daemon.internal("GET", "/api/v1/nothing"), "NotFound")

    # A daemon whose wallet never answered: /info is 503, status fields are null.
    no_wallet = {"INTERNAL_API_TOKEN": "no-wallet-token-0123456789"}
    with DaemonProcess(tmp_path / "nowallet", env=no_wallet) as blind:
        unavailable = check.check(blind.public("GET", "/api/v1/info"), "/api/v1/info", "get")
        assert unavailable["error"] == "unavailable"
        status = check.check(blind.internal("GET", "/api/v1/status"), "/api/v1/status", "get")
        assert status["scan_cursor"] is None and status["wallet"]["height"] is None

    documented = {(path, method, code) for (path, method), codes in EXPECTED.items() for code in codes}
    assert documented - check.seen == NOT_PROVOKED
