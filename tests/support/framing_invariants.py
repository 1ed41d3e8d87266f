"""What must hold for any bytes a client sends to `RequestReader` (scripts/fuzz_framing.py, tests).

`check(data)` frames `data` whole, split at pseudo-random points derived from the data itself (so a
crash reproduces from the input file alone) and, for short inputs, one byte at a time, and fails
with AssertionError when

- anything but `FramingError` comes out of the reader;
- after a `feed` that needs more bytes, the buffer holds more than one unfinished line
  (`MAX_LINE_BYTES`): the reader keeps nothing it has parsed;
- one request took more raw bytes than `max_request_bytes()`, or has a body over the limit or more
  header fields than allowed;
- the outcome (requests, error, where the reader stopped) depends on how the bytes were split.
"""

from __future__ import annotations

import random
import zlib

from anon_ticket.httpd.framing import (
    HARD_BODY_LIMIT,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    FramingError,
    RequestReader,
    max_request_bytes,
)

BYTE_BY_BYTE_MAX = 4096  # inputs up to this size are also fed one byte at a time

Outcome = tuple[list[tuple[object, ...]], tuple[int, str, str] | None, str, bytes]


def frame(data: bytes, cuts: list[int]) -> Outcome:
    """Feed `data` cut at `cuts`; (requests, error, reader state, bytes left) with the invariants checked."""
    reader, buffer, requests = RequestReader(), bytearray(), []
    consumed = 0  # raw bytes of the request being read, taken out of the buffer so far
    start = 0
    for end in [*sorted(set(cuts)), len(data)]:
        if not start <= end <= len(data):
            continue
        buffer += data[start:end]
        start = end
        while True:
            before = len(buffer)
            try:
                request = reader.feed(buffer)
            except FramingError as fault:
                return requests, (fault.status, fault.code, str(fault)), "refused", b""
            consumed += before - len(buffer)
            assert consumed <= max_request_bytes(), f"a request took {consumed} raw bytes"
            if request is None:
                assert len(buffer) <= MAX_LINE_BYTES, f"{len(buffer)} bytes kept in {reader.state}"
                break
            assert len(request.body) <= HARD_BODY_LIMIT and len(request.headers) <= MAX_HEADERS
            requests.append(
                (request.method, request.target, request.version, tuple(request.headers), request.body)
            )
            consumed = 0
    return requests, None, reader.state.name, bytes(buffer)


def check(data: bytes) -> None:
    whole = frame(data, [])
    rng = random.Random(zlib.crc32(data))
    for _ in range(3):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 12))]
        assert frame(data, cuts) == whole, f"split at {sorted(cuts)} frames differently"
    if len(data) <= BYTE_BY_BYTE_MAX:
        assert frame(data, list(range(1, len(data)))) == whole, "byte by byte frames differently"
