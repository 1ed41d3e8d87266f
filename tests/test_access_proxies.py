"""docs/PROTOCOL.md §13 through real reverse proxies: nginx `auth_request` and Caddy, configured with
the snippets docs/OPERATIONS.md gives (conf/nginx-access.conf, conf/Caddyfile.access), in front of
the real gateway, actors and database, fed payments by the fake wallet.

Every case runs through both proxies: no credential, unknown, active, revoked, expired and topped-up
service tokens, a session from the sign-in form, and open redirects in `next`. The access policy
here sells 2 s per minimum payment, so a token paid 1000 times the minimum is simply active.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.core.domain import ServiceToken
from tests.support.access import (
    Answer,
    bearer,
    claim_token,
    private_header,
    private_token,
    request,
    seen_by_the_gateway,
    served,
    top_up,
)
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline, pipeline_config
from tests.support.proxies import PROXIES, SECRET, Proxy

SECONDS_PER_PAYMENT = 2
LONG = 1000 * MIN_AMOUNT
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def shop(tmp_path: Path, wallet: FakeWallet) -> Iterator[Pipeline]:
    """Function-scoped, as every test's actors are stopped after it (tests/conftest.py)."""
    path = tmp_path / "shop.db"
    running = Pipeline(
        pipeline_config(
            path, wallet.url, MONITOR_START_HEIGHT="100", ACCESS_SECONDS_PER_PAYMENT=str(SECONDS_PER_PAYMENT)
        )
    )
    yield running
    running.close()


@pytest.fixture
def gateway(shop: Pipeline) -> Iterator[int]:
    with served(shop.daemon.access_app(), threads=8) as port:
        yield port


@pytest.fixture(params=sorted(PROXIES))
def proxy(request: pytest.FixtureRequest, gateway: int) -> Iterator[Proxy]:
    with PROXIES[request.param](f"127.0.0.1:{gateway}") as running:
        yield running


def get(proxy: Proxy, path: str = "/private/a.txt", headers: dict[str, str] | None = None) -> Answer:
    return request(proxy.port, "GET", path, headers)


def assert_denied(answer: Answer, status: int, reason: str) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert SECRET not in answer.body
    if status == 403:
        assert answer.header("X-Access-Reason") == reason


def sign_in(proxy: Proxy, **fields: str) -> Answer:
    return request(proxy.port, "POST", "/login", FORM, urllib.parse.urlencode(fields).encode())


def test_no_credential_shows_the_sign_in_page_with_401(proxy: Proxy) -> None:
    answer = get(proxy)
    assert_denied(answer, 401, "no_credential")
    assert b"<form" in answer.body and b'value="/private/a.txt"' in answer.body
    assert answer.all("WWW-Authenticate")[0].startswith(("PrivateToken ", "Bearer "))
    assert get(proxy, "/").body == b"a public page\n"  # the rest of the site is untouched


def test_an_unknown_token_is_401(proxy: Proxy) -> None:
    assert_denied(get(proxy, headers=bearer("ab" * 32)), 401, "unknown_token")


def test_an_active_token_reads_the_file_with_its_end(
    wallet: FakeWallet, shop: Pipeline, proxy: Proxy
) -> None:
    pid, token = claim_token(wallet, shop, LONG)
    answer = get(proxy, headers=bearer(token))
    assert (answer.status, answer.body) == (200, SECRET)
    claim = shop.claim_of(pid)
    assert claim is not None and claim.access_until is not None
    assert answer.header("X-Access-Until") == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(claim.access_until)
    )


def test_a_revoked_token_is_403_within_half_a_second(
    wallet: FakeWallet, shop: Pipeline, proxy: Proxy
) -> None:
    _, token = claim_token(wallet, shop, LONG)
    assert get(proxy, headers=bearer(token)).status == 200
    shop.revoke(ServiceToken.parse(token).digest().raw, "test")
    seen_by_the_gateway()
    assert_denied(get(proxy, headers=bearer(token)), 403, "token_revoked")


def test_an_expired_token_is_403_until_a_top_up(wallet: FakeWallet, shop: Pipeline, proxy: Proxy) -> None:
    pid, token = claim_token(wallet, shop, MIN_AMOUNT)  # 2 s
    claim = shop.claim_of(pid)
    assert claim is not None and claim.access_until is not None
    time.sleep(max(0.0, claim.access_until - time.time()) + 0.1)
    assert_denied(get(proxy, headers=bearer(token)), 403, "access_expired")
    top_up(wallet, shop, pid, LONG)
    seen_by_the_gateway()
    again = get(proxy, headers=bearer(token))
    assert (again.status, again.body) == (200, SECRET)


def test_signing_in_through_the_proxy_opens_a_session(
    wallet: FakeWallet, shop: Pipeline, proxy: Proxy
) -> None:
    _, token = claim_token(wallet, shop, LONG)
    answer = sign_in(proxy, token=token, next="/private/a.txt")
    assert (answer.status, answer.header("Location")) == (303, "/private/a.txt")
    cookie = (answer.header("Set-Cookie") or "").split(";")[0]
    assert cookie.startswith("anon_ticket_access=")
    assert get(proxy, headers={"Cookie": cookie}).body == SECRET
    shop.revoke(ServiceToken.parse(token).digest().raw)
    seen_by_the_gateway()
    assert_denied(get(proxy, headers={"Cookie": cookie}), 403, "token_revoked")


def test_a_private_token_opens_a_session_once(wallet: FakeWallet, shop: Pipeline, proxy: Proxy) -> None:
    """Spent at the first request, its session cookie handed on by the proxy; the same token again 403."""
    _, service_token = claim_token(wallet, shop, LONG)
    token = private_token(shop, service_token)
    first = get(proxy, headers=private_header(token))
    assert (first.status, first.body) == (200, SECRET)
    cookie = (first.header("Set-Cookie") or "").split(";")[0]
    assert cookie.startswith("anon_ticket_access=")
    assert get(proxy, headers={"Cookie": cookie}).body == SECRET
    assert_denied(get(proxy, headers=private_header(token)), 403, "token_spent")


def test_the_first_challenge_a_client_sees_is_privacy_pass(shop: Pipeline, proxy: Proxy) -> None:
    issuer = shop.daemon.private_tokens()
    assert issuer is not None
    expected = f'PrivateToken challenge="{issuer.encoded_challenge}", token-key="{issuer.token_key}"'
    assert get(proxy).all("WWW-Authenticate")[0] == expected


@pytest.mark.parametrize(
    "target", ["https://evil.example/x", "//evil.example", "/\\evil.example", "/%2F%2Fevil"]
)
def test_next_cannot_leave_the_site(wallet: FakeWallet, shop: Pipeline, proxy: Proxy, target: str) -> None:
    _, token = claim_token(wallet, shop, LONG)
    answer = sign_in(proxy, token=token, next=target)
    assert (answer.status, answer.header("Location")) == (303, "/")


def test_a_header_the_gateway_cannot_parse_is_never_a_500(proxy: Proxy) -> None:
    """A control character in Authorization: either the proxy refuses it (400) or the gateway's
    server answers 401; never the 500 that a 400 from the gateway would become in nginx."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(
            b"GET /private/a.txt HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer \x01\x02\r\nConnection: close\r\n\r\n"
        )
        head = sock.recv(200)
    status = int(head.split(b" ", 2)[1])
    assert status in (400, 401), head


def test_a_wrong_method_or_a_body_changes_nothing(wallet: FakeWallet, shop: Pipeline, proxy: Proxy) -> None:
    _, token = claim_token(wallet, shop, LONG)
    answer = request(proxy.port, "POST", "/private/a.txt", bearer(token), b"x" * 100_000)
    assert answer.status in (200, 405)  # nginx's static files refuse POST with 405; never a 500
    assert_denied(request(proxy.port, "DELETE", "/private/a.txt", None, b"x" * 1000), 401, "no_credential")


def test_the_docs_include_the_snippets_verbatim() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    for name in ("nginx-access.conf", "Caddyfile.access"):
        snippet = (Path(__file__).resolve().parents[1] / "conf" / name).read_text(encoding="utf-8")
        assert snippet in docs, f"docs/OPERATIONS.md does not show conf/{name} as it is"
