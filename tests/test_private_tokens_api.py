"""docs/PROTOCOL.md §12 against the real daemon on real sockets: the issuer directory, the challenge in
/api/v1/info, issuance by service token within its allowance (free retries, refusals in order), the
spend endpoint on the internal listener, the token record's counts, and PRIVACY_PASS=off.

Tokens are requested and finalised with our own client code (anon_ticket/privacypass/client.py); the
same exchange with Cloudflare's privacypass-ts is in test_private_tokens_interop.py.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import Token, TokenChallenge, TokenRequest, b64url_decode, b64url_encode
from tests.support.daemon import DaemonProcess, claim_token, pay
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.private_tokens import REQUEST_TYPE, issue, published
from tests.support.waiting import wait_for

PER_PAYMENT = 4
ISSUE = "/api/v1/private-token/issue"
SPEND = "/api/v1/private-token/spend"
DIRECTORY = "/.well-known/private-token-issuer-directory"


wallet = module_wallet()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("private_tokens")
    env = {"PRIVACY_PASS_TOKENS_PER_PAYMENT": str(PER_PAYMENT), "PRIVACY_PASS_ORIGINS": "a.onion,b.onion"}
    with DaemonProcess(folder, wallet_url=wallet.url, env=env) as running:
        wait_for_info(running)
        yield running


def wait_for_info(daemon: DaemonProcess) -> None:
    """Until /api/v1/info answers 200: the wallet's address is known (after the first poll)."""
    wait_for("the wallet's address", lambda: True if daemon.public("GET", "/api/v1/info").ok else None, 15)


def fetch(
    daemon: DaemonProcess, service_token: str
) -> tuple[TokenRequest, requests.Response, client.PendingToken]:
    spki, challenge = published(daemon)
    request, pending = client.prepare(spki, challenge)
    return request, issue(daemon, service_token, request.encode()), pending


def token_for(daemon: DaemonProcess, service_token: str) -> Token:
    _, answer, pending = fetch(daemon, service_token)
    assert answer.status_code == 200, answer.text
    return pending.finalize(answer.content)


def spend(daemon: DaemonProcess, token: Token | str) -> requests.Response:
    encoded = token if isinstance(token, str) else b64url_encode(token.encode())
    return daemon.internal("POST", SPEND, json={"token": encoded})


def counts(daemon: DaemonProcess, service_token: str) -> dict[str, Any]:
    record: dict[str, Any] = daemon.internal("GET", f"/api/v1/token/{service_token}").json()
    return dict(record["private_tokens"])


# -- what is published ----------------------------------------------------------------------------


def test_the_directory_publishes_one_type_2_key_and_the_issuance_uri(daemon: DaemonProcess) -> None:
    answer = daemon.public("GET", DIRECTORY)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/private-token-issuer-directory"
    directory = answer.json()
    assert set(directory) == {"issuer-request-uri", "token-keys"}
    assert directory["issuer-request-uri"] == ISSUE
    (key,) = directory["token-keys"]
    assert key["token-type"] == 2
    assert isinstance(key["not-before"], int) and key["not-before"] > 1_700_000_000
    spki, challenge = published(daemon)
    assert b64url_decode(key["token-key"]) == spki
    assert challenge == TokenChallenge("anon_ticket", b"", ("a.onion", "b.onion"))
    info = daemon.public("GET", "/api/v1/info").json()["private_token"]
    assert info["issuer_request_uri"] == ISSUE
    head = daemon.public("HEAD", DIRECTORY)
    assert head.status_code == 200 and head.content == b""


def test_the_key_file_is_beside_the_database_private_and_kept_across_restarts(daemon: DaemonProcess) -> None:
    key_file = daemon.database_path.with_name("privacy_pass_key.pem")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    pem = key_file.read_bytes()
    assert b"PRIVATE KEY" in pem
    before, _ = published(daemon)
    daemon.stop()
    daemon.start()
    wait_for_info(daemon)
    after, _ = published(daemon)
    assert after == before and key_file.read_bytes() == pem
    assert pem.decode() not in daemon.log_text()  # nor any line of it
    assert not any(line in daemon.log_text() for line in pem.decode().splitlines()[1:-1])


# -- issuance -------------------------------------------------------------------------------------


def test_a_token_fetched_with_the_service_token_spends_once(
    daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    _, service_token = claim_token(daemon, wallet)
    token = token_for(daemon, service_token)
    first = spend(daemon, token)
    assert (first.status_code, first.json()) == (200, {"status": "spent"})
    again = spend(daemon, token)
    assert again.status_code == 409 and again.json()["error"] == "token_spent"
    assert counts(daemon, service_token) == {"allowance": PER_PAYMENT, "issued": 1}


def test_the_answer_is_256_bytes_of_private_token_response(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    _, answer, _ = fetch(daemon, service_token)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/private-token-response"
    assert len(answer.content) == 256


def test_a_retried_request_gets_the_same_bytes_and_costs_nothing(
    daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    _, service_token = claim_token(daemon, wallet)
    request, first, pending = fetch(daemon, service_token)
    again = [issue(daemon, service_token, request.encode()) for _ in range(3)]
    assert {answer.content for answer in again} == {first.content}
    assert counts(daemon, service_token)["issued"] == 1
    assert spend(daemon, pending.finalize(first.content)).status_code == 200


def test_the_allowance_is_used_up_then_refused_with_its_figures(
    daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    pid, service_token = claim_token(daemon, wallet)
    kept = fetch(daemon, service_token)
    for _ in range(PER_PAYMENT - 1):
        assert fetch(daemon, service_token)[1].status_code == 200
    _, refused, _ = fetch(daemon, service_token)
    assert refused.status_code == 402
    assert refused.json() == {
        "error": "allowance_exhausted",
        "message": refused.json()["message"],
        "allowance": PER_PAYMENT,
        "issued": PER_PAYMENT,
    }
    # A retry of a request already answered is still free and still answered.
    assert issue(daemon, service_token, kept[0].encode()).content == kept[1].content
    # A later payment to the same PID raises the allowance (half a minimum: half as many tokens more).
    pay(wallet, pid, daemon.min_payment_amount // 2, daemon.confirmations)

    def raised() -> bool | None:
        return True if counts(daemon, service_token)["allowance"] == PER_PAYMENT * 3 // 2 else None

    wait_for("the raised allowance", raised, 15)
    assert [fetch(daemon, service_token)[1].status_code for _ in range(3)] == [200, 200, 402]


def test_many_threads_never_exceed_the_allowance(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    spki, challenge = published(daemon)
    bodies = [client.prepare(spki, challenge)[0].encode() for _ in range(24)]
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def buyer(share: list[bytes]) -> None:
        barrier.wait()
        for body in share:
            statuses.append(issue(daemon, service_token, body).status_code)

    threads = [threading.Thread(target=buyer, args=(bodies[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * PER_PAYMENT + [402] * (24 - PER_PAYMENT)
    assert counts(daemon, service_token) == {"allowance": PER_PAYMENT, "issued": PER_PAYMENT}


def test_a_revoked_service_token_gets_410(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    earlier = token_for(daemon, service_token)
    assert daemon.internal("POST", f"/api/v1/token/{service_token}/revoke").status_code == 200
    _, refused, _ = fetch(daemon, service_token)
    assert refused.status_code == 410
    assert refused.json()["error"] == "token_revoked" and refused.json()["reason"] == "revoked"
    # Tokens fetched before cannot be told from others: they still spend (documented).
    assert spend(daemon, earlier).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": ""}, 401, "unauthorized"),
        ({"Authorization": "Bearer " + "ab" * 32}, 401, "unauthorized"),  # no claim has it
        ({"Authorization": "Basic " + "ab" * 32}, 401, "unauthorized"),
        ({"Authorization": "Bearer xyz"}, 401, "unauthorized"),
        ({"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        ({"Content-Type": ""}, 415, "unsupported_media_type"),
    ],
)
def test_issuance_refuses_wrong_credentials_and_media_types(
    daemon: DaemonProcess, wallet: FakeWallet, headers: dict[str, str], status: int, code: str
) -> None:
    _, service_token = claim_token(daemon, wallet)
    spki, challenge = published(daemon)
    body = client.prepare(spki, challenge)[0].encode()
    answer = issue(daemon, service_token, body, **headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts(daemon, service_token)["issued"] == 0


def test_issuance_refuses_malformed_token_requests(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    spki, challenge = published(daemon)
    good = client.prepare(spki, challenge)[0].encode()
    other_key = bytes([good[2] ^ 1])
    cases = {
        "short": good[:-1],
        "empty": b"",
        "type 1": b"\x00\x01" + good[2:],
        "another key id": good[:2] + other_key + good[3:],
        "not below the modulus": good[:3] + b"\xff" * 256,
    }
    for name, body in cases.items():
        answer = issue(daemon, service_token, body)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request"), name
    too_long = issue(daemon, service_token, good + b"\x00")
    assert (too_long.status_code, too_long.json()["error"]) == (413, "payload_too_large")
    chunked = daemon.public(
        "POST",
        ISSUE,
        data=iter([good, b"x" * 300]),
        headers={"Content-Type": REQUEST_TYPE, "Authorization": f"Bearer {service_token}"},
    )
    assert chunked.status_code == 413
    assert counts(daemon, service_token)["issued"] == 0
    wrong_method = daemon.public("GET", ISSUE)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"


# -- spends ---------------------------------------------------------------------------------------


def test_spend_refuses_what_is_not_our_token(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    token = token_for(daemon, service_token)
    forged = Token(token.nonce, token.challenge_digest, token.token_key_id, bytes(256))
    other_nonce = Token(bytes(32), token.challenge_digest, token.token_key_id, token.authenticator)
    other_challenge = Token(token.nonce, bytes(32), token.token_key_id, token.authenticator)
    for bad in (
        forged,
        other_nonce,
        other_challenge,
        "not base64!",
        b64url_encode(b"\x00\x02short"),
        "A" * 2000,
    ):
        answer = spend(daemon, bad)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_token"), str(bad)[:80]
    oversized = spend(daemon, "A" * 5000)
    assert (oversized.status_code, oversized.json()["error"]) == (413, "payload_too_large")
    for body in ({}, {"token": 5}, ["token"]):
        answer = daemon.internal("POST", SPEND, json=body)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert (
        daemon.internal("POST", SPEND, data=b"token=x", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    assert (
        daemon.internal("POST", SPEND, json={"token": b64url_encode(token.encode())}, auth=False).status_code
        == 401
    )
    assert spend(daemon, token).status_code == 200  # none of that spent it


def test_spends_racing_for_one_token_succeed_once(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    token = token_for(daemon, service_token)
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def spender() -> None:
        barrier.wait()
        statuses.append(spend(daemon, token).status_code)

    threads = [threading.Thread(target=spender) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]


# -- off ------------------------------------------------------------------------------------------


def test_privacy_pass_off_hides_every_part(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env={"PRIVACY_PASS": "off"}) as off:
        _, service_token = claim_token(off, wallet)
        assert "private_token" not in off.public("GET", "/api/v1/info").json()
        assert off.public("GET", DIRECTORY).status_code == 404
        assert (
            off.public("POST", ISSUE, data=b"x" * 259, headers={"Content-Type": REQUEST_TYPE}).status_code
            == 404
        )
        assert off.internal("POST", SPEND, json={"token": "x"}).status_code == 404
        assert "private_tokens" not in off.internal("GET", f"/api/v1/token/{service_token}").json()
        assert not (tmp_path / "privacy_pass_key.pem").exists()


def test_an_unusable_key_file_stops_the_start_naming_it(tmp_path: Path, wallet: FakeWallet) -> None:
    key_file = tmp_path / "privacy_pass_key.pem"
    key_file.write_text("not a key\n")
    key_file.chmod(0o644)
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url)
    daemon.start(wait=False)
    assert daemon.wait_exit() != 0
    assert str(key_file) in daemon.log_text()
    assert "Traceback" not in daemon.log_text()


def test_the_worked_example_of_the_protocol_is_true() -> None:
    """docs/PROTOCOL.md §12's HTTP example: its challenge, encodings and digest are what the code makes."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    example = text[text.index("### A worked example over HTTP") : text.index("### Buyer's client")]
    challenge = TokenChallenge("anon_ticket", b"", ("search.example.onion",))
    assert f'"challenge": "{b64url_encode(challenge.encode())}"' in example
    assert challenge.encode().hex() == "".join(
        example.split("The challenge is hex `")[1].split("`")[0].split()
    )
    assert challenge.digest().hex() in example


def test_issuance_is_rate_limited_per_service_token(tmp_path: Path, wallet: FakeWallet) -> None:
    env = {"PRIVACY_PASS_ISSUE_PER_MINUTE": "3"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as limited:
        _, first = claim_token(limited, wallet)
        _, second = claim_token(limited, wallet)
        statuses = [fetch(limited, first)[1].status_code for _ in range(3)]
        refused = fetch(limited, first)[1]
        assert statuses == [200, 200, 200]
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert fetch(limited, second)[1].status_code == 200  # another buyer is not held back
        assert counts(limited, first)["issued"] == 3


def test_a_new_key_makes_tokens_fetched_before_stop_verifying(tmp_path: Path, wallet: FakeWallet) -> None:
    """docs/OPERATIONS.md §17, rotating the key: what the operator is told happens."""
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as rotated:
        _, service_token = claim_token(rotated, wallet)
        old_key, _ = published(rotated)
        kept = token_for(rotated, service_token)
        rotated.stop()
        key_file = rotated.database_path.with_name("privacy_pass_key.pem")
        key_file.rename(tmp_path / "old_key.pem")
        rotated.start()
        wait_for_info(rotated)
        new_key, _ = published(rotated)
        assert new_key != old_key
        refused = spend(rotated, kept)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_token")
        assert spend(rotated, token_for(rotated, service_token)).status_code == 200


def test_what_was_answered_survives_a_crash(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    """Durable before the answer: a SIGKILL right after loses no count and no spend."""
    _, service_token = claim_token(daemon, wallet)
    request, first, pending = fetch(daemon, service_token)
    assert first.status_code == 200
    token = pending.finalize(first.content)
    assert spend(daemon, token).status_code == 200
    daemon.kill()
    daemon.start()
    wait_for_info(daemon)
    assert counts(daemon, service_token)["issued"] == 1
    assert spend(daemon, token).status_code == 409
    again = issue(daemon, service_token, request.encode())
    assert again.content == first.content and counts(daemon, service_token)["issued"] == 1
