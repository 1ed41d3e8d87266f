"""docs/PROTOCOL.md §12 on several nodes (§11): two daemons on one fresh PostgreSQL schema sharing one
key file. Concurrent issuance on both never exceeds a service token's allowance, and a token spent on
both at the same moment is spent once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import b64url_encode
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.nodes import cluster_node, stop_each
from tests.support.private_tokens import issue, published
from tests.test_storage_postgres import fresh_schema_url

PER_PAYMENT = 5
TOKEN = "private-token-nodes-internal-0123"


wallet = module_wallet()


@pytest.fixture(scope="module")
def nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet
) -> Iterator[list[DaemonProcess]]:
    url = fresh_schema_url(request.config)
    workdir = tmp_path_factory.mktemp("pp_nodes")
    key_file = workdir / "shared" / "privacy_pass_key.pem"
    key_file.parent.mkdir()
    started = [
        cluster_node(
            workdir,
            url,
            wallet,
            index,
            TOKEN,
            PUBLIC_THREADS="8",
            INTERNAL_THREADS="4",
            PRIVACY_PASS_KEY_FILE=str(key_file),
            PRIVACY_PASS_TOKENS_PER_PAYMENT=str(PER_PAYMENT),
        )
        for index in range(2)
    ]
    try:
        started[0].start()  # the first creates the key; the second (below) finds it
        started[1].start()
        yield started
    finally:
        stop_each(started)


def test_every_node_publishes_the_one_shared_key(nodes: list[DaemonProcess]) -> None:
    assert published(nodes[0]) == published(nodes[1])


def test_concurrent_issuance_on_two_nodes_never_exceeds_the_allowance(
    nodes: list[DaemonProcess], wallet: FakeWallet
) -> None:
    _, service_token = claim_token(nodes[0], wallet)
    spki, challenge = published(nodes[0])
    bodies = [client.prepare(spki, challenge)[0].encode() for _ in range(24)]
    statuses: list[int] = []
    barrier = threading.Barrier(12)

    def buyer(node: DaemonProcess, share: list[bytes]) -> None:
        barrier.wait()
        for body in share:
            statuses.append(issue(node, service_token, body).status_code)

    threads = [threading.Thread(target=buyer, args=(nodes[i % 2], bodies[i::12])) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * PER_PAYMENT + [402] * (24 - PER_PAYMENT)
    for node in nodes:
        record = node.internal("GET", f"/api/v1/token/{service_token}").json()
        assert record["private_tokens"] == {"allowance": PER_PAYMENT, "issued": PER_PAYMENT}


def test_a_request_answered_by_one_node_is_answered_again_by_the_other_for_free(
    nodes: list[DaemonProcess], wallet: FakeWallet
) -> None:
    _, service_token = claim_token(nodes[1], wallet)
    spki, challenge = published(nodes[0])
    request, pending = client.prepare(spki, challenge)
    first = issue(nodes[0], service_token, request.encode())
    again = issue(nodes[1], service_token, request.encode())
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert nodes[1].internal("GET", f"/api/v1/token/{service_token}").json()["private_tokens"]["issued"] == 1
    token = b64url_encode(pending.finalize(again.content).encode())
    assert nodes[1].internal("POST", "/api/v1/private-token/spend", json={"token": token}).status_code == 200


def test_a_token_spent_on_two_nodes_at_once_is_spent_once(
    nodes: list[DaemonProcess], wallet: FakeWallet
) -> None:
    _, service_token = claim_token(nodes[0], wallet)
    spki, challenge = published(nodes[0])
    tokens = []
    for _ in range(PER_PAYMENT):
        request, pending = client.prepare(spki, challenge)
        answer = issue(nodes[0], service_token, request.encode())
        assert answer.status_code == 200
        tokens.append(b64url_encode(pending.finalize(answer.content).encode()))
    for token in tokens:
        assert sorted(spend_at_once(nodes, token, 4)) == [200, 409, 409, 409]


def spend_at_once(nodes: list[DaemonProcess], token: str, count: int) -> list[int]:
    """`count` spends of `token` released together, alternating between the nodes."""
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def spender(node: DaemonProcess) -> None:
        barrier.wait()
        answer = node.internal("POST", "/api/v1/private-token/spend", json={"token": token})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=spender, args=(nodes[i % len(nodes)],)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_the_key_file_is_where_it_was_given_and_nowhere_else(nodes: list[DaemonProcess]) -> None:
    for node in nodes:
        assert not (Path(node.workdir) / "privacy_pass_key.pem").exists()
    key_file = Path(nodes[0].settings["PRIVACY_PASS_KEY_FILE"])
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
