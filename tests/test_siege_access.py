"""The Privacy Pass endpoints and the access gateway under attack (docs/PROTOCOL.md §8, §12, §13).

Against the real daemon process with its third listener: an anonymous client sends garbage to every
new endpoint (wrong types and lengths, odd Authorization headers, junk forms, bad `next` values) and
must get the contract's status, never a traceback, never a growing log; on the gateway's `/auth`
nothing but 200, 401 or 403, whatever arrives (nginx's `auth_request` turns anything else into a 500).
Hundreds of hostile connections on the gateway must not stop an honest proxy's `/auth`; a flood of
issuance requests must not stop another buyer's redeem; a flood of made-up bearer tokens must not
grow the gateway's memory without bound. No timing is asserted; every loop is bounded.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket.errors import RateLimited, Unauthorized
from anon_ticket.privacypass import client
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import Token, TokenChallenge, b64url_decode, b64url_encode
from anon_ticket.service.private_tokens import PrivateTokens, PrivateTokenSettings
from tests.support.access import claim_token as access_claim_token
from tests.support.attack import Attack, connect, honest_redeem, read_answer
from tests.support.daemon import DaemonProcess, claim_token, free_ports
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline
from tests.support.private_tokens import REQUEST_TYPE, issue, published
from tests.support.waiting import wait_for

DEADLINE = "2"  # HTTP_REQUEST_DEADLINE_SECS: stalled attackers are cut off quickly
ISSUE_PER_MINUTE = 60  # PRIVACY_PASS_ISSUE_PER_MINUTE for these daemons: the flood meets the limit
LOG_GROWTH_LIMIT = 4096  # bytes the log may grow by while it is attacked
GATEWAY_STATUSES = {200, 401, 403}
ISSUE = "/api/v1/private-token/issue"
SPEND = "/api/v1/private-token/spend"
DIRECTORY = "/.well-known/private-token-issuer-directory"


wallet = module_wallet()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("siege-access")
    (port,) = free_ports(1)
    env = {
        "HTTP_REQUEST_DEADLINE_SECS": DEADLINE,
        "INTERNAL_API_TOKEN": "siege-access-internal-token-0123456789",
        "ACCESS_GATEWAY_BIND_ADDRESS": f"127.0.0.1:{port}",
        "PRIVACY_PASS_ISSUE_PER_MINUTE": str(ISSUE_PER_MINUTE),
    }
    with DaemonProcess(folder, wallet_url=wallet.url, env=env) as running:
        running.wait_scanning()
        running.wait_for_log(f"access listener serving on 127.0.0.1:{port}")
        running.gateway_port = port  # type: ignore[attr-defined]
        yield running


def gateway(daemon: DaemonProcess) -> tuple[str, int]:
    return "127.0.0.1", int(daemon.gateway_port)  # type: ignore[attr-defined]


def address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def log_size(daemon: DaemonProcess) -> int:
    return daemon.log_path.stat().st_size


def assert_quiet_log(daemon: DaemonProcess, since: int, limit: int = LOG_GROWTH_LIMIT) -> None:
    with daemon.log_path.open("rb") as log:
        log.seek(since)
        grown = log.read().decode("utf-8", "replace")
    assert "Traceback" not in grown, grown[:3000]
    assert len(grown.encode()) <= limit, grown[:3000]


def exchange(target: tuple[str, int], raw: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Raw bytes on a fresh connection; the first answer (status, lower-cased headers, body)."""
    with connect(target, timeout) as sock:
        # The server may answer and close before taking it all: read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        return read_answer(sock)


def raw_request(
    method: str, path: str, headers: list[tuple[str, bytes | str]] = (), body: bytes = b""
) -> bytes:  # type: ignore[assignment]
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: x"]
    for name, value in headers:
        lines.append(name.encode() + b": " + (value.encode("latin-1") if isinstance(value, str) else value))
    if body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head(target: tuple[str, int], path: str) -> int:
    """HEAD on a fresh connection: its status, after checking that nothing follows the head."""
    with connect(target, 10) as sock:
        sock.sendall(raw_request("HEAD", path))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_bytes, _, rest = answer.partition(b"\r\n\r\n")
    assert rest == b"", answer[:300]
    return int(head_bytes.split(b" ", 2)[1])


def fetch_private_token(daemon: DaemonProcess, service_token: str) -> Token:
    """One Privacy Pass token issued over HTTP as a buyer's client does (§12)."""
    request, pending = client.prepare(*published(daemon))
    answer = issue(daemon, service_token, request.encode())
    assert answer.status_code == 200, answer.text
    return pending.finalize(answer.content)


def auth(target: tuple[str, int], authorization: str | None = None, cookie: str | None = None) -> int:
    headers: list[tuple[str, bytes | str]] = []
    if authorization is not None:
        headers.append(("Authorization", authorization))
    if cookie is not None:
        headers.append(("Cookie", cookie))
    status, _, _ = exchange(target, raw_request("GET", "/auth", headers))
    return status


@pytest.fixture(scope="module")
def service_token(daemon: DaemonProcess, wallet: FakeWallet) -> str:
    return claim_token(daemon, wallet)[1]


# -- garbage on the gateway ---------------------------------------------------------------------------


def _junk_authorizations(valid_token: Token) -> list[bytes]:
    encoded = b64url_encode(valid_token.encode())
    wrong_sig = bytearray(valid_token.encode())
    wrong_sig[-1] ^= 1
    return [
        b"",
        b"Bearer",
        b"Bearer ",
        b"Bearer " + b"g" * 64,
        b"Bearer " + b"a" * 63,
        b"Bearer " + b"a" * 7000,
        b"bEaReR\t" + b"ab" * 32,
        b"Bearer " + "é".encode() * 32,
        b"Bearer \xff\xfe\x00" + b"a" * 61,
        b"Basic dXNlcjpwYXNz",
        b"Negotiate " + b"A" * 7500,
        b"PrivateToken",
        b"PrivateToken token=",
        b'PrivateToken token=""',
        b'PrivateToken token="!!!!"',
        b'PrivateToken token="' + b"A" * 7000 + b'"',
        b'PrivateToken token="' + encoded.encode()[:-4] + b'"',
        b'PrivateToken token="' + encoded.encode() + b'", token="' + encoded.encode() + b'"',
        b'PrivateToken tok="' + encoded.encode() + b'"',
        b"PrivateToken token=" + b64url_encode(bytes(wrong_sig)).encode(),
        b'PrivateToken token="' + base64.b64encode(valid_token.encode()).replace(b"=", b"") + b'=="',
        b'PrivateToken token="' + b64url_encode(b"\x00\x01" + bytes(470)).encode() + b'"',
        b'PrivateToken token="' + b64url_encode(b"\x00\x02" + bytes(470)).encode() + b'"',
        b'PrivateToken token="\xff\xfe"',
        b"PrivateToken " + b",".join([b"token=a"] * 500),
    ]


def test_auth_answers_only_200_401_403_to_garbage(daemon: DaemonProcess, service_token: str) -> None:
    target = gateway(daemon)
    spare = fetch_private_token(daemon, service_token)
    before = log_size(daemon)
    seen: dict[int, int] = {}
    for value in _junk_authorizations(spare):
        status, headers, body = exchange(target, raw_request("GET", "/auth", [("Authorization", value)]))
        assert status in GATEWAY_STATUSES, (value[:60], status, body[:200])
        assert status != 200, value[:60]
        if b"\x00" not in value:  # a NUL is bad framing: the HTTP server's own 401 has no reason
            assert headers.get("x-access-reason"), value[:60]
        seen[status] = seen.get(status, 0) + 1
    # Odd requests around the header: the HTTP server's own refusals are 401 on this listener.
    odd = [
        raw_request("GET", "/auth", [("Authorization", b"Bearer " + b"a" * 9000)]),  # field line over 8 KiB
        raw_request("GET", "/auth", [(f"X-Pad-{n}", b"x" * 200) for n in range(120)]),  # too many headers
        raw_request("GET", "/auth", [("Authorization", b"Bearer a"), ("Authorization", b"Bearer b")]),
        raw_request("GET", "/auth", [("Cookie", b"anon_ticket_access=" + b"x" * 7000)]),
        raw_request(
            "GET", "/auth", [("Cookie", b"; ".join(b"anon_ticket_access=%d" % n for n in range(500)))]
        ),
        raw_request("GET", "/auth", [("Cookie", b"anon_ticket_access=\xff\xfe\x00")]),
        raw_request("POST", "/auth", [("Content-Type", b"application/json")], b'{"a": ' * 500),
        raw_request("POST", "/auth", [("Content-Length", b"99999999999")]),
        raw_request("POST", "/auth", [("Content-Length", b"5"), ("Content-Length", b"6")], b"hello!"),
        raw_request(
            "POST", "/auth", [("Content-Length", b"5"), ("Transfer-Encoding", b"chunked")], b"0\r\n\r\n"
        ),
        raw_request("POST", "/auth", [("Transfer-Encoding", b"chunked")], b"zz\r\n{}\r\n0\r\n\r\n"),
        raw_request("POST", "/auth", [("Transfer-Encoding", b"gzip, chunked")], b"0\r\n\r\n"),
        raw_request("BREW", "/auth"),
        raw_request("OPTIONS", "*"),
        raw_request("GET", "/auth?" + "a=b&" * 1000),
        raw_request("GET", "/auth/../auth"),
        b"GET /auth HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /auth\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",  # a TLS hello
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /auth HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for raw in odd:
        status, _, body = exchange(target, raw)
        # /auth only ever 200/401/403; elsewhere the router's 404/405, never a 4xx of framing or 5xx.
        assert status in GATEWAY_STATUSES | {404, 405}, (raw[:80], status, body[:200])
        if raw.startswith((b"GET /auth ", b"GET /auth? ", b"POST /auth ", b"BREW /auth ")):
            assert status in GATEWAY_STATUSES, (raw[:80], status, body[:200])
    # HEAD /auth has no body (RFC 9110 §9.3.2) and still only the three statuses.
    assert head(target, "/auth") == 401
    assert auth(target, f"Bearer {service_token}") == 200
    assert_quiet_log(daemon, before)


def test_a_stalled_or_dripping_auth_request_is_a_401_not_a_408(daemon: DaemonProcess) -> None:
    target = gateway(daemon)
    with connect(target, 10) as sock:
        sock.sendall(b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        status, _, _ = read_answer(sock)  # the deadline (2 s) ends it
    assert status == 401
    with connect(target, 10) as sock:
        sock.sendall(b"GET /auth HTTP/1.1\r\nHost: x\r\nAuthor")
        status, _, _ = read_answer(sock)
    assert status == 401


def test_login_garbage_gets_the_page_with_the_right_status(daemon: DaemonProcess) -> None:
    target = gateway(daemon)
    before = log_size(daemon)
    form = [("Content-Type", b"application/x-www-form-urlencoded")]
    cases: list[tuple[bytes, set[int]]] = [
        (raw_request("POST", "/login", [("Content-Type", b"application/json")], b'{"token": "x"}'), {415}),
        (raw_request("POST", "/login", [], b"token=abc"), {415}),
        (
            raw_request("POST", "/login", [("Content-Type", b"multipart/form-data; boundary=x")], b"--x--"),
            {415},
        ),
        (raw_request("POST", "/login", form, b"token=" + b"a" * 9000), {413}),
        (raw_request("POST", "/login", form, b"token=\xff\xfe\xfd"), {400}),
        (raw_request("POST", "/login", form, b"&".join(b"f%d=1" % n for n in range(50))), {400}),
        (raw_request("POST", "/login", form, b"token=%ff%fe%00&next=%ff"), {401, 429}),
        (raw_request("POST", "/login", form, b"token=" + b"a" * 8000), {401, 429}),
        (raw_request("POST", "/login", form, b"private_token=" + b"A" * 8000), {401, 429}),
        (raw_request("POST", "/login", form, b"private_token=%00%01"), {401, 429}),
        (raw_request("POST", "/login", form, b"==&&=;;%%%zz"), {400, 401, 429}),
        (raw_request("POST", "/login", form, b""), {401, 429}),
        (raw_request("POST", "/login", [*form, ("Transfer-Encoding", b"chunked")], b"zz\r\n"), {400, 401}),
        (raw_request("GET", "/login?" + "&".join(f"next=/{n}" for n in range(100))), {200}),
        (raw_request("GET", "/login?next=%ff%fe"), {200}),
        (raw_request("GET", "/login", [("X-Original-URI", b"\xff//evil.example")]), {200}),
        (raw_request("PUT", "/login"), {405}),
        (raw_request("GET", "/login/../../etc/passwd"), {404}),
    ]
    for raw, wanted in cases:
        status, headers, body = exchange(target, raw)
        assert status in wanted, (raw[:100], status, body[:300])
        assert b"Traceback" not in body
        if status != 200:
            assert "location" not in headers
    # That junk throttled the failures (one throttle for everybody), never a good token.
    assert exchange(target, raw_request("POST", "/login", form, b"token=" + b"cd" * 32))[0] == 429
    assert_quiet_log(daemon, before)


@pytest.mark.parametrize(
    "wanted",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "\\\\evil.example",
        "/\tevil",
        "javascript:alert(1)",
        "/login",
        "x" * 3000,
    ],
)
def test_a_sign_in_never_redirects_off_the_site(
    daemon: DaemonProcess, wallet: FakeWallet, wanted: str
) -> None:
    _, token = claim_token(daemon, wallet)
    answer = requests.post(
        f"http://127.0.0.1:{gateway(daemon)[1]}/login",
        data={"token": token, "next": wanted},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["Location"] == "/"
    # The session the sign-in opened passes /auth.
    cookie = answer.headers["Set-Cookie"].split(";")[0]
    assert auth(gateway(daemon), cookie=cookie) == 200


# -- garbage on the Privacy Pass endpoints -------------------------------------------------------------


def test_issuance_garbage_gets_the_contracts_errors(daemon: DaemonProcess, service_token: str) -> None:
    target = address(daemon.public_url)
    bearer = ("Authorization", f"Bearer {service_token}".encode())
    ok_type = ("Content-Type", REQUEST_TYPE.encode())
    good = token_request(daemon)
    before = log_size(daemon)
    cases: list[tuple[bytes, int, str]] = [
        (
            raw_request("POST", ISSUE, [bearer, ("Content-Type", b"application/json")], bytes(259)),
            415,
            "unsupported_media_type",
        ),
        (raw_request("POST", ISSUE, [bearer], bytes(259)), 415, "unsupported_media_type"),
        (raw_request("POST", ISSUE, [bearer, ok_type], bytes(260)), 413, "payload_too_large"),
        (raw_request("POST", ISSUE, [bearer, ok_type], bytes(100_000)), 413, "payload_too_large"),
        (raw_request("POST", ISSUE, [bearer, ok_type], b"\x00\x02"), 400, "invalid_request"),
        (raw_request("POST", ISSUE, [bearer, ok_type], b"\x00\x01" + bytes(257)), 400, "invalid_request"),
        (raw_request("POST", ISSUE, [bearer, ok_type], b"\x00\x02" + bytes(257)), 400, "invalid_request"),
        (raw_request("POST", ISSUE, [bearer, ok_type, ("Content-Length", b"0")]), 400, "invalid_request"),
        (raw_request("POST", ISSUE, [ok_type], bytes(259)), 401, "unauthorized"),
        (
            raw_request("POST", ISSUE, [ok_type, ("Authorization", b"Bearer " + b"a" * 7000)], bytes(259)),
            401,
            "unauthorized",
        ),
        (
            raw_request("POST", ISSUE, [ok_type, ("Authorization", b"Bearer \xff" + b"a" * 63)], bytes(259)),
            401,
            "unauthorized",
        ),
        (
            raw_request("POST", ISSUE, [ok_type, ("Authorization", b"Bearer " + b"ab" * 32)], good),
            401,
            "unauthorized",
        ),
        (
            raw_request(
                "POST", ISSUE, [ok_type, ("Authorization", b'PrivateToken token="AAAA"')], bytes(259)
            ),
            401,
            "unauthorized",
        ),
        (raw_request("GET", ISSUE, [bearer]), 405, "method_not_allowed"),
        (raw_request("POST", DIRECTORY, [ok_type], bytes(10)), 405, "method_not_allowed"),
        (
            raw_request("POST", ISSUE, [bearer, ok_type, ("Transfer-Encoding", b"chunked")], b"zz\r\n"),
            400,
            "invalid_request",
        ),
    ]
    for raw, wanted_status, wanted_error in cases:
        status, _, body = exchange(target, raw)
        assert status == wanted_status, (raw[:90], status, body[:300])
        if body:
            assert json.loads(body)["error"] == wanted_error, (raw[:90], body[:300])
    assert head(target, DIRECTORY) == 200
    assert_quiet_log(daemon, before)


def test_spend_garbage_gets_the_contracts_errors(daemon: DaemonProcess, service_token: str) -> None:
    target = address(daemon.internal_url)
    key = ("Authorization", f"Bearer {daemon.api_token}".encode())
    js = ("Content-Type", b"application/json")
    token = fetch_private_token(daemon, service_token)
    encoded = b64url_encode(token.encode())
    before = log_size(daemon)
    cases: list[tuple[bytes, int, str]] = [
        (raw_request("POST", SPEND, [key], b'{"token": "x"}'), 415, "unsupported_media_type"),
        (
            raw_request("POST", SPEND, [key, ("Content-Type", b"text/plain")], b'{"token": "x"}'),
            415,
            "unsupported_media_type",
        ),
        (
            raw_request("POST", SPEND, [key, js], b'{"token": "' + b"A" * 70_000 + b'"}'),
            413,
            "payload_too_large",
        ),
        (raw_request("POST", SPEND, [key, js], b"[]"), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b"{}"), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": NaN}'), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": "a", "token": "b"}'), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b"\xef\xbb\xbf{}"), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": "\xff"}'), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b"[" * 100_0 + b"]" * 100_0), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": 12}'), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": ["x"]}'), 400, "invalid_request"),
        (raw_request("POST", SPEND, [key, js], b'{"token": "!!!"}'), 400, "invalid_token"),
        (raw_request("POST", SPEND, [key, js], b'{"token": "' + b"A" * 3000 + b'"}'), 400, "invalid_token"),
        (
            raw_request("POST", SPEND, [key, js], b'{"token": "' + encoded.encode()[:-8] + b'"}'),
            400,
            "invalid_token",
        ),
        (raw_request("POST", SPEND, [js], b'{"token": "' + encoded.encode() + b'"}'), 401, "unauthorized"),
    ]
    for raw, wanted_status, wanted_error in cases:
        status, _, body = exchange(target, raw)
        assert status == wanted_status, (raw[:90], status, body[:300])
        assert json.loads(body)["error"] == wanted_error, (raw[:90], body[:300])
    body = json.dumps({"token": encoded}).encode()
    assert exchange(target, raw_request("POST", SPEND, [key, js], body))[0] == 200
    assert exchange(target, raw_request("POST", SPEND, [key, js], body))[0] == 409
    assert_quiet_log(daemon, before)


# -- siege: hostile connections on the gateway, floods of issuance and of made-up tokens -------------


def honest_auths(target: tuple[str, int], service_token: str, count: int) -> list[float]:
    """`count` proxy decisions for a good token, each on a fresh connection: their latencies (s).

    Any answer but 200, or none within 10 s, fails the test at once: the proxy's user would see it.
    """
    latencies = []
    for _ in range(count):
        started = time.monotonic()
        status = auth(target, f"Bearer {service_token}")
        latencies.append(time.monotonic() - started)
        assert status == 200
    return latencies


def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@pytest.mark.parametrize("kind", ["idle", "drip", "stalled"])
def test_auth_is_answered_while_hundreds_of_connections_hold_the_gateway(
    daemon: DaemonProcess, service_token: str, kind: str
) -> None:
    target = gateway(daemon)
    before = log_size(daemon)
    with Attack(target, kind, 300, drip_interval=0.5) as attack:
        attack.wait_open()
        latencies = honest_auths(target, service_token, 20)
        # Cut off at the deadline; an incomplete request is refused with the gateway's 401, never 408.
        wait_for("attackers closed", lambda: attack.stats.closed_by_server >= 50 or None, 30)
        latencies += honest_auths(target, service_token, 20)
        if kind == "idle":
            assert not attack.stats.answers
        else:
            wait_for("401 answers", lambda: attack.stats.answers[401] or None, 30)
            assert set(attack.stats.answers) <= {401, 404}  # a drip that completes asks for no path here
    print(f"{kind}: 40 honest /auth, p95 {p95(latencies) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms")
    assert_quiet_log(daemon, before)


class IssueFlood:
    """Threads sending TokenRequests for one service token as fast as answers come: counts statuses."""

    def __init__(self, daemon: DaemonProcess, service_token: str, body: bytes, threads: int) -> None:
        self._url = daemon.public_url + ISSUE
        self._headers = {"Content-Type": REQUEST_TYPE, "Authorization": f"Bearer {service_token}"}
        self._body = body
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.statuses: collections.Counter[int] = collections.Counter()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> IssueFlood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        with requests.Session() as session:
            deadline = time.monotonic() + 60  # stops by itself whatever happens to the test
            while not self._stop.is_set() and time.monotonic() < deadline:
                status = session.post(
                    self._url, data=self._body, headers=self._headers, timeout=10
                ).status_code
                with self._lock:
                    self.statuses[status] += 1


def token_request(daemon: DaemonProcess) -> bytes:
    """A fresh blinded TokenRequest for the daemon's published key and challenge, encoded."""
    return client.prepare(*published(daemon))[0].encode()


def test_an_issuance_flood_is_held_to_its_rate_and_starves_nobody(
    daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    flooder = claim_token(daemon, wallet)[1]
    other_buyer = claim_token(daemon, wallet)[1]
    pid, _ = claim_token(daemon, wallet)
    public = address(daemon.public_url)
    before = log_size(daemon)
    # The same TokenRequest again and again: each answer is an RSA signature (a retry is re-signed),
    # and the allowance is taken once, so only the per-token rate limit holds it back.
    with IssueFlood(daemon, flooder, token_request(daemon), threads=4) as flood:
        wait_for("the flood to meet the rate limit", lambda: flood.statuses[429] >= 20 or None, 30)
        for _ in range(10):  # another buyer's redeem and issuance are answered meanwhile
            assert honest_redeem(public, pid.hex())[0] == 200
            fetch_private_token(daemon, other_buyer)
    signed = flood.statuses[200]
    print(f"issuance flood: {dict(flood.statuses)}")
    assert set(flood.statuses) == {200, 429}
    # The limit's burst is one minute's worth; nothing past it was signed for the flooder.
    assert signed <= ISSUE_PER_MINUTE + 5
    answer = issue(daemon, flooder, token_request(daemon))
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert_quiet_log(daemon, before)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def unknown_token_flood(target: tuple[str, int], count: int) -> collections.Counter[int]:
    """`count` /auth requests, each with a new made-up service token, over a few kept-alive connections."""
    statuses: collections.Counter[int] = collections.Counter()
    conn = http.client.HTTPConnection(*target, timeout=10)
    try:
        for n in range(count):
            if n % 1000 == 0:  # a fresh connection now and then, as proxies do
                conn.close()
                conn = http.client.HTTPConnection(*target, timeout=10)
            conn.request("GET", "/auth", headers={"Authorization": f"Bearer {secrets.token_hex(32)}"})
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
    finally:
        conn.close()
    return statuses


def flood_grows_memory_by(daemon: DaemonProcess, rounds: int, per_round: int) -> list[int]:
    """RSS (KiB) after each round of made-up tokens on /auth."""
    target = gateway(daemon)
    sizes = []
    for _ in range(rounds):
        assert unknown_token_flood(target, per_round) == {401: per_round}
        sizes.append(rss_kib(daemon.pid))
    return sizes


def test_a_flood_of_made_up_tokens_answers_401_and_keeps_the_log_quiet(
    daemon: DaemonProcess, service_token: str
) -> None:
    before = log_size(daemon)
    sizes = flood_grows_memory_by(daemon, 2, 1500)
    print(f"RSS after each 1500 made-up tokens: {sizes} KiB")
    assert auth(gateway(daemon), f"Bearer {service_token}") == 200
    assert_quiet_log(daemon, before)


@pytest.mark.soak
def test_a_long_flood_of_made_up_tokens_does_not_grow_memory(daemon: DaemonProcess) -> None:
    """Past the claim cache's capacity (10,000 digests) more made-up tokens cost no more memory."""
    sizes = flood_grows_memory_by(daemon, 6, 10_000)
    print(f"RSS after each 10,000 made-up tokens: {sizes} KiB")
    # Rounds 3..6 come after the caches filled: together they may add a little (allocator noise).
    assert sizes[-1] - sizes[2] <= 8 * 1024, sizes


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["idle", "drip", "stalled"])
def test_auth_keeps_99_percent_while_1000_connections_hold_the_gateway(
    daemon: DaemonProcess, service_token: str, kind: str
) -> None:
    """The §8 figure on the gateway: 1,000 attackers, honest decisions for 6 s, ≥ 99 % answered 200."""
    target = gateway(daemon)
    before = log_size(daemon)
    latencies: list[float] = []
    failures = 0
    with Attack(target, kind, 1000, drip_interval=0.5) as attack:
        attack.wait_open(timeout=60)
        until = time.monotonic() + 3 * float(DEADLINE)  # through cut-offs and reconnections
        while len(latencies) < 300 or (time.monotonic() < until and len(latencies) < 5000):
            started = time.monotonic()
            try:
                ok = auth(target, f"Bearer {service_token}") == 200
            except OSError:
                ok = False
            latencies.append(time.monotonic() - started)
            failures += not ok
    print(
        f"{kind} x1000: {len(latencies) - failures}/{len(latencies)} honest /auth answered 200, "
        f"{attack.stats.closed_by_server} attackers cut off, "
        f"p95 {p95(latencies) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms"
    )
    assert failures <= len(latencies) // 100
    assert_quiet_log(daemon, before)


def test_made_up_tokens_cannot_push_a_buyers_issuance_limit_out(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    """The per-token limiter's table is bounded: only tokens with a claim take a place in it, so a
    flood of made-up tokens (which cost the flooder nothing) cannot reset a paying buyer's minute."""
    running = pipeline.daemon.private_tokens()
    assert running is not None
    key = IssuerKey.load(pipeline.daemon.config.privacy_pass_key_path)
    challenge = TokenChallenge.decode(b64url_decode(running.encoded_challenge))
    settings = PrivateTokenSettings(100, MIN_AMOUNT, 10, 5.0, issue_per_minute=2, tracked_tokens=4)
    tokens = PrivateTokens(
        pipeline.daemon.actors, pipeline.daemon.database.reader, key, challenge, 0, settings
    )
    _, buyer = access_claim_token(wallet, pipeline)

    def request() -> bytes:
        return client.prepare(key.spki, challenge)[0].encode()

    for _ in range(2):
        tokens.issue(f"Bearer {buyer}", request())
    with pytest.raises(RateLimited):
        tokens.issue(f"Bearer {buyer}", request())
    for _ in range(50):  # many more made-up tokens than the table holds
        with pytest.raises(Unauthorized):
            tokens.issue(f"Bearer {secrets.token_hex(32)}", request())
    with pytest.raises(RateLimited):
        tokens.issue(f"Bearer {buyer}", request())


def test_a_replayed_private_token_flood_is_403_and_claims_go_on(
    daemon: DaemonProcess, wallet: FakeWallet, service_token: str
) -> None:
    """Each replay of a spent token asks the storage writer again (the spend is decided there); a
    flood of them must not keep a buyer's first claim, which needs the same writer, from its answer."""
    target = gateway(daemon)
    spent = f'PrivateToken token="{b64url_encode(fetch_private_token(daemon, service_token).encode())}"'
    assert auth(target, spent) == 200
    before = log_size(daemon)
    statuses: collections.Counter[int] = collections.Counter()
    stop = threading.Event()

    def replay() -> None:
        conn = http.client.HTTPConnection(*target, timeout=10)
        deadline = time.monotonic() + 30  # stops by itself
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                conn.request("GET", "/auth", headers={"Authorization": spent})
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=replay, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for("replays answered", lambda: sum(statuses.values()) >= 500 or None, 30)
        for _ in range(3):  # first claims while it goes on
            claim_token(daemon, wallet)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    print(f"replayed spent token: {dict(statuses)}")
    assert set(statuses) == {403}
    assert_quiet_log(daemon, before)
