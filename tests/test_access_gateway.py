"""docs/PROTOCOL.md §13, the access gateway, over a real socket to the real app, actors and database.

The gateway runs in-process here (fast, and the test drives the wallet between requests); the same
cases through real nginx and Caddy are in test_access_proxies.py, and the third listener of the
daemon as a process in test_access_listener.py.
"""

from __future__ import annotations

import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.access.app import AccessApp, AccessSettings
from anon_ticket.access.lookups import CACHE_SECS, ClaimLookups
from anon_ticket.access.private_tokens import PrivateTokenSpender
from anon_ticket.access.sessions import SESSIONS_PER_TOKEN, Sessions
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.core.domain import ServiceToken
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.errors import StorageError
from anon_ticket.privacypass import client, issuer
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import TokenChallenge, b64url_decode, b64url_encode
from anon_ticket.service.private_tokens import PrivateTokens, PrivateTokenSettings
from anon_ticket.storage.sqlite import SqliteStore
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

REASONS = {
    "no_credential",
    "unknown_token",
    "token_revoked",
    "access_expired",
    "token_spent",
    "invalid_token",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def gateway(pipeline: Pipeline) -> Iterator[int]:
    with served(pipeline.daemon.access_app()) as port:
        yield port


def timed_pipeline(tmp_path: Path, wallet: FakeWallet, seconds: int) -> Pipeline:
    return Pipeline(
        pipeline_config(
            tmp_path / "timed.db",
            wallet.url,
            MONITOR_START_HEIGHT="100",
            ACCESS_SECONDS_PER_PAYMENT=str(seconds),
        )
    )


def assert_refused(answer: Answer, status: int, reason: str) -> None:
    assert (answer.status, answer.header("X-Access-Reason")) == (status, reason), answer.body
    body = answer.json()
    assert body["error"] == reason and body["message"]
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    challenges = answer.all("WWW-Authenticate")
    if status == 401:
        assert challenges[-1] == 'Bearer realm="anon_ticket"'
    else:
        assert challenges == []


def auth(port: int, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    return request(port, method, "/auth", headers)


# -- /auth with a service token ------------------------------------------------------------------


def test_no_credential_is_401_with_the_challenges(pipeline: Pipeline, gateway: int) -> None:
    """The RFC 9577 challenge first (nginx passes on only the first), the Bearer one second."""
    answer = auth(gateway)
    assert_refused(answer, 401, "no_credential")
    issuer_service = pipeline.daemon.private_tokens()
    assert issuer_service is not None
    challenge, key = issuer_service.encoded_challenge, issuer_service.token_key
    assert answer.all("WWW-Authenticate") == [
        f'PrivateToken challenge="{challenge}", token-key="{key}"',
        'Bearer realm="anon_ticket"',
    ]


def test_without_privacy_pass_only_the_bearer_challenge(tmp_path: Path, wallet: FakeWallet) -> None:
    plain = Pipeline(pipeline_config(tmp_path / "off.db", wallet.url, PRIVACY_PASS="off"))
    try:
        with served(plain.daemon.access_app()) as port:
            answer = auth(port)
            assert answer.all("WWW-Authenticate") == ['Bearer realm="anon_ticket"']
            assert_refused(auth(port, {"Authorization": 'PrivateToken token="AAIA"'}), 401, "invalid_token")
    finally:
        plain.close()


# -- /auth with a Privacy Pass token -------------------------------------------------------------------


def test_a_private_token_is_spent_once_and_opens_a_session(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, service_token = claim_token(wallet, pipeline)
    token = private_token(pipeline, service_token)
    first = auth(gateway, private_header(token))
    assert (first.status, first.body) == (200, b"")
    assert first.header("X-Access-Until") is None
    cookie = session_cookie(first)
    assert auth(gateway, {"Cookie": cookie}).status == 200
    assert_refused(auth(gateway, private_header(token)), 403, "token_spent")


def test_a_private_token_session_keeps_nothing_of_the_token(wallet: FakeWallet, pipeline: Pipeline) -> None:
    """A Privacy Pass session is a random value's digest and an expiry: no token digest, no nonce."""
    _, service_token = claim_token(wallet, pipeline)
    token = private_token(pipeline, service_token)
    app = pipeline.daemon.access_app()
    with served(app) as port:
        cookie = session_cookie(auth(port, private_header(token)))
    value = cookie.partition("=")[2]
    session = app.sessions.find(value)
    assert session is not None and session.token_digest is None
    assert session.expires_at > time.time() + 3500
    encoded = b64url_encode(token.encode())
    assert value not in encoded and encoded not in value


def test_a_token_of_another_key_or_garbage_is_401_invalid_token(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    issuer_service = pipeline.daemon.private_tokens()
    assert issuer_service is not None
    challenge = TokenChallenge.decode(b64url_decode(issuer_service.encoded_challenge))
    other = IssuerKey.generate()
    request, pending = client.prepare(other.spki, challenge)
    forged = pending.finalize(issuer.blind_sign(other, request))
    assert_refused(auth(gateway, private_header(forged)), 401, "invalid_token")
    assert_refused(auth(gateway, {"Authorization": 'PrivateToken token="AAIA"'}), 401, "invalid_token")
    assert_refused(auth(gateway, {"Authorization": "PrivateToken nonsense"}), 401, "invalid_token")


def test_an_unknown_or_malformed_token_is_401_unknown_token(gateway: int) -> None:
    assert_refused(auth(gateway, bearer("ab" * 32)), 401, "unknown_token")
    for value in ("Bearer", "Bearer xyz", "Bearer " + "ab" * 33, "bearer  " + "0" * 63):
        assert_refused(auth(gateway, {"Authorization": value}), 401, "unknown_token")


def test_an_active_token_passes_with_an_empty_body_and_no_end(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, token = claim_token(wallet, pipeline)
    for header in (f"Bearer {token}", f"bearer   {token.upper()}", f"BEARER {token}"):
        answer = auth(gateway, {"Authorization": header})
        assert (answer.status, answer.body) == (200, b"")
        assert answer.header("X-Access-Until") is None  # no policy: good until revoked
        assert answer.header("Set-Cookie") is None  # a bearer request opens no session


def test_every_method_gets_the_same_three_statuses(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, token = claim_token(wallet, pipeline)
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"):
        assert auth(gateway, bearer(token), method).status == 200
        assert auth(gateway, None, method).status == 401


def test_a_revocation_counts_within_half_a_second(wallet: FakeWallet, pipeline: Pipeline) -> None:
    """Each claim read is reused for at most CACHE_SECS (0.5 s): until then a revoked token may still
    pass, from then on it is refused (here on a clock the test moves, so the bound itself is shown)."""
    _, token = claim_token(wallet, pipeline)
    now = [1000.0]
    lookups = ClaimLookups(pipeline.daemon.database.reader, clock=lambda: now[0])
    app = AccessApp(pipeline.daemon.database.reader, AccessSettings(3600, policy=False), lookups=lookups)
    with served(app) as port:
        assert auth(port, bearer(token)).status == 200
        assert pipeline.revoke(ServiceToken.parse(token).digest().raw, "abuse") is not None
        now[0] += CACHE_SECS - 0.01
        assert auth(port, bearer(token)).status == 200  # the read of 0.49 s ago
        now[0] += 0.01
        assert_refused(auth(port, bearer(token)), 403, "token_revoked")


def test_a_revocation_counts_on_the_real_clock_too(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, token = claim_token(wallet, pipeline)
    assert auth(gateway, bearer(token)).status == 200
    assert pipeline.revoke(ServiceToken.parse(token).digest().raw, "abuse") is not None
    seen_by_the_gateway()
    assert_refused(auth(gateway, bearer(token)), 403, "token_revoked")


def test_a_storage_failure_fails_closed_with_401(tmp_path: Path, pipeline: Pipeline) -> None:
    """A database that cannot answer (here: a file with no schema) answers 401 `unavailable` with
    Retry-After, never a 5xx that nginx would turn into a 500."""
    broken = tmp_path / "broken.db"
    sqlite3.connect(broken).close()
    app = AccessApp(lambda: SqliteStore(broken, query_only=True), AccessSettings(3600, policy=False))
    with served(app) as port:
        answer = auth(port, bearer("ab" * 32))
    assert (answer.status, answer.header("X-Access-Reason")) == (401, "unavailable")
    assert answer.header("Retry-After") == "5"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",  # another scheme: judged by the cookie, of which there is none
        "PrivateToken",
        'PrivateToken token="not base64!"',
        "PrivateToken token=" + "A" * 5000,
        "\x01\x02",
        "Bearer " + "é" * 10,
    ],
)
def test_odd_authorization_headers_get_401(gateway: int, authorization: str) -> None:
    """Even a header our HTTP server refuses to parse (a control character) is a 401 on this listener:
    the server's own answers take the gateway's fault status, `invalid_request` in the body."""
    answer = request(gateway, "GET", "/auth", {"Authorization": authorization})
    assert answer.status == 401
    reason = answer.header("X-Access-Reason")
    assert reason in REASONS if reason is not None else answer.json()["error"] == "invalid_request"


# -- the access policy ------------------------------------------------------------------------------


def test_paid_time_ends_and_a_top_up_extends_it(tmp_path: Path, wallet: FakeWallet) -> None:
    """One minimum payment buys 2 s here; past the end 403 `access_expired`; paying the same address
    again adds 2 s from the later of now and the end (here: now, the time has lapsed)."""
    timed = timed_pipeline(tmp_path, wallet, 2)
    try:
        with served(timed.daemon.access_app()) as port:
            before = int(time.time())
            pid, token = claim_token(wallet, timed)
            answer = auth(port, bearer(token))
            assert answer.status == 200
            until = answer.header("X-Access-Until")
            claim = timed.claim_of(pid)
            assert claim is not None and claim.access_until == claim.claimed_at + 2
            assert until == rfc3339(claim.claimed_at + 2) and claim.claimed_at >= before
            time.sleep(max(0.0, claim.claimed_at + 2 - time.time()) + 0.1)
            expired = auth(port, bearer(token))
            assert_refused(expired, 403, "access_expired")
            assert expired.json()["access_until"] == until
            top_up(wallet, timed, pid, 2 * MIN_AMOUNT)  # twice the minimum: 4 s
            seen_by_the_gateway()
            extended = timed.claim_of(pid)
            assert extended is not None and extended.access_until is not None
            assert extended.access_until >= int(time.time()) + 3  # from now, not from the old end
            again = auth(port, bearer(token))
            assert (again.status, again.header("X-Access-Until")) == (200, rfc3339(extended.access_until))
    finally:
        timed.close()


def test_a_top_up_before_the_end_extends_from_the_end(tmp_path: Path, wallet: FakeWallet) -> None:
    timed = timed_pipeline(tmp_path, wallet, 3600)
    try:
        pid, _ = claim_token(wallet, timed, 2 * MIN_AMOUNT)
        first = timed.claim_of(pid)
        assert first is not None and first.access_until == first.claimed_at + 7200
        top_up(wallet, timed, pid, MIN_AMOUNT // 2)
        later = timed.claim_of(pid)
        assert later is not None and later.access_until == first.claimed_at + 7200 + 1800
        assert timed.poll().ok  # a poll with nothing new credits nothing again
        assert timed.claim_of(pid) == later
    finally:
        timed.close()


def test_a_claim_made_before_the_policy_stays_good_until_revoked(tmp_path: Path, wallet: FakeWallet) -> None:
    config = pipeline_config(tmp_path / "p.db", wallet.url, MONITOR_START_HEIGHT="100")
    plain = Pipeline(config)
    try:
        _, token = claim_token(wallet, plain)
    finally:
        plain.close()
    timed = Pipeline(
        pipeline_config(
            tmp_path / "p.db", wallet.url, MONITOR_START_HEIGHT="100", ACCESS_SECONDS_PER_PAYMENT="1"
        )
    )
    try:
        with served(timed.daemon.access_app()) as port:
            answer = auth(port, bearer(token))
            assert (answer.status, answer.header("X-Access-Until")) == (200, None)
    finally:
        timed.close()


# -- /login --------------------------------------------------------------------------------------


def sign_in(port: int, **fields: str) -> Answer:
    return request(port, "POST", "/login", FORM, urllib.parse.urlencode(fields).encode())


def session_cookie(answer: Answer) -> str:
    header = answer.header("Set-Cookie")
    assert header is not None
    attributes = [part.strip() for part in header.split(";")]
    name, _, value = attributes[0].partition("=")
    assert name == "anon_ticket_access" and len(value) >= 40
    assert set(attributes[1:]) == {"Max-Age=3600", "Path=/", "HttpOnly", "SameSite=Strict"}
    return f"{name}={value}"


def test_the_sign_in_page_has_no_script_and_the_csp(gateway: int) -> None:
    answer = request(gateway, "GET", "/login?next=/private/a.txt")
    assert answer.status == 200
    assert answer.header("Content-Type") == "text/html; charset=utf-8"
    policy = answer.header("Content-Security-Policy") or ""
    assert "default-src 'none'" in policy and "form-action 'self'" in policy and "script-src" not in policy
    assert answer.header("X-Frame-Options") == "DENY"
    assert b"<script" not in answer.body and b'value="/private/a.txt"' in answer.body
    assert b'action="/login"' in answer.body


def test_the_page_takes_next_from_the_proxy_when_the_query_has_none(gateway: int) -> None:
    answer = request(gateway, "GET", "/login", {"X-Original-URI": "/docs/x?y=1&z=<2>"})
    assert b'value="/docs/x?y=1&amp;z=&lt;2&gt;"' in answer.body


def test_signing_in_with_a_service_token_opens_a_session(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, token = claim_token(wallet, pipeline)
    answer = sign_in(gateway, token=token, next="/private/a.txt")
    assert (answer.status, answer.header("Location")) == (303, "/private/a.txt")
    cookie = session_cookie(answer)
    assert auth(gateway, {"Cookie": f"other=1; {cookie}"}).status == 200
    assert_refused(auth(gateway, {"Cookie": "anon_ticket_access=forged"}), 401, "no_credential")
    # The session follows the token: revoked, it no longer passes.
    assert pipeline.revoke(ServiceToken.parse(token).digest().raw) is not None
    seen_by_the_gateway()
    assert_refused(auth(gateway, {"Cookie": cookie}), 403, "token_revoked")


def test_a_wrong_token_gets_the_page_again_with_the_reason(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    answer = sign_in(gateway, token="ab" * 32, next="/x")
    assert answer.status == 401 and answer.header("Set-Cookie") is None
    assert b"no service token with this value" in answer.body and b'value="/x"' in answer.body
    _, token = claim_token(wallet, pipeline)
    pipeline.revoke(ServiceToken.parse(token).digest().raw)
    revoked = sign_in(gateway, token=token)
    assert revoked.status == 403 and b"revoked" in revoked.body


def test_signing_in_with_a_private_token_spends_it(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int
) -> None:
    _, service_token = claim_token(wallet, pipeline)
    token = private_token(pipeline, service_token)
    encoded = b64url_encode(token.encode())
    answer = sign_in(gateway, private_token=f"  {encoded}\n", next="/x/y")
    assert (answer.status, answer.header("Location")) == (303, "/x/y")
    assert auth(gateway, {"Cookie": session_cookie(answer)}).status == 200
    again = sign_in(gateway, private_token=encoded)
    assert again.status == 403 and b"already been spent" in again.body
    assert sign_in(gateway, private_token="not a token").status == 401


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "/a\tb",
        "http:/evil.example",
        "/login",
        "",
    ],
)
def test_next_never_leaves_the_site(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int, target: str
) -> None:
    _, token = claim_token(wallet, pipeline)
    answer = sign_in(gateway, token=token, next=target)
    assert (answer.status, answer.header("Location")) == (303, "/")


def test_failed_sign_ins_are_throttled_with_429(wallet: FakeWallet, pipeline: Pipeline, gateway: int) -> None:
    _, token = claim_token(wallet, pipeline)
    for _ in range(5):
        assert sign_in(gateway, token="cd" * 32).status == 401
    throttled = sign_in(gateway, token="cd" * 32)
    assert throttled.status == 429 and int(throttled.header("Retry-After") or 0) >= 1
    # The proxies' decisions are never throttled: /auth still answers only 200/401/403.
    assert auth(gateway).status == 401
    # Anybody's junk throttles the failures only: a good token still signs in (or one anonymous
    # client sending five junk forms a minute would keep every browser out).
    assert sign_in(gateway, token=token).status == 303


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "application/json"}, b'{"token": "x"}', 415),
        (FORM, b"token=" + b"a" * 9000, 413),
        (FORM, b"token=%ff%fe", 401),
        (FORM, b"\xff\xfe", 400),
        (FORM, b"&".join(b"f%d=1" % i for i in range(20)), 400),
    ],
)
def test_a_bad_form_is_a_page_not_a_traceback(
    gateway: int, headers: dict[str, str], body: bytes, status: int
) -> None:
    answer = request(gateway, "POST", "/login", headers, body)
    assert answer.status == status
    assert answer.header("Content-Type") == "text/html; charset=utf-8"


def test_other_paths_and_methods_are_the_usual_json_errors(gateway: int) -> None:
    assert request(gateway, "GET", "/").status == 404
    assert request(gateway, "GET", "/authx").status == 404
    assert request(gateway, "DELETE", "/login").status == 405


def test_a_spend_that_cannot_be_recorded_fails_closed(wallet: FakeWallet, pipeline: Pipeline) -> None:
    """No storage writer to record the spend (a restart under way): 401 `unavailable`, the token not
    used up, so it still opens a session once the writer is back."""
    _, service_token = claim_token(wallet, pipeline)
    token = private_token(pipeline, service_token)
    running = pipeline.daemon.private_tokens()
    assert running is not None
    key = IssuerKey.load(pipeline.daemon.config.privacy_pass_key_path)
    challenge = TokenChallenge.decode(b64url_decode(running.encoded_challenge))
    settings = PrivateTokenSettings(100, MIN_AMOUNT, 10, 2.0)
    writerless = PrivateTokens(ActorLocator(), pipeline.daemon.database.reader, key, challenge, 0, settings)
    spender = PrivateTokenSpender(writerless)
    app = AccessApp(
        pipeline.daemon.database.reader,
        AccessSettings(3600, policy=False),
        spend_private_token=spender,
        private_token_challenge=spender.challenge,
    )
    with served(app) as port:
        answer = auth(port, private_header(token))
    assert (answer.status, answer.header("X-Access-Reason"), answer.header("Retry-After")) == (
        401,
        "unavailable",
        "5",
    )
    with served(pipeline.daemon.access_app()) as port:
        assert auth(port, private_header(token)).status == 200


def test_the_claim_cache_is_bounded_and_keeps_no_failure(
    tmp_path: Path, wallet: FakeWallet, pipeline: Pipeline
) -> None:
    _, token = claim_token(wallet, pipeline)
    digest = ServiceToken.parse(token).digest().raw
    lookups = ClaimLookups(pipeline.daemon.database.reader, capacity=2)
    assert lookups.claim(digest) is not None
    for other in (b"\x01" * 32, b"\x02" * 32):
        assert lookups.claim(other) is None
    assert len(lookups._read) == 2 and digest not in lookups._read  # the oldest went first
    broken = tmp_path / "broken.db"
    sqlite3.connect(broken).close()
    failing = ClaimLookups(lambda: SqliteStore(broken, query_only=True))
    with pytest.raises(StorageError):
        failing.claim(digest)
    assert len(failing._read) == 0


def test_no_token_reaches_the_log(
    wallet: FakeWallet, pipeline: Pipeline, gateway: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the gateway refuses or accepts, neither a service token nor a Privacy Pass token (nor
    a session value) is written to the log."""
    _, token = claim_token(wallet, pipeline)
    spent = private_token(pipeline, token)
    secrets = [token, b64url_encode(spent.encode())]
    with caplog.at_level("DEBUG"):
        auth(gateway, bearer(token))
        cookie = session_cookie(auth(gateway, private_header(spent)))
        auth(gateway, private_header(spent))
        for _ in range(7):
            sign_in(gateway, token="ef" * 32)
        sign_in(gateway, token=token)
        sign_in(gateway, private_token=secrets[1])
    secrets.append(cookie.partition("=")[2])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "sign-ins throttled" in logged  # the log was written to, and read here
    assert not [secret for secret in secrets if secret in logged]


# -- the session store --------------------------------------------------------------------------------


def test_sessions_expire_are_bounded_and_one_token_cannot_crowd_out_the_others() -> None:
    now = [1000.0]
    sessions = Sessions(60, capacity=40, clock=lambda: now[0])
    mine, theirs = b"m" * 32, b"t" * 32
    private = sessions.open()
    others = [sessions.open(theirs) for _ in range(3)]
    flood = [sessions.open(mine) for _ in range(SESSIONS_PER_TOKEN + 10)]
    assert all(sessions.find(value) is None for value in flood[:10])  # that token's oldest gave way
    assert all(sessions.find(value) is not None for value in flood[10:])
    assert sessions.find(private) is not None and all(sessions.find(value) for value in others)
    for _ in range(40):  # at the store's cap the oldest session of all goes first
        sessions.open()
    assert sessions.find(private) is None and len(sessions) == 40
    now[0] += 60
    assert sessions.find(flood[-1]) is None  # expired
    assert sessions.find("x" * 65) is None and sessions.find("") is None
    sessions.open(mine)
    assert len(sessions) == 1  # the expired ones were dropped on the way


# -- what the HTTP server answers itself on this listener ----------------------------------------------


def raw_status(port: int, data: bytes, wait: float = 0.0) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(data)
        if wait:
            time.sleep(wait)
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "data",
    [
        b"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
        b"BREW /auth HTCPCP/1.0\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: x\r\n Folded: yes\r\n\r\n",
    ],
    ids=["huge-header", "cl-and-te", "huge-body", "not-http", "obs-fold"],
)
def test_what_the_server_refuses_itself_is_401_here(pipeline: Pipeline, data: bytes) -> None:
    """A request the server refuses before the app (too large, ambiguous framing, not HTTP/1.1) gets
    the gateway's fault status, 401, not the 400/413/431 the other listeners answer."""
    with served(pipeline.daemon.access_app()) as port:
        assert raw_status(port, data) == 401


def test_a_request_too_slow_to_arrive_is_401_here(pipeline: Pipeline) -> None:
    with served(pipeline.daemon.access_app(), request_deadline=0.5) as port:
        assert raw_status(port, b"GET /auth HTTP/1.1\r\nHost: x\r\n", wait=1.5) == 401
