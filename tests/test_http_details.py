"""docs/PROTOCOL.md §4 "HTTP details that hold on every listener", at the application, over raw sockets.

A client library would hide exactly what is tested here (a body after a HEAD answer, how a broken
chunked body is framed), so requests are written and answers read byte by byte. Most tests share one
daemon process with the fake wallet; the 408 test runs its own with a short request deadline, and the
generic-503 test runs the real public app in-process on a database path that cannot be opened.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anon_ticket.api.public import PublicApp
from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PaymentId
from anon_ticket.httpd.listener import Listener
from anon_ticket.service.info import PublicInfo
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.redeem import Redeemer, RedeemSettings
from anon_ticket.storage.sqlite import SqliteStore
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.pipeline import CONFIRMATIONS, MIN_AMOUNT, Pipeline
from tests.support.waiting import wait_for

REDEEM = "/api/v1/redeem"
JSON_TYPE = "application/json; charset=utf-8"


wallet = module_wallet()


@pytest.fixture(scope="module")
def token(daemon: DaemonProcess, wallet: FakeWallet) -> str:
    return claim_token(daemon, wallet)[1]


# -- a raw HTTP/1.1 client --------------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.headers}, {self.body[:200]!r})"


class Wire:
    """One TCP connection: write bytes, read answers exactly as framed by their headers."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise AssertionError(f"connection closed before an answer's head: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 "), status_line
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def read_answer(self, *, head_request: bool = False) -> Answer:
        status, headers = self.read_head()
        if head_request:
            return Answer(status, headers, b"")
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                break
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(status, headers, body)

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        rest, self.buffer = self.buffer, b""
        return rest


def request(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    framing: str = "length",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if framing == "length" and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, data: bytes, *, head_request: bool = False) -> Answer:
    wire = Wire(port)
    try:
        wire.send(data)
        return wire.read_answer(head_request=head_request)
    finally:
        wire.close()


def port_of(url: str) -> int:
    return int(url.rpartition(":")[2])


def assert_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == JSON_TYPE, answer
    body = answer.json()
    assert body["error"] == code, answer
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def redeem_raw(port: int, body: bytes) -> Answer:
    return exchange(port, request("POST", REDEEM, headers={"Content-Type": "application/json"}, body=body))


# -- HEAD: answered like GET, never a body ---------------------------------------------------------


def _every_path(token: str) -> list[tuple[str, str, bool]]:
    """(listener, path, authenticated) for every path of both listeners, known or not."""
    return [
        ("public", "/api/v1/info", False),
        ("public", REDEEM, False),
        ("public", "/api/v1/status", False),
        ("public", "/nope", False),
        ("internal", "/healthz", False),
        ("internal", "/api/v1/status", True),
        ("internal", "/api/v1/status", False),
        ("internal", "/api/v1/openapi.json", True),
        ("internal", f"/api/v1/token/{token}", True),
        ("internal", f"/api/v1/token/{token}/revoke", True),
        ("internal", "/api/v1/token/xyz", True),
        ("internal", "/api/v1/nothing", True),
        ("internal", "/nope", False),
        ("internal", "/admin/", False),
    ]


def test_head_has_no_body_on_any_path_of_either_listener(daemon: DaemonProcess, token: str) -> None:
    """A HEAD answer is followed directly by the next answer on the same connection: no body bytes."""
    for listener, path, authenticated in _every_path(token):
        port = port_of(daemon.public_url if listener == "public" else daemon.internal_url)
        auth = daemon.auth_headers() if authenticated else {}
        get = exchange(port, request("GET", path, headers=auth))
        wire = Wire(port)
        try:
            # Pipelined: HEAD, then a GET that closes. Body bytes after the HEAD answer would be
            # read as the start of the second answer, which must begin with its status line.
            wire.send(
                request("HEAD", path, headers=auth)
                + request(
                    "GET",
                    "/api/v1/info" if listener == "public" else "/healthz",
                    headers={"Connection": "close"},
                )
            )
            status, headers = wire.read_head()
            rest = wire.read_to_end()
        finally:
            wire.close()
        where = f"HEAD {listener} {path}"
        assert rest.startswith(b"HTTP/1.1 200 "), (where, rest[:200])
        assert status == get.status, (where, status, get)
        assert headers.get("allow") == get.headers.get("allow"), (where, headers, get.headers)
        assert headers["content-type"] == get.headers["content-type"], where
        if listener == "public" or not path.startswith("/admin"):  # the panel's page may vary
            assert headers.get("content-length") == get.headers.get("content-length"), (where, headers)


def test_head_is_allowed_wherever_get_is_and_listed_in_allow(daemon: DaemonProcess, token: str) -> None:
    public, internal = port_of(daemon.public_url), port_of(daemon.internal_url)
    auth = daemon.auth_headers()
    refused = exchange(public, request("PUT", "/api/v1/info"))
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, HEAD"
    refused = exchange(public, request("HEAD", REDEEM), head_request=True)
    assert (refused.status, refused.headers["allow"]) == (405, "POST")
    refused = exchange(
        internal, request("HEAD", f"/api/v1/token/{token}/revoke", headers=auth), head_request=True
    )
    assert (refused.status, refused.headers["allow"]) == (405, "POST")
    for path in ("/api/v1/status", "/api/v1/openapi.json", f"/api/v1/token/{token}"):
        refused = exchange(internal, request("DELETE", path, headers=auth))
        assert (refused.status, refused.headers["allow"]) == (405, "GET, HEAD"), path
    health = exchange(internal, request("HEAD", "/healthz"), head_request=True)
    assert health.status == 200 and health.headers["content-type"] == JSON_TYPE


# -- strict JSON -----------------------------------------------------------------------------------

PID = '"' + "ab" * 32 + '"'
NOT_STRICT_JSON = {
    "NaN": b'{"pid": NaN}',
    "Infinity": b'{"pid": Infinity}',
    "-Infinity": b'{"pid": -Infinity}',
    "NaN elsewhere": b'{"pid": ' + PID.encode() + b', "x": NaN}',
    "duplicate keys": b'{"pid": ' + PID.encode() + b', "pid": ' + PID.encode() + b"}",
    "BOM": b"\xef\xbb\xbf" + b'{"pid": ' + PID.encode() + b"}",
    "invalid UTF-8": b'{"pid": "\xff\xfe"}',
    "UTF-8 encoded surrogate": b'{"pid": "\xed\xa0\x80"}',
    "lone surrogate escape": b'{"pid": ' + PID.encode() + b', "x": "\\ud800"}',
    "lone surrogate key": b'{"\\udfff": 1, "pid": ' + PID.encode() + b"}",
    "deep nesting": b"[" * 512 + b"]" * 512,
    "deep objects": b'{"a":' * 120 + b"1" + b"}" * 120,
    "trailing garbage": b'{"pid": ' + PID.encode() + b"} x",
    "two texts": b"{} {}",
    "single quotes": b"{'pid': 'x'}",
}


@pytest.mark.parametrize("body", list(NOT_STRICT_JSON.values()), ids=list(NOT_STRICT_JSON))
def test_json_that_is_not_strict_rfc_8259_is_400(daemon: DaemonProcess, body: bytes) -> None:
    assert len(body) <= 1024
    assert_error(redeem_raw(port_of(daemon.public_url), body), 400, "invalid_request")


def test_strict_json_still_accepts_what_rfc_8259_allows(daemon: DaemonProcess) -> None:
    """Escapes, a valid surrogate pair, huge numbers elsewhere: a valid PID is then judged (404)."""
    pid = "ab" * 32
    escaped = "".join(f"\\u{ord(c):04x}" for c in pid)
    for body in (
        f'{{"pid": "{escaped}"}}',
        f'{{"pid": "{pid}", "emoji": "\\ud83d\\ude00", "n": 1e400, "m": -0.0, "deep": [[[[1]]]]}}',
        f' \n\t{{"pid": "{pid}"}}\r\n',
    ):
        assert_error(redeem_raw(port_of(daemon.public_url), body.encode()), 404, "payment_not_found")


def test_deep_nesting_on_the_internal_listener_is_400(daemon: DaemonProcess, token: str) -> None:
    """4 KiB of brackets: far past what Python's parser takes before RecursionError."""
    body = b'{"reason": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    answer = exchange(
        port_of(daemon.internal_url),
        request(
            "POST",
            f"/api/v1/token/{token}/revoke",
            headers={**daemon.auth_headers(), "Content-Type": "application/json"},
            body=body,
        ),
    )
    assert_error(answer, 400, "invalid_request")
    assert daemon.internal("GET", f"/api/v1/token/{token}").json()["status"] == "active"


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.binary(max_size=1100) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_any_bytes_get_a_4xx_json_answer_never_5xx(daemon: DaemonProcess, body: bytes) -> None:
    answer = redeem_raw(port_of(daemon.public_url), body)
    assert 400 <= answer.status < 500, answer
    assert answer.headers["content-type"] == JSON_TYPE
    assert set(answer.json()) >= {"error", "message"}


# -- framing ---------------------------------------------------------------------------------------


def _post_head(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # a size line that is not hex
        b'3\r\n{"pid": 1}\r\n0\r\n\r\n',  # data longer than its size
        b"5\r\n{}\r\n",  # a chunk cut short, then the client stops sending
    ],
    ids=["bad size line", "data longer than its size", "cut short"],
)
def test_broken_chunked_framing_is_400_json(daemon: DaemonProcess, chunks: bytes) -> None:
    wire = Wire(port_of(daemon.public_url))
    try:
        wire.send(_post_head(REDEEM, "Transfer-Encoding: chunked") + chunks)
        wire.sock.shutdown(socket.SHUT_WR)
        answer = wire.read_answer()
    finally:
        wire.close()
    assert_error(answer, 400, "invalid_request")


def test_a_chunk_over_the_server_limit_is_413(daemon: DaemonProcess) -> None:
    wire = Wire(port_of(daemon.public_url))
    try:
        wire.send(_post_head(REDEEM, "Transfer-Encoding: chunked") + b"%x\r\n" % (70 * 1024) + b"x" * 1024)
        answer = wire.read_answer()
    finally:
        wire.close()
    assert answer.status == 413, answer


def test_content_length_with_transfer_encoding_is_400(daemon: DaemonProcess) -> None:
    body = b'{"pid": "' + b"ab" * 32 + b'"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    wire = Wire(port_of(daemon.public_url))
    try:
        wire.send(
            _post_head(REDEEM, f"Content-Length: {len(chunked)}", "Transfer-Encoding: chunked") + chunked
        )
        answer = wire.read_answer()
    finally:
        wire.close()
    assert_error(answer, 400, "invalid_request")


def test_content_length_that_is_not_one_number_is_400(daemon: DaemonProcess) -> None:
    """`5, 5` is how two Content-Length headers look when joined; the server or the app refuses it."""
    for value in ("5, 5", "+5", "5_0", " 0x5"):
        answer = exchange(port_of(daemon.public_url), _post_head(REDEEM, f"Content-Length: {value}") + b"{}")
        assert answer.status == 400, (value, answer)


def test_a_body_shorter_than_its_content_length_is_400(daemon: DaemonProcess) -> None:
    wire = Wire(port_of(daemon.public_url))
    try:
        wire.send(_post_head(REDEEM, "Content-Length: 100") + b'{"pid": "ab"}')
        wire.sock.shutdown(socket.SHUT_WR)  # the client is done: the body will never be complete
        answer = wire.read_answer()
    finally:
        wire.close()
    assert_error(answer, 400, "invalid_request")


def test_a_body_that_never_completes_is_408(tmp_path: Path, wallet: FakeWallet) -> None:
    env = {"HTTP_REQUEST_DEADLINE_SECS": "1"}
    with DaemonProcess(tmp_path / "deadline", wallet_url=wallet.url, env=env) as daemon:
        wire = Wire(port_of(daemon.public_url))
        try:
            wire.send(_post_head(REDEEM, "Content-Length: 100") + b'{"pid": ')
            answer = wire.read_answer()  # the client sends nothing more and waits
        finally:
            wire.close()
    # Closing the connection afterwards is the HTTP server's part (anon_ticket/httpd/listener.py).
    assert_error(answer, 408, "request_timeout")


# -- what a client sends wrong stays out of the log -------------------------------------------------


def test_client_mistakes_leave_no_traceback_and_a_bounded_log(daemon: DaemonProcess) -> None:
    port = port_of(daemon.public_url)
    before = len(daemon.log_text())
    for round_ in range(40):
        redeem_raw(port, NOT_STRICT_JSON["deep nesting"])
        redeem_raw(port, b'{"pid": NaN}')
        exchange(port, request("GET", f"/nope/{round_}"))
        wire = Wire(port)
        try:
            wire.send(_post_head(REDEEM, "Transfer-Encoding: chunked") + b"zz\r\n\r\n")
            wire.sock.shutdown(socket.SHUT_WR)
            wire.read_answer()
        finally:
            wire.close()
    daemon.internal("GET", "/healthz")
    daemon.wait_for_log("GET /healthz")
    grown = daemon.log_text()[before:]
    assert "Traceback" not in grown
    # 160 bad requests: at most a summary line, not a line (let alone a traceback) per request.
    assert len(grown.splitlines()) < 20, grown[-3000:]


def test_the_internal_access_log_masks_hex_runs_and_caps_lines(daemon: DaemonProcess) -> None:
    secret = "0123456789abcdef" * 3  # 48 hex digits: not token-shaped, still masked
    long_path = "/api/v1/" + "a/" * 2000
    daemon.internal("GET", f"/api/v1/token/{secret}")
    daemon.internal("GET", f"/api/v1/x{secret[:16]}y/z%0Aforged%20line")
    daemon.internal("GET", long_path)
    daemon.internal("GET", "/healthz?after=masking")
    daemon.wait_for_log("GET /healthz")
    log = daemon.log_text()
    assert secret[:16] not in log and secret[16:32] not in log
    assert "<48 hex>" in log and "<16 hex>" in log
    assert "\nforged" not in log  # a newline in a path cannot start a line of its own
    longest = max(len(line) for line in log.splitlines() if line.count("internal GET"))
    assert longest < 400


# -- 503 bodies are generic ------------------------------------------------------------------------


def test_503_names_the_component_never_a_path_or_database_error(
    pipeline: Pipeline, wallet: FakeWallet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader that cannot open its database file: the client learns `storage`, the operator the rest."""
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    assert pipeline.poll().ok
    hidden = tmp_path / "no-such-folder" / "secret-name.db"

    def broken_reader() -> SqliteStore:
        return SqliteStore(hidden, query_only=True)

    actors, published = pipeline.daemon.actors, pipeline.daemon.published
    settings = RedeemSettings(MIN_AMOUNT, CONFIRMATIONS, writer_timeout_secs=2.0)
    app = PublicApp(
        Metrics(actors, 2.0),
        PublicInfo(published, MIN_AMOUNT, CONFIRMATIONS),
        Redeemer(actors, published, broken_reader, settings),
    )
    listener = Listener("public", BindAddress("127.0.0.1", 0), app, threads=2)
    listener.bind()
    listener.serve_in_thread()
    try:
        with caplog.at_level(logging.WARNING, logger="anon_ticket.api.routing"):
            answers = [
                redeem_raw(listener.bound_port or 0, json.dumps({"pid": pid.hex()}).encode())
                for _ in range(5)
            ]
    finally:
        listener.stop()
    for answer in answers:
        body = assert_error(answer, 503, "unavailable")
        assert body["message"] == "storage unavailable, retry later"
        assert answer.headers["retry-after"].isdigit()
        assert "secret-name" not in answer.body.decode() and "sqlite" not in answer.body.decode().lower()
    logged = [r.getMessage() for r in caplog.records if "secret-name" in r.getMessage()]
    assert len(logged) == 1, logged  # the detail, for the operator, once (not once per request)


# -- counted in statsd -----------------------------------------------------------------------------


def test_client_mistakes_are_counted_in_statsd_on_both_listeners(tmp_path: Path, wallet: FakeWallet) -> None:
    """Real UDP: the daemon's statsd counters name the listener and the error code of each mistake."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(1.0)
        env = {"STATSD_PORT": str(statsd.getsockname()[1]), "STATSD_PREFIX": "shop"}
        with DaemonProcess(tmp_path / "statsd", wallet_url=wallet.url, env=env) as daemon:
            public, internal = port_of(daemon.public_url), port_of(daemon.internal_url)
            for _ in range(3):
                redeem_raw(public, b'{"pid": NaN}')
                exchange(public, request("GET", "/nope"))
                exchange(public, request("DELETE", REDEEM))
                exchange(internal, request("GET", "/api/v1/status"))
                exchange(internal, request("GET", "/api/v1/nope", headers=daemon.auth_headers()))
                exchange(internal, request("HEAD", "/healthz"), head_request=True)
            wanted = {
                "shop.public.invalid_request": 3,
                "shop.public.not_found": 3,
                "shop.public.method_not_allowed": 3,
                "shop.internal.unauthorized": 3,
                "shop.internal.not_found": 3,
                "shop.internal.healthz": 3,
            }
            counted: dict[str, int] = {}

            def all_counted() -> bool | None:
                try:
                    packet = statsd.recv(65536).decode()
                except TimeoutError:
                    return None
                for line in packet.splitlines():
                    name, _, rest = line.partition(":")
                    value, _, kind = rest.partition("|")
                    if kind == "c":
                        counted[name] = counted.get(name, 0) + int(value)
                return True if all(counted.get(k, 0) >= n for k, n in wanted.items()) else None

            try:
                wait_for(f"counters {wanted} in statsd", all_counted, 15, 0)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; counted: {counted}") from None
