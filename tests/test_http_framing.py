"""Request framing, the PROXY line and answer serialisation, as pure functions (docs/PROTOCOL.md §4, §8).

The daemon-level behaviour is in tests/test_siege.py; here every branch is cheap to reach, and the
reader is fed byte by byte as a slowloris client would send, which must frame exactly the same.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.httpd import proxy_protocol
from anon_ticket.httpd.client_faults import ClientFaults
from anon_ticket.httpd.framing import HARD_BODY_LIMIT, FramingError, Request, RequestReader
from anon_ticket.httpd.wsgi_bridge import error_answer, serialize

POST = b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def frame(raw: bytes) -> tuple[Request | None, bytearray]:
    buffer = bytearray(raw)
    return RequestReader().feed(buffer), buffer


def test_a_content_length_body_is_framed_and_what_follows_is_left() -> None:
    request, rest = frame(POST + b"Content-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n")
    assert request is not None
    assert (request.method, request.target, request.body) == ("POST", "/api/v1/redeem", b"{}")
    assert request.header("content-type") == "application/json"
    assert rest == b"GET / HTTP/1.1\r\n"


def test_a_chunked_body_is_decoded_with_extensions_and_trailers() -> None:
    request, rest = frame(
        POST + b"Transfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n1\r\n \r\n0\r\nT: v\r\n\r\n"
    )
    assert request is not None and request.body == b"{} " and rest == b""


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 70 + b"\r\n", 400),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n10001\r\n", 413),
        (POST + b"Content-Length: 65537\r\n\r\n", 413),
        (POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (POST + b"Content-Length: 1, 2\r\n\r\n", 400),
        (POST + b"Content-Length: -1\r\n\r\n", 400),
        (POST + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET //x HTTP/2.0\r\n\r\n", 400),
        (b"GET x HTTP/1.1\r\n\r\n", 400),
        (b"GET http://[x/ HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX" + b"x" * 17000, 431),
    ],
)
def test_framing_faults(raw: bytes, status: int) -> None:
    with pytest.raises(FramingError) as fault:
        frame(raw)
    assert fault.value.status == status


def test_repeated_lengths_are_refused_even_when_identical() -> None:
    for head in (b"Content-Length: 2\r\nContent-Length: 2\r\n", b"Content-Length: 2, 2\r\n"):
        with pytest.raises(FramingError) as fault:
            frame(POST + head + b"\r\n{}")
        assert fault.value.status == 400


def test_exactly_the_hard_limit_is_allowed_chunked() -> None:
    half = HARD_BODY_LIMIT // 2
    chunk = b"%x\r\n%s\r\n" % (half, b"x" * half)
    request, _ = frame(POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2 + b"0\r\n\r\n")
    assert request is not None and len(request.body) == HARD_BODY_LIMIT


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_dripped_bytes_frame_the_same_requests(cuts: list[int]) -> None:
    raw = (
        b"\r\n"
        + POST
        + b"Content-Length: 2\r\n\r\n{}"
        + POST
        + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    reader, buffer, got, pos = RequestReader(), bytearray(), [], 0
    for cut in [*cuts, len(raw)]:
        buffer += raw[pos : pos + cut]
        pos += cut
        while (request := reader.feed(buffer)) is not None:
            got.append(request.body)
        if pos >= len(raw):
            break
    assert got == [b"{}", b"abc"] and buffer == b""


def test_keep_alive_follows_the_version_and_connection_header() -> None:
    def keep(raw: bytes) -> bool:
        request, _ = frame(raw)
        assert request is not None
        return request.keep_alive

    assert keep(b"GET / HTTP/1.1\r\n\r\n")
    assert not keep(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert not keep(b"GET / HTTP/1.0\r\n\r\n")
    assert keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")


# -- the PROXY line --------------------------------------------------------------------------------


def test_the_circuit_is_the_low_32_bits_of_the_source_address() -> None:
    buffer = bytearray(b"PROXY TCP6 fc00:dead:beef:4dad::ab:cdef ::1 65535 42\r\nGET /")
    line = proxy_protocol.split_line(buffer)
    assert line is not None and buffer == b"GET /"
    assert proxy_protocol.circuit_id(line) == 0x00ABCDEF


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP6 ::1 ::1 1\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP6 ::1 ::1 65536 2\r\n",
        b"PROXY TCP6 ::1 ::1 01 2\r\n",
        b"PROXY TCP6 " + b"1" * 120,
    ],
)
def test_anything_but_a_proxy_tcp6_line_is_refused(raw: bytes) -> None:
    with pytest.raises(proxy_protocol.ProxyLineError):
        line = proxy_protocol.split_line(bytearray(raw))
        assert line is not None
        proxy_protocol.circuit_id(line)


def test_an_incomplete_proxy_line_waits() -> None:
    assert proxy_protocol.split_line(bytearray(b"PROXY TCP6 ::1")) is None
    assert proxy_protocol.split_line(bytearray(b"PRO")) is None


# -- answers ---------------------------------------------------------------------------------------


def test_no_answer_to_head_has_a_body_whatever_the_application_returns() -> None:
    answer = serialize("HEAD", 200, [("Content-Length", "5"), ("Server", "x/1.0")], b"hello", True)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert body == b""
    assert b"Content-Length: 5" in head and b"Server: anon_ticket" in head and b"x/1.0" not in head


def test_the_length_is_what_is_sent_and_close_is_announced() -> None:
    answer = serialize("GET", 200, [("Content-Length", "99")], b"hi", False)
    assert b"Content-Length: 2\r\n" in answer and b"Connection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nhi")


def test_server_errors_are_json_in_the_contract_shape() -> None:
    answer = error_answer("GET", 408, "request_timeout", "too slow")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b'{"error":"request_timeout","message":"too slow"}')


# -- client faults: counted always, summarised at most once a minute --------------------------------


def test_client_faults_are_counted_each_time_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    counted: list[tuple[str, int]] = []
    faults = ClientFaults("public", lambda kind, n: counted.append((kind, n)), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="anon_ticket.httpd"):
        for second in range(1, 181):
            now[0] = float(second)
            for _ in range(1000):
                faults.record("invalid_request")
            faults.summarise()
    assert len(counted) == 180_000
    summaries = [r.getMessage() for r in caplog.records]
    assert len(summaries) == 3  # at 60, 120 and 180 s: never more, whatever the rate
    assert summaries[0] == "public listener, client faults in the last minute: 60000 invalid_request"


def test_a_failing_counter_never_breaks_serving() -> None:
    def broken(kind: str, n: int) -> None:
        raise RuntimeError("metrics actor restarting")

    ClientFaults("public", broken).record("request_timeout")  # no exception


def test_a_defect_is_logged_once_a_minute_with_what_was_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    counted: list[tuple[str, int]] = []
    faults = ClientFaults("public", lambda kind, n: counted.append((kind, n)), clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="anon_ticket.httpd"):
        for second in range(0, 61, 20):  # at 0, 20, 40 and 60 s
            now[0] = float(second)
            faults.defect("the server failed on a request", RuntimeError("bug"))
    assert counted == [("app_error", 1)] * 4
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "public listener: the server failed on a request (0 more held back in the last minute)",
        "public listener: the server failed on a request (2 more held back in the last minute)",
    ]
    assert all(r.exc_info is not None for r in caplog.records)


# -- limits hold however the bytes arrive (issue 20) ------------------------------------------------

CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def outcome(raw: bytes, pieces: int) -> tuple[list[bytes], tuple[int, str] | None]:
    """The bodies framed and the error (status, message), feeding `raw` in `pieces` equal parts."""
    reader, buffer, bodies = RequestReader(), bytearray(), []
    step = max(1, -(-len(raw) // pieces))
    try:
        for start in range(0, len(raw), step):
            buffer += raw[start : start + step]
            while (request := reader.feed(buffer)) is not None:
                bodies.append(request.body)
    except FramingError as fault:
        return bodies, (fault.status, str(fault))
    return bodies, None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (CHUNKED + b"0\r\nX-T: " + b"v" * 9000 + b"\r\n\r\n", 431),  # one trailer line too long
        (CHUNKED + b"0\r\n" + b"X-T: vvvv\r\n" * 800 + b"\r\n", 431),  # the trailer section
        (CHUNKED + b"0\r\n" + b"X: v\r\n" * 40 + b"\r\n", 431),  # too many trailer fields
        (CHUNKED + b"1;e=" + b"x" * 2000 + b"\r\na\r\n0\r\n\r\n", 400),  # a chunk-size line
        (CHUNKED + b"1;e\r\na\r\n" * 3000 + b"0\r\n\r\n", 400),  # the framing of one body
        (POST + b"X: " + b"v" * 9000 + b"\r\n\r\n", 431),  # one header line
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),  # the target
        (b"GET /" + b"a" * 70000, 414),
        (POST + b"Content-Length: " + b"9" * 4301 + b"\r\n\r\n", 400),  # int() would raise
    ],
)
def test_a_limit_is_the_same_whole_or_byte_by_byte(raw: bytes, status: int) -> None:
    whole = outcome(raw, 1)
    assert whole[1] is not None and whole[1][0] == status
    assert outcome(raw, 7) == whole
    assert outcome(raw, len(raw)) == whole


def test_parsed_bytes_leave_the_buffer_at_once() -> None:
    reader, buffer = RequestReader(), bytearray(CHUNKED + b"1;a=b\r\nx\r\n0\r\nT: v\r\n")
    assert reader.feed(buffer) is None
    assert buffer == b""  # the head, the chunk and the trailer line were parsed and dropped
    buffer += b"X-Partial: abc"
    assert reader.feed(buffer) is None and buffer == b"X-Partial: abc"
