"""llhttp as a referee: our framing never accepts what it refuses, nor cuts requests elsewhere (issue 20).

A request-smuggling attack needs two HTTP parsers that read the same bytes as different requests: a
front end (a proxy, a load balancer, Tor's onion service never parses HTTP, but an operator may put
one in front) and this server. llhttp (Node.js, uvicorn; `httptools` from PyPI, a test dependency
only) in its strict default mode is the referee: for every case of the hostile corpus
(tests/support/hostile_http.py), framed by our `RequestReader` and by llhttp,

- the requests both frame must be the same (method, target, body), in the same order;
- we must not frame a request llhttp does not (it refused it, or still waits for more);
- where llhttp frames more requests than we do, we must have refused (stricter), not be waiting.

Framing stops after a request either side would close the connection after (`Connection: close`,
HTTP/1.0, an upgrade): what follows is never read as a request. A case allowed to differ is listed in
`KNOWN` with its reason, and must still differ (a stale entry fails too). And the same bytes split
anywhere must give the same outcome (a hypothesis property over the corpus).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anon_ticket.httpd.framing import FramingError, RequestReader
from tests.support.hostile_http import corpus

Framed = tuple[bytes, bytes, bytes]  # method, target, body

CASES = corpus()
CASE_BYTES = dict(CASES)

# Cases where we accept what llhttp refuses, each with the reason it is no desync.
_BWS = (
    "RFC 9112 §7.1.1 lets whitespace (BWS) stand around ';' and '=' in a chunk extension, and a "
    "recipient must parse it; llhttp refuses it. The size is read the same (extensions are ignored)"
)
_METHOD = (
    "llhttp refuses methods it does not know; a method is any token (RFC 9110 §9.1), and it plays "
    "no part in framing a request (RFC 9112 §6.3): the application answers it 405 or 404"
)
KNOWN: dict[str, str] = {
    "te-value-trail-tab": (
        "a field value ends in optional whitespace, SP or HTAB (RFC 9110 §5.5); llhttp takes a "
        "trailing space after 'chunked' but not a tab. Both read the body as chunked"
    ),
    "chunk-line-ext-bws": _BWS,
    "chunk-line-ext-bws-tab": _BWS,
    "rl-lower-method": _METHOD,
    "rl-unknown-method": _METHOD,
}


@dataclass
class Outcome:
    requests: list[Framed] = field(default_factory=list)
    final: list[bool] = field(default_factory=list)  # the connection closes after this request
    error: str | None = None
    waiting: bool = False  # an unfinished request at the end

    def cut(self, at: int) -> None:
        """Keep the first `at` requests."""
        del self.requests[at:]
        del self.final[at:]


def ours(data: bytes, pieces: list[int] | None = None) -> Outcome:
    reader, buffer, outcome = RequestReader(), bytearray(), Outcome()
    cuts = [*sorted({c for c in pieces or [] if 0 < c < len(data)}), len(data)]
    start = 0
    try:
        for end in cuts:
            buffer += data[start:end]
            start = end
            while (request := reader.feed(buffer)) is not None:
                outcome.requests.append((request.method.encode(), request.target.encode(), request.body))
                outcome.final.append(not request.keep_alive)
                if not request.keep_alive:
                    return outcome
    except FramingError as fault:
        outcome.error = f"{fault.status} {fault}"
        return outcome
    outcome.waiting = reader.in_request(buffer)
    return outcome


class _Llhttp:
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.outcome = Outcome()
        self.url = b""
        self.body = b""
        self.in_message = False

    def on_message_begin(self) -> None:
        self.url, self.body, self.in_message = b"", b"", True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.outcome.requests.append((self.parser.get_method(), self.url, self.body))
        self.outcome.final.append(not self.parser.should_keep_alive())
        self.in_message = False


def llhttp(data: bytes) -> Outcome:
    referee = _Llhttp()
    try:
        referee.parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        referee.outcome.final[-1:] = [True]  # what follows an upgrade is not HTTP
    except httptools.HttpParserError as exc:
        referee.outcome.error = str(exc)
    referee.outcome.waiting = referee.in_message
    return referee.outcome


def difference(data: bytes) -> str | None:
    """Why our framing of `data` differs from llhttp's in a way that matters, or None."""
    mine, theirs = ours(data), llhttp(data)
    ends = [o.final.index(True) + 1 for o in (mine, theirs) if True in o.final]
    if ends:  # the connection closes after this request: nothing after it is read as one
        end = min(ends)
        for outcome in (mine, theirs):
            if len(outcome.requests) >= end:
                outcome.cut(end)
                outcome.error, outcome.waiting = None, False
    shared = min(len(mine.requests), len(theirs.requests))
    if mine.requests[:shared] != theirs.requests[:shared]:
        return f"different requests: ours {mine.requests[:shared]} llhttp {theirs.requests[:shared]}"
    if len(mine.requests) > len(theirs.requests):
        return f"we frame {len(mine.requests)} requests, llhttp {len(theirs.requests)} ({theirs.error})"
    if len(mine.requests) < len(theirs.requests) and mine.error is None:
        return f"we wait after {len(mine.requests)} requests where llhttp frames {len(theirs.requests)}"
    return None


@pytest.mark.parametrize(("name", "data"), CASES, ids=[name for name, _ in CASES])
def test_we_never_frame_what_llhttp_would_not(name: str, data: bytes) -> None:
    found = difference(data)
    if name in KNOWN:
        assert found is not None, f"{name} no longer differs from llhttp: remove it from KNOWN"
        return
    assert found is None, found


def test_the_corpus_is_hostile_enough() -> None:
    assert len(CASES) >= 300
    refused = sum(1 for _, data in CASES if ours(data).error is not None)
    assert refused >= len(CASES) // 2  # most cases are attacks, and are refused


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([name for name, _ in CASES]), st.data())
def test_any_split_of_the_same_bytes_frames_the_same(name: str, data: st.DataObject) -> None:
    raw = CASE_BYTES[name]
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(raw) - 1)), max_size=16))
    assert ours(raw, cuts) == ours(raw)


@given(st.sampled_from([name for name, _ in CASES]))
def test_byte_by_byte_frames_the_same_as_at_once(name: str) -> None:
    data = CASE_BYTES[name][:12_000]
    assert ours(data, list(range(1, len(data)))) == ours(data)
