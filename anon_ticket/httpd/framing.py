"""Incremental HTTP/1.x request framing: when has a whole request arrived, and is it well formed?

The I/O thread feeds each connection's bytes to a `RequestReader` as they come; only once it returns
a complete `Request` (head and body, within the limits) does a worker thread see it
(docs/PROTOCOL.md §8). Framing faults are answered by the server itself, as the contract's JSON
errors (docs/PROTOCOL.md §4): malformed chunking 400, a body over the hard limit 413, conflicting
lengths 400, a transfer coding we do not implement 501 — and the connection closes after each,
because what follows on it can no longer be trusted to start a request.

The reader resumes where it stopped, so a client dripping a byte at a time costs a few comparisons
per byte, never a re-parse of everything it sent.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
HARD_BODY_LIMIT = 64 * 1024
_MAX_CHUNK_SIZE_LINE = 64

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VERSION = re.compile(rb"HTTP/1\.[01]\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]+\Z")


class FramingError(Exception):
    """The request cannot be framed: answer `status` with a JSON `code` and close the connection."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _bad(message: str) -> FramingError:
    return FramingError(400, "invalid_request", message)


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
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(slots=True)
class _Head:
    request: Request
    end: int  # offset of the first body byte in the buffer
    length: int | None  # Content-Length, or None for chunked


class RequestReader:
    """Frames one request at a time out of a connection's buffer; `take()` after each request."""

    def __init__(self, body_limit: int = HARD_BODY_LIMIT, head_limit: int = MAX_HEAD_BYTES) -> None:
        self._body_limit = body_limit
        self._head_limit = head_limit
        self._reset()

    def _reset(self) -> None:
        self._head: _Head | None = None
        self._scanned = 0  # how far the buffer was searched for the end of the head
        self._chunk_pos = 0  # where the next chunk-size line starts (chunked bodies)
        self._chunks = bytearray()
        self._in_trailer = False

    @staticmethod
    def started(buffer: bytearray) -> bool:
        """Whether any of a request (not just blank lines between requests) has arrived."""
        return bool(buffer.strip(b"\r\n"))

    def head(self) -> Request | None:
        """The head of the request being read, once it has arrived (for `Expect: 100-continue`)."""
        return self._head.request if self._head is not None else None

    def feed(self, buffer: bytearray) -> Request | None:
        """The whole request at the start of `buffer`, or None while more bytes are needed.

        Raises FramingError for a request that can never be valid. On success the request's bytes
        are removed from the buffer (what follows is the next, pipelined, request).
        """
        if self._head is None:
            self._head = self._parse_head(buffer)
            if self._head is None:
                return None
        head = self._head
        if head.length is not None:
            if len(buffer) - head.end < head.length:
                return None
            body = bytes(buffer[head.end : head.end + head.length])
            del buffer[: head.end + head.length]
        else:
            end = self._feed_chunked(buffer, head.end)
            if end is None:
                return None
            body = bytes(self._chunks)
            del buffer[:end]
        request = head.request
        request.body = body
        self._reset()
        return request

    # -- the head ---------------------------------------------------------------------------------

    def _parse_head(self, buffer: bytearray) -> _Head | None:
        start = 0
        while buffer.startswith(b"\r\n", start):  # RFC 9112 §2.2: ignore CRLFs before a request
            start += 2
        if start:
            del buffer[:start]
            self._scanned = 0
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self._head_limit:
                raise FramingError(431, "invalid_request", "the request head is too large")
            return None
        if end + 4 > self._head_limit:
            raise FramingError(431, "invalid_request", "the request head is too large")
        lines = bytes(buffer[:end]).split(b"\r\n")
        request = self._request_line(lines[0])
        if len(lines) - 1 > MAX_HEADERS:
            raise FramingError(431, "invalid_request", "too many header fields")
        for line in lines[1:]:
            request.headers.append(self._field(line))
        length = self._body_length(request)
        expects = (request.header("expect") or "").lower() == "100-continue"
        request.expects_continue = expects and request.version == "HTTP/1.1"
        return _Head(request, end + 4, length)

    @staticmethod
    def _request_line(line: bytes) -> Request:
        parts = line.split(b" ")
        if len(parts) != 3:
            raise _bad("the request line must be METHOD TARGET VERSION")
        method, target, version = parts
        if not _TOKEN.match(method):
            raise _bad("the method is not a token")
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

    @staticmethod
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

    def _body_length(self, request: Request) -> int | None:
        lengths = [value for key, value in request.headers if key == "content-length"]
        codings = request.header("transfer-encoding")
        if codings is not None:
            if lengths:
                raise _bad("Content-Length and Transfer-Encoding together")
            names = [c.strip().lower() for c in codings.split(",")]
            if names == ["chunked"]:
                return None
            if names[-1] != "chunked":
                raise _bad("a request body must be chunked last")
            raise FramingError(501, "not_implemented", "only the chunked transfer coding is implemented")
        if not lengths:
            return 0
        # Exactly one plain number. RFC 9110 §8.6 would allow a list of identical values, but a
        # request that needs such leniency is one a smuggling attempt would also send.
        if len(lengths) != 1 or "," in lengths[0]:
            raise _bad("conflicting Content-Length headers")
        text = lengths[0].strip()
        if not text.isascii() or not text.isdigit():
            raise _bad("Content-Length is not a number")
        length = int(text)
        if length > self._body_limit:
            raise FramingError(413, "payload_too_large", f"the body must be at most {self._body_limit} bytes")
        return length

    # -- chunked bodies (RFC 9112 §7.1) -----------------------------------------------------------

    def _feed_chunked(self, buffer: bytearray, body_start: int) -> int | None:
        """The buffer offset just past the body, or None while more is needed."""
        pos = max(self._chunk_pos, body_start)
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                if len(buffer) - pos > (self._head_limit if self._in_trailer else _MAX_CHUNK_SIZE_LINE):
                    raise _bad("a chunk-size line or trailer is too long")
                self._chunk_pos = pos
                return None
            line = bytes(buffer[pos:line_end])
            if self._in_trailer:
                if not line:
                    return line_end + 2
                self._field(line)  # validated, then dropped: no trailer reaches the application
                pos = line_end + 2
                continue
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX.match(size_text) or len(size_text) > 8:
                raise _bad("a chunk size is not valid hex")
            size = int(size_text, 16)
            if size == 0:
                self._in_trailer = True
                pos = line_end + 2
                continue
            if len(self._chunks) + size > self._body_limit:
                raise FramingError(
                    413, "payload_too_large", f"the body must be at most {self._body_limit} bytes"
                )
            data_start = line_end + 2
            if len(buffer) < data_start + size + 2:
                self._chunk_pos = pos
                return None
            if buffer[data_start + size : data_start + size + 2] != b"\r\n":
                raise _bad("chunk data is longer than its size")
            self._chunks += buffer[data_start : data_start + size]
            pos = data_start + size + 2
