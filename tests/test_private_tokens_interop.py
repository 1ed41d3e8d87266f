"""docs/PROTOCOL.md §12 end to end with the reference implementation: `@cloudflare/privacypass-ts`
(0.8.1, pinned in web/package-lock.json, in node) fetches tokens from the real daemon over HTTP, its
`Origin` verifies them and our spend endpoint accepts each exactly once; tokens our command-line client
fetched pass its `Origin` too. (The crypto alone, without the daemon: tests/privacypass/.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.privacypass.wire import b64url_decode, b64url_encode
from tests.client.fakeserver import run_cli
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.privacypass_node import ReferenceImplementation, install_web_packages

SPEND = "/api/v1/private-token/spend"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceImplementation]:
    with ReferenceImplementation(install_web_packages(tmp_path_factory.mktemp("web-packages"))) as running:
        yield running


wallet = module_wallet()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    env = {"PRIVACY_PASS_ORIGINS": "search.example.onion"}
    with DaemonProcess(tmp_path_factory.mktemp("interop"), wallet_url=wallet.url, env=env) as running:
        yield running


def published(daemon: DaemonProcess) -> tuple[bytes, bytes]:
    info = daemon.public("GET", "/api/v1/info").json()["private_token"]
    directory = daemon.public("GET", "/.well-known/private-token-issuer-directory").json()
    assert directory["token-keys"][0]["token-key"] == info["token_key"]
    return b64url_decode(info["challenge"]), b64url_decode(info["token_key"])


def test_their_client_gets_tokens_their_origin_verifies_and_we_spend_once(
    reference: ReferenceImplementation, daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    _, service_token = claim_token(daemon, wallet)
    challenge, token_key = published(daemon)
    for _ in range(3):
        client_id, token_request = reference.request(challenge, token_key)
        answer = daemon.public(
            "POST",
            "/api/v1/private-token/issue",
            data=token_request,
            headers={
                "Content-Type": "application/private-token-request",
                "Authorization": f"Bearer {service_token}",
            },
        )
        assert answer.status_code == 200, answer.text
        token = reference.finalize(client_id, answer.content)
        assert reference.verify(token, token_key)
        # Their header, read by our spend path through the gateway's parser, and spent once.
        header = reference.authorization(token)
        encoded = header.split("token=", 1)[1].strip('"')
        assert daemon.internal("POST", SPEND, json={"token": encoded}).status_code == 200
        assert daemon.internal("POST", SPEND, json={"token": b64url_encode(token)}).status_code == 409


def test_tokens_our_client_fetched_pass_their_origin(
    reference: ReferenceImplementation, daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    out = tmp_path / "tokens.txt"
    run = run_cli(
        "tokens", "--server", daemon.public_url, "--count", "3", "--out", str(out), stdin=service_token + "\n"
    )
    assert run.code == 0, run.err
    _, token_key = published(daemon)
    for encoded in out.read_text().split():
        assert reference.verify(b64url_decode(encoded), token_key)
        assert daemon.internal("POST", SPEND, json={"token": encoded}).status_code == 200
