"""Incremental HTTP/1.x request framing: when has a whole request arrived, and is it well formed?

The I/O thread feeds each connection's bytes to a `RequestReader` as they come; only once it returns
a complete `Request` (head and body, within the limits) does a worker thread see it
(docs/PROTOCOL.md §8). Framing faults are answered by the server itself, as the contract's JSON
errors (docs/PROTOCOL.md §4) — and the connection closes after each, because what follows on it can
no longer be trusted to start a request.

The reader is a state machine in the shape of h11's (one named state per part of a request, see
`State`), but stricter than h11, because a server that reads a request differently from a proxy in
front of it can be smuggled through: a byte that makes the request invalid refuses it as soon as it
arrives. Three rules make the outcome independent of how the bytes are split into reads — the same
bytes in one piece or one at a time give the same requests or the same error:

- every limit is on what has arrived, checked as it arrives: a line is too long when a byte past its
  limit arrives that is not its CRLF, whether or not the CRLF comes later;
- every error is decided by the bytes before and at the position where it happens, never by what is
  still missing;
- the bytes of a request are taken out of the connection's buffer as soon as they are parsed (a
  finished line, a piece of body), so the buffer holds at most one unfinished line, and chunk-size
  lines, extensions and trailers, which are checked and dropped, cost nothing once read.

Line endings are CRLF only: a bare LF or a bare CR anywhere in a head, chunk-size line or trailer is
400 at once (RFC 9112 §2.2 allows a server to accept a bare LF; a server behind another one must not,
since the two would disagree on where lines end). The limits (module constants below) bound the raw
bytes of one request: `max_request_bytes()`.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

MAX_HEAD_BYTES = 16 * 1024  # request line, header lines, their CRLFs, blank lines before them (431)
MAX_TARGET_BYTES = 8 * 1024  # the request target (414)
MAX_METHOD_BYTES = 32
MAX_FIELD_LINE_BYTES = 8 * 1024  # one header or trailer line without its CRLF (431)
MAX_HEADERS = 100
MAX_CHUNK_LINE_BYTES = 1024  # one chunk-size line with its extensions, without its CRLF (400)
MAX_CHUNK_FRAMING_BYTES = 16 * 1024  # all chunk-size lines and CRLFs of one body (400)
MAX_TRAILER_BYTES = 8 * 1024  # the whole trailer section, its final CRLF included (431)
MAX_TRAILERS = 32
MAX_LENGTH_DIGITS = 18  # a longer Content-Length is refused before int() sees it
HARD_BODY_LIMIT = 64 * 1024

# The longest request line: METHOD SP target SP HTTP/1.x
MAX_REQUEST_LINE_BYTES = MAX_METHOD_BYTES + 1 + MAX_TARGET_BYTES + 1 + len("HTTP/1.1")
# The longest unfinished line the reader ever leaves in a buffer (plus a CR waiting for its LF).
MAX_LINE_BYTES = max(MAX_REQUEST_LINE_BYTES, MAX_FIELD_LINE_BYTES, MAX_CHUNK_LINE_BYTES) + 1

_TOKEN_CLASS = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TOKEN_CLASS + rb"+\Z")
_VERSION = re.compile(rb"HTTP/1\.[01]\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")
_DIGITS = re.compile(r"[0-9]+\Z")  # ASCII only: str.isdigit() also takes '²' and '٣'
_TOKEN_TEXT = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_OWS = " \t"  # RFC 9110 §5.6.3: the only whitespace in a field; str.strip() takes U+00A0 and U+0085
# RFC 9112 §7.1.1: chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}(?![0-9A-Fa-f])")
_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*"
    + _TOKEN_CLASS
    + rb"+(?:[ \t]*=[ \t]*(?:"
    + _TOKEN_CLASS
    + rb"+|"
    + _QUOTED
    + rb"))?)*\Z"
)
_CR, _LF = 13, 10


class State(enum.Enum):
    """Where the reader is in the request it is reading."""

    IDLE = "blank lines before a request (RFC 9112 §2.2), or nothing yet"
    REQUEST_LINE = "the request line"
    HEADERS = "header lines, up to the blank line that ends the head"
    BODY = "a body of known length (Content-Length)"
    CHUNK_SIZE = "a chunk-size line with its extensions"
    CHUNK_DATA = "the data of a chunk"
    CHUNK_END = "the CRLF after a chunk's data"
    TRAILERS = "trailer lines after the last chunk, up to a blank line"


class FramingError(Exception):
    """The request cannot be framed: answer `status` with a JSON `code` and close the connection."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _bad(message: str) -> FramingError:
    return FramingError(400, "invalid_request", message)


def _too_large(message: str) -> FramingError:
    return FramingError(431, "invalid_request", message)


def max_request_bytes(body_limit: int = HARD_BODY_LIMIT) -> int:
    """The most raw bytes one request can consist of before the reader refuses it."""
    return MAX_HEAD_BYTES + body_limit + MAX_CHUNK_FRAMING_BYTES + MAX_TRAILER_BYTES


@dataclass(slots=True)
class Request:
    """A whole request, as it arrived (header names lower-cased, values latin-1 text)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    expects_continue: bool = False

    def header(self, name: str) -> str | None:
        """All values of a header joined with ", " (RFC 9110 §5.3), or None."""
        found = [value for key, value in self.headers if key == name]
        return ", ".join(found) if found else None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip(_OWS).lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def take_line(buffer: bytearray, limit: int, too_long: Callable[[], FramingError]) -> bytes | None:
    """The line at the start of `buffer` without its CRLF, removed from it; None while it is unfinished.

    Decided by the first CR or LF within `limit + 1` bytes, so by the bytes that have arrived alone:
    an LF first is a bare LF, a CR followed by anything but LF a bare CR (both 400), and `limit + 1`
    bytes with neither means the line is longer than `limit`, whatever comes after.
    """
    window = min(len(buffer), limit + 1)
    cr = buffer.find(b"\r", 0, window)
    lf = buffer.find(b"\n", 0, cr if cr >= 0 else window)
    if lf >= 0:
        raise _bad("a line ends in a bare LF (only CRLF ends a line)")
    if cr < 0:
        if len(buffer) > limit:
            raise too_long()
        return None
    if cr + 1 >= len(buffer):
        return None
    if buffer[cr + 1] != _LF:
        raise _bad("a bare CR (only CRLF ends a line)")
    line = bytes(buffer[:cr])
    del buffer[: cr + 2]
    return line


def _field(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon:
        raise _bad("a header line has no colon")
    if not _TOKEN.match(name):  # also refuses obs-fold and space before the colon (RFC 9112 §5)
        raise _bad("a header name is not valid")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise _bad("a header value holds control characters")
    return name.decode("ascii").lower(), value.decode("latin-1")


class RequestReader:
    """Frames one request at a time out of a connection's buffer, consuming what it has parsed.

    `feed(buffer)` after every read; it returns each complete request once and starts on the next.
    """

    def __init__(self, body_limit: int = HARD_BODY_LIMIT) -> None:
        self._body_limit = body_limit
        self._reset()

    def _reset(self) -> None:
        self.state = State.IDLE
        self._request: Request | None = None
        self._head_used = 0  # head bytes consumed so far, CRLFs included
        self._body: bytes | bytearray = bytearray()
        self._remaining = 0  # body bytes still to come (BODY) or of this chunk (CHUNK_DATA)
        self._framing_used = 0  # chunk-size lines and CRLFs consumed
        self._trailer_used = 0
        self._trailers = 0

    def started(self, buffer: bytearray) -> bool:
        """Whether any of a request (not just blank lines between requests) has arrived."""
        return self.state is not State.IDLE or bool(buffer.strip(b"\r\n"))

    def in_request(self, buffer: bytearray) -> bool:
        """Whether any byte of the next request, a blank line before it included, has arrived."""
        return self.state is not State.IDLE or self._head_used > 0 or bool(buffer)

    def head(self) -> Request | None:
        """The head of the request being read, once it has arrived (for `Expect: 100-continue`)."""
        if self.state in (State.IDLE, State.REQUEST_LINE, State.HEADERS):
            return None
        return self._request

    def feed(self, buffer: bytearray) -> Request | None:
        """The whole request at the start of `buffer`, or None while more bytes are needed.

        Raises FramingError for a request that can never be valid. What it has parsed is removed
        from the buffer; on success, what is left is the start of the next (pipelined) request.
        """
        steps = _STEPS
        while True:
            progressed = steps[self.state](self, buffer)
            if self.state is State.IDLE and self._request is not None:
                request = self._request
                request.body = bytes(self._body)
                self._reset()
                return request
            if not progressed:
                return None

    # -- the head ---------------------------------------------------------------------------------

    def _head_budget(self) -> int:
        return MAX_HEAD_BYTES - self._head_used

    def _idle(self, buffer: bytearray) -> bool:
        while buffer.startswith(b"\r\n"):  # RFC 9112 §2.2: ignore CRLFs before a request line
            del buffer[:2]
            self._head_used += 2
            if self._head_budget() < 4:
                raise _too_large("the request head is too large")
        if not buffer:
            return False
        if buffer[0] == _LF:
            raise _bad("a line ends in a bare LF (only CRLF ends a line)")
        if buffer[0] == _CR:
            if len(buffer) < 2:
                return False
            raise _bad("a bare CR (only CRLF ends a line)")
        self.state = State.REQUEST_LINE
        return True

    # Each head line is checked the same way whether it is taken alone (`take_line`, while the head
    # is arriving) or with the whole head at once (`_whole_head`, the common case of a head that
    # arrived in one read): its limit depends only on the bytes before it.

    def _request_line_limit(self) -> int:
        return min(MAX_REQUEST_LINE_BYTES, self._head_budget() - 4)

    def _request_line_too_long(self, start: bytes) -> FramingError:
        """The error for a request line longer than its limit, from its first bytes."""
        if self._request_line_limit() < MAX_REQUEST_LINE_BYTES:
            return _too_large("the request head is too large")
        method, space, _ = start[: MAX_METHOD_BYTES + 1].partition(b" ")
        if space and _TOKEN.match(method):
            return FramingError(414, "invalid_request", "the request target is too long")
        return _bad("the request line is not valid")

    def _header_limit(self) -> int:
        return max(0, min(MAX_FIELD_LINE_BYTES, self._head_budget() - 4))  # room for the blank line

    def _header_too_long(self) -> FramingError:
        if self._head_budget() - 4 >= MAX_FIELD_LINE_BYTES:
            return _too_large("a header line is too long")
        return _too_large("the request head is too large")

    def _request_line(self, buffer: bytearray) -> bool:
        if self._whole_head(buffer):
            return True
        too_long = lambda: self._request_line_too_long(bytes(buffer[: MAX_METHOD_BYTES + 1]))  # noqa: E731
        line = take_line(buffer, self._request_line_limit(), too_long)
        if line is None:
            return False
        self._on_request_line(line)
        return True

    def _on_request_line(self, line: bytes) -> None:
        self._head_used += len(line) + 2
        self._request = self._parse_request_line(line)
        self.state = State.HEADERS

    @staticmethod
    def _parse_request_line(line: bytes) -> Request:
        parts = line.split(b" ")
        if len(parts) != 3:
            raise _bad("the request line must be METHOD TARGET VERSION")
        method, target, version = parts
        if len(method) > MAX_METHOD_BYTES or not _TOKEN.match(method):
            raise _bad("the method is not a token")
        if len(target) > MAX_TARGET_BYTES:
            raise FramingError(414, "invalid_request", "the request target is too long")
        if not _TARGET.match(target) or not (
            target.startswith((b"/", b"http://", b"https://")) or target == b"*"
        ):
            raise _bad("the request target is not valid")
        if not _VERSION.match(version):
            raise _bad("only HTTP/1.0 and HTTP/1.1 are served")
        if target.startswith((b"http://", b"https://")):
            try:
                urllib.parse.urlsplit(target.decode("ascii"))
            except ValueError:
                raise _bad("the request target is not a valid URI") from None
        return Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), [], b"")

    def _header_line(self, buffer: bytearray) -> bool:
        if self._whole_head(buffer):
            return True
        line = take_line(buffer, self._header_limit(), self._header_too_long)
        if line is None:
            return False
        self._on_header_line(line)
        return True

    def _on_header_line(self, line: bytes) -> None:
        self._head_used += len(line) + 2
        request = self._request
        assert request is not None
        if not line:
            self._start_body(request)
            return
        if len(request.headers) >= MAX_HEADERS:
            raise _too_large("too many header fields")
        request.headers.append(_field(line))

    def _whole_head(self, buffer: bytearray) -> bool:
        """Take the rest of the head in one go, if all of it is in `buffer` with CRLF endings only.

        The same checks as line by line, in the same order, so the same outcome: a head with a bare
        CR or LF, or not all there, is left to `take_line`, which decides where it goes wrong.
        """
        if buffer.startswith(b"\r\n"):
            end = 0
        else:
            found = buffer.find(b"\r\n\r\n", 0, self._head_budget())
            if found < 0:
                return False
            end = found + 2
        head = bytes(buffer[:end])
        if not (head.count(b"\n") == head.count(b"\r") == head.count(b"\r\n")):
            return False
        del buffer[: end + 2]
        used = self._head_used + end + 2
        lines = head.split(b"\r\n")[:-1] if head else []
        if self.state is State.REQUEST_LINE:
            if not lines:  # the blank line where the request line should be
                raise _bad("the request line must be METHOD TARGET VERSION")
            first = lines.pop(0)
            # The whole head fits the head budget, so only the line's own limit can bind here.
            if len(first) > MAX_REQUEST_LINE_BYTES:
                raise self._request_line_too_long(first)
            self._on_request_line(first)
        request = self._request
        assert request is not None
        headers = request.headers
        for line in lines:
            if len(line) > MAX_FIELD_LINE_BYTES:
                raise _too_large("a header line is too long")
            if len(headers) >= MAX_HEADERS:
                raise _too_large("too many header fields")
            headers.append(_field(line))
        self._head_used = used
        self._start_body(request)
        return True

    def _start_body(self, request: Request) -> None:
        length = self._body_length(request)
        expects = (request.header("expect") or "").strip(_OWS).lower() == "100-continue"
        request.expects_continue = expects and request.version == "HTTP/1.1"
        if length is None:
            self.state = State.CHUNK_SIZE
        elif length:
            self._remaining = length
            self.state = State.BODY
        else:
            self.state = State.IDLE  # complete: no body

    def _body_length(self, request: Request) -> int | None:
        """The Content-Length, 0 for none, or None for a chunked body (RFC 9112 §6.3)."""
        lengths = [value for key, value in request.headers if key == "content-length"]
        codings = request.header("transfer-encoding")
        if codings is not None:
            if lengths:
                raise _bad("Content-Length and Transfer-Encoding together")
            if request.version == "HTTP/1.0":  # RFC 9112 §6.1: faulty framing in a 1.0 request
                raise _bad("Transfer-Encoding in an HTTP/1.0 request")
            names = [c.strip(_OWS).lower() for c in codings.split(",")]
            if not all(_TOKEN_TEXT.match(name) for name in names):
                raise _bad("Transfer-Encoding is not a list of codings")
            if names[-1] != "chunked" or "chunked" in names[:-1]:
                raise _bad("a request body must be chunked once, last")
            if names == ["chunked"]:
                return None
            raise FramingError(501, "not_implemented", "only the chunked transfer coding is implemented")
        if not lengths:
            return 0
        # Exactly one plain number. RFC 9110 §8.6 would allow a list of identical values, but a
        # request that needs such leniency is one a smuggling attempt would also send.
        if len(lengths) != 1 or "," in lengths[0]:
            raise _bad("conflicting Content-Length headers")
        text = lengths[0].strip(_OWS)
        if not _DIGITS.match(text):
            raise _bad("Content-Length is not a number")
        if len(text) > MAX_LENGTH_DIGITS:
            raise _bad("Content-Length has too many digits")
        length = int(text)
        if length > self._body_limit:
            raise FramingError(413, "payload_too_large", f"the body must be at most {self._body_limit} bytes")
        return length

    # -- bodies -----------------------------------------------------------------------------------

    def _data(self, buffer: bytearray) -> bool:
        take = min(len(buffer), self._remaining)
        if not take:
            return False
        if not self._body and take == self._remaining and self.state is State.BODY:
            self._body = bytes(buffer[:take])  # the whole body at once: one copy, not three
        else:
            self._body += buffer[:take]
        del buffer[:take]
        self._remaining -= take
        if not self._remaining:
            self.state = State.IDLE if self.state is State.BODY else State.CHUNK_END
        return True

    # chunked (RFC 9112 §7.1)

    def _chunk_size(self, buffer: bytearray) -> bool:
        budget = MAX_CHUNK_FRAMING_BYTES - self._framing_used
        limit = max(0, min(MAX_CHUNK_LINE_BYTES, budget - 2))

        def too_long() -> FramingError:
            if budget - 2 >= MAX_CHUNK_LINE_BYTES:
                return _bad("a chunk-size line is too long")
            return _bad("the chunked framing of the body is too large")

        line = take_line(buffer, limit, too_long)
        if line is None:
            return False
        self._framing_used += len(line) + 2
        size_match = _CHUNK_SIZE.match(line)
        if size_match is None:
            raise _bad("a chunk size is not valid hex")
        if not _CHUNK_EXT.match(line, size_match.end()):
            raise _bad("a chunk extension is not valid")
        size = int(size_match.group(), 16)
        if size == 0:
            self.state = State.TRAILERS
        elif len(self._body) + size > self._body_limit:
            raise FramingError(413, "payload_too_large", f"the body must be at most {self._body_limit} bytes")
        else:
            self._remaining = size
            self.state = State.CHUNK_DATA
        return True

    def _chunk_end(self, buffer: bytearray) -> bool:
        if not buffer:
            return False
        if buffer[0] != _CR or (len(buffer) > 1 and buffer[1] != _LF):
            raise _bad("chunk data is longer than its size")
        if len(buffer) < 2:
            return False
        if MAX_CHUNK_FRAMING_BYTES - self._framing_used < 2:
            raise _bad("the chunked framing of the body is too large")
        del buffer[:2]
        self._framing_used += 2
        self.state = State.CHUNK_SIZE
        return True

    def _trailer_line(self, buffer: bytearray) -> bool:
        budget = MAX_TRAILER_BYTES - self._trailer_used  # always >= 2: room for the blank line
        limit = max(0, min(MAX_FIELD_LINE_BYTES, budget - 4))
        line = take_line(buffer, limit, lambda: _too_large("the trailer section is too large"))
        if line is None:
            return False
        self._trailer_used += len(line) + 2
        if not line:
            self.state = State.IDLE  # complete
            return True
        self._trailers += 1
        if self._trailers > MAX_TRAILERS:
            raise _too_large("too many trailer fields")
        _field(line)  # checked, then dropped: no trailer reaches the application
        return True


# What `feed` does in each state: consume what it can, and say whether it made progress.
_STEPS: dict[State, Callable[[RequestReader, bytearray], bool]] = {
    State.IDLE: RequestReader._idle,
    State.REQUEST_LINE: RequestReader._request_line,
    State.HEADERS: RequestReader._header_line,
    State.BODY: RequestReader._data,
    State.CHUNK_SIZE: RequestReader._chunk_size,
    State.CHUNK_DATA: RequestReader._data,
    State.CHUNK_END: RequestReader._chunk_end,
    State.TRAILERS: RequestReader._trailer_line,
}
