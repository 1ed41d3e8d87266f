"""The shared HTTP plumbing in-process: strict JSON, body reading, the route table, bounded logging.

The end-to-end versions of these rows are in test_http_details.py (real daemon, raw sockets); here
each piece is driven directly, including input streams that fail the ways a server's can (fault
injection, as the fake wallet does for the wallet), and log budgets on a clock the test moves.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anon_ticket.api import strict_json
from anon_ticket.api.internal import loggable
from anon_ticket.api.routing import OUTCOME, ROUTING_ARGS, Router
from anon_ticket.api.wsgi import error_body, has_body, parse_object, read_body, respond
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import (
    InvalidRequest,
    PayloadTooLarge,
    SchemaTooNew,
    StorageError,
    Unavailable,
)
from anon_ticket.httpd.incidents import ClientErrorSummary, OncePerInterval

# -- strict JSON -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=JSON_VALUES)
def test_every_json_text_without_floats_round_trips(value: Any) -> None:
    encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
    if strict_json._depth(encoded.decode()) <= strict_json.MAX_DEPTH:
        assert strict_json.loads(encoded) == value


@settings(max_examples=1000, deadline=None, database=None)
@given(body=st.binary(max_size=2048))
def test_any_bytes_parse_or_are_rejected_never_anything_else(body: bytes) -> None:
    with contextlib.suppress(strict_json.JsonRejected):
        strict_json.loads(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"NaN", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b'{"a": 1, "a": 1}', "same key twice"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
        (b'{"a": "\xc3"}', "UTF-8"),
        (b'["\\ud800"]', "surrogate"),
        (b'{"\\udc00": 1}', "surrogate"),
        (b'["\\ud83d x"]', "surrogate"),
        (b"[" * 33 + b"]" * 33, "nested"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (b"[" * 100000, "nested"),
        (b"1" * 5000, "not valid JSON"),
    ],
)
def test_what_rfc_8259_does_not_allow_is_rejected_with_a_reason(body: bytes, why: str) -> None:
    with pytest.raises(strict_json.JsonRejected, match=why):
        strict_json.loads(body)


def test_what_rfc_8259_allows_is_accepted() -> None:
    assert strict_json.loads(b"[" * 32 + b"]" * 32) is not None
    assert strict_json.loads(b'["\\ud83d\\ude00", "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]') == [
        "\U0001f600",
        '"' + "[" * 35,
    ]
    big = strict_json.loads(b"[1e400, -0.0, 12345678901234567890]")
    assert str(big[0]) == "1E+400" and big[2] == 12345678901234567890


def test_parse_object_wants_an_object() -> None:
    for body in (b"[]", b'"x"', b"1", b"null"):
        with pytest.raises(InvalidRequest, match="JSON object"):
            parse_object(body)
    with pytest.raises(InvalidRequest, match="NaN"):
        parse_object(b'{"pid": NaN}')


# -- reading bodies as our server hands them over ---------------------------------------------------
# Framing (ambiguous lengths, chunked, a body cut short or too slow) is the server's, answered before
# the application runs: tests/test_http_framing.py and tests/test_http_details.py.


class UnreadableStream:
    """A body that must not be read: the application refuses it on its stated length alone."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def environ(stream: Any, **headers: str) -> dict[str, Any]:
    return {"wsgi.input": stream, **headers}


def test_the_whole_body_is_read_and_its_stated_length_is_held_to_the_limit() -> None:
    assert read_body(environ(io.BytesIO(b'{"pid":"x"}'), CONTENT_LENGTH="11"), 11) == b'{"pid":"x"}'
    assert read_body(environ(io.BytesIO(b""), CONTENT_LENGTH="0"), 10) == b""
    assert read_body(environ(io.BytesIO(b"")), 10) == b""  # no CONTENT_LENGTH: no body
    with pytest.raises(PayloadTooLarge, match="at most 10 bytes"):
        read_body(environ(UnreadableStream(), CONTENT_LENGTH="11"), 10)


def test_a_body_is_announced_by_a_non_zero_length() -> None:
    assert has_body({"CONTENT_LENGTH": "2"})
    assert not has_body({"CONTENT_LENGTH": "0"})
    assert not has_body({})


def test_503_messages_name_the_component_only() -> None:
    leaky = StorageError("cannot open SQLite database /srv/secret/at.db: unable to open database file")
    assert error_body(leaky) == {"error": "unavailable", "message": "storage unavailable, retry later"}
    assert "secret" in str(leaky)  # the operator's log keeps the detail
    wallet = Unavailable("connection refused to 10.0.0.5:18082", component="wallet")
    assert error_body(wallet)["message"] == "wallet unavailable, retry later"
    assert Unavailable("x", component="/etc/passwd").public_message() == "actor unavailable, retry later"
    assert error_body(SchemaTooNew("schema 9 in /srv/at.db"))["message"] == "internal error"


# -- the route table -------------------------------------------------------------------------------


class Call:
    """Calls a WSGI app the way a server does and keeps what it answered."""

    def __init__(self, app: Any, method: str, path: str, **extra: Any) -> None:
        self.headers: list[tuple[str, str]] = []
        self.status = ""
        env = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(b""), **extra}
        self.environ = env
        self.body = b"".join(app(env, self._start))

    def _start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status, self.headers = status, headers

    @property
    def code(self) -> int:
        return int(self.status[:3])

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def greeting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    return respond(start_response, 200, {"hello": environ.get(ROUTING_ARGS, ((), {}))[1]})


def make_router(events: list[str]) -> Router:
    router = Router("test", count=events.append)
    router.add("/hello", "hello", GET=greeting)
    router.add("/item/{name}/poke", "poke", POST=greeting)
    router.mount("/panel/", greeting, "panel")
    return router


def test_routing_404_405_and_head() -> None:
    events: list[str] = []
    router = make_router(events)
    get = Call(router, "GET", "/hello")
    head = Call(router, "HEAD", "/hello")
    assert (get.code, head.code) == (200, 200)
    assert head.body == b"" and get.body
    assert head.header("Content-Length") == str(len(get.body))
    refused = Call(router, "POST", "/hello")
    assert (refused.code, refused.header("Allow")) == (405, "GET, HEAD")
    assert json.loads(refused.body)["error"] == "method_not_allowed"
    refused_head = Call(router, "HEAD", "/item/x/poke")
    assert (refused_head.code, refused_head.header("Allow"), refused_head.body) == (405, "POST", b"")
    poked = Call(router, "POST", "/item/abc/poke")
    assert json.loads(poked.body) == {"hello": {"name": "abc"}}
    assert Call(router, "POST", "/item/a/b/poke").code == 404
    missing_head = Call(router, "HEAD", "/nothing")
    assert (missing_head.code, missing_head.body) == (404, b"")
    panel_head = Call(router, "HEAD", "/panel/page")
    assert (panel_head.code, panel_head.body) == (200, b"")
    assert Call(router, "DELETE", "/panel").code == 200  # a mounted app answers every method itself
    assert events == [
        "test.hello",
        "test.hello",
        "test.method_not_allowed",
        "test.method_not_allowed",
        "test.poke",
        "test.not_found",
        "test.not_found",
        "test.panel",
        "test.panel",
    ]


def test_handlers_name_their_outcome() -> None:
    events: list[str] = []
    router = Router("public", count=events.append)

    def claimed(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ[OUTCOME] = "claimed"
        return respond(start_response, 200, {})

    router.add("/redeem", "redeem", POST=claimed)
    Call(router, "POST", "/redeem")
    assert events == ["public.claimed"]


def test_defects_answer_a_generic_503_and_log_one_traceback_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    router = Router("test", count=events.append)

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("/srv/secret/path")

    def misused(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise SchemaTooNew("schema 9 in /srv/secret/at.db")

    router.add("/broken", "broken", GET=broken)
    router.add("/misused", "misused", GET=misused)
    with caplog.at_level(logging.ERROR, logger="anon_ticket.api.routing"):
        answers = [Call(router, "GET", "/broken") for _ in range(50)] + [Call(router, "GET", "/misused")]
    for answer in answers:
        assert answer.code == 503
        assert json.loads(answer.body) == {"error": "unavailable", "message": "internal error, retry later"}
        assert answer.header("Retry-After") == "5"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert set(events) == {"test.internal_error"} and len(events) == 51


# -- bounded logging -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_client_errors_are_summarised_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("test.summary")
    summary = ClientErrorSummary(logger, "public", clock=clock)
    with caplog.at_level(logging.INFO, logger="test.summary"):
        for i in range(10_000):
            clock.now += 0.005  # 50 s in all
            summary.note("invalid_request" if i % 2 else "not_found")
        assert len(caplog.records) == 1  # the first one, at once
        clock.now += 11
        summary.note("invalid_pid")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "10000 client error(s)" in messages[1]
    assert "(5000 invalid_request, 4999 not_found, 1 invalid_pid)" in messages[1]
    assert max(len(m) for m in messages) < 300


def test_once_per_interval_counts_what_it_holds_back() -> None:
    clock = Clock()
    once = OncePerInterval(60, clock)
    assert once.admit("a") == 0
    assert [once.admit("a") for _ in range(5)] == [None] * 5
    assert once.admit("b") == 0
    clock.now += 60
    assert once.admit("a") == 5
    assert once.admit("a") is None


def test_loggable_paths_mask_every_long_hex_run() -> None:
    token = "ab" * 32
    digest = ServiceToken.parse(token).digest().log_prefix()
    assert loggable(f"/api/v1/token/{token}/revoke") == f"/api/v1/token/digest:{digest}/revoke"
    assert loggable("/x/" + "f" * 16 + "/y") == "/x/<16 hex>/y"
    assert loggable("/x/" + "f" * 15) == "/x/" + "f" * 15
    assert loggable("/" + "A" * 65) == "/<65 hex>"
    assert loggable("/a\nb\x00c\x7f") == "/a\\x0ab\\x00c\\x7f"
    long = loggable("/" + "a/" * 1000)
    assert len(long) <= 201 and long.endswith("…")
    cut = loggable("/" + "z" * 190 + "0123456789abcdef0123")  # the cap comes after masking
    assert "0123456789" not in cut
