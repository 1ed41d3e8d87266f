"""A corpus of hostile HTTP/1.1 request bytes, for the llhttp differential and the split property.

Families of request-smuggling tricks (CL.TE, TE.CL, obfuscated Transfer-Encoding and Content-Length,
chunk-size and extension tricks, control bytes, bare CR and LF, pipelining, huge numbers, request
line oddities) are generated programmatically, plus hand-written cases from real desync reports.
Every case is `(name, bytes)`; names are stable, so a known difference can be listed by name with
its reason (tests/test_http_differential.py). `scripts/fuzz_framing.py` seeds its corpus from here.
"""

from __future__ import annotations

from collections.abc import Iterator

Case = tuple[str, bytes]

HOST = b"Host: x\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED_BODY = b"2\r\n{}\r\n0\r\n\r\n"

# Transfer-Encoding values a lenient parser may read as chunked and a strict one may not.
TE_VALUES: dict[str, bytes] = {
    "plain": b"chunked",
    "upper": b"CHUNKED",
    "mixed": b"cHuNkEd",
    "lead-sp": b" chunked",
    "trail-sp": b"chunked ",
    "lead-tab": b"\tchunked",
    "trail-tab": b"chunked\t",
    "nbsp": b"\xa0chunked",
    "nel": b"chunked\x85",
    "vt": b"chunked\x0b",
    "ff": b"\x0cchunked",
    "nul": b"chunked\x00",
    "quoted": b'"chunked"',
    "x-chunked": b"x-chunked",
    "chunk": b"chunk",
    "chunked-s": b"chunkeds",
    "params": b"chunked;q=1",
    "identity-chunked": b"identity, chunked",
    "chunked-identity": b"chunked, identity",
    "gzip-chunked": b"gzip, chunked",
    "chunked-gzip": b"chunked, gzip",
    "twice": b"chunked, chunked",
    "empty-elem": b", chunked",
    "empty-elem-end": b"chunked, ",
    "comma-only": b",",
    "empty": b"",
    "identity": b"identity",
    "utf8-nbsp": b"\xc2\xa0chunked",
}

# Header names that may or may not be read as Transfer-Encoding.
TE_NAMES: dict[str, bytes] = {
    "canonical": b"Transfer-Encoding",
    "lower": b"transfer-encoding",
    "underscore": b"Transfer_Encoding",
    "sp-before-colon": b"Transfer-Encoding ",
    "tab-before-colon": b"Transfer-Encoding\t",
    "lead-sp": b" Transfer-Encoding",
    "x-prefix": b"X-Transfer-Encoding",
}

CL_VALUES: dict[str, bytes] = {
    "plain": b"2",
    "lead-zero": b"002",
    "lead-sp": b" 2",
    "trail-sp": b"2 ",
    "lead-tab": b"\t2",
    "plus": b"+2",
    "minus": b"-2",
    "hex": b"0x2",
    "decimal": b"2.0",
    "exp": b"2e0",
    "nbsp": b"\xa02",
    "nel": b"2\x85",
    "vt": b"2\x0b",
    "superscript": "²".encode(),
    "arabic": "٢".encode(),
    "list-equal": b"2, 2",
    "list-differ": b"2, 3",
    "space-inside": b"1 2",
    "empty": b"",
    "huge-20": b"9" * 20,
    "huge-4301": b"9" * 4301,
    "zero-18": b"0" * 17 + b"2",
    "zero-19": b"0" * 18 + b"2",
    "nul": b"2\x00",
}

CHUNK_LINES: dict[str, bytes] = {
    "plain": b"2",
    "upper-hex": b"0002",
    "lead-sp": b" 2",
    "trail-sp": b"2 ",
    "lead-tab": b"\t2",
    "hex-prefix": b"0x2",
    "plus": b"+2",
    "minus": b"-2",
    "9-digits": b"000000002",
    "huge": b"fffffffff",
    "not-hex": b"2g",
    "empty": b"",
    "ext-name": b"2;a",
    "ext-value": b"2;a=b",
    "ext-quoted": b'2;a="b c"',
    "ext-quoted-escape": b'2;a="b\\"c"',
    "ext-quoted-open": b'2;a="b',
    "ext-many": b"2;a=b;c;d=e",
    "ext-bws": b"2 ; a = b",
    "ext-bws-tab": b"2\t;a",
    "ext-empty": b"2;",
    "ext-empty-name": b"2;=b",
    "ext-empty-value": b"2;a=",
    "ext-space-in-value": b"2;a=b c",
    "ext-nul": b"2;a=\x00",
    "ext-del": b"2;a=\x7f",
    "ext-obs-text": b"2;a=\xff",
    "ext-quoted-obs-text": b'2;a="\xff"',
    "ext-quoted-ctl": b'2;a="\x01"',
    "ext-semicolon-value": b"2;a=b;",
    "ext-comma": b"2,a",
    "ext-long": b"2;" + b"e" * 1100,
}

LINE_ENDINGS: dict[str, bytes] = {
    "crlf": b"\r\n",
    "lf": b"\n",
    "cr": b"\r",
    "crcrlf": b"\r\r\n",
    "lfcr": b"\n\r",
}


def _post(headers: bytes, body: bytes, follow: bytes = NEXT) -> bytes:
    return b"POST /a HTTP/1.1\r\n" + HOST + headers + b"\r\n" + body + follow


def transfer_encoding_family() -> Iterator[Case]:
    for value_name, value in TE_VALUES.items():
        # A valid chunked body followed by a request: read as chunked, two requests; read as a
        # length-less request, the chunked body becomes a (bad) next request.
        yield f"te-value-{value_name}", _post(b"Transfer-Encoding: " + value + b"\r\n", CHUNKED_BODY)
    for name_name, name in TE_NAMES.items():
        yield f"te-name-{name_name}", _post(name + b": chunked\r\n", CHUNKED_BODY)
    yield "te-obs-fold", _post(b"X: y\r\n Transfer-Encoding: chunked\r\n", CHUNKED_BODY)
    yield "te-obs-fold-value", _post(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY)
    yield (
        "te-two-headers",
        _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY),
    )
    yield (
        "te-two-headers-identity",
        _post(b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY),
    )
    yield "te-http10", b"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY


def content_length_family() -> Iterator[Case]:
    for value_name, value in CL_VALUES.items():
        yield f"cl-value-{value_name}", _post(b"Content-Length: " + value + b"\r\n", b"{}")
    yield "cl-twice-equal", _post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}")
    yield "cl-twice-differ", _post(b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}x")
    yield "cl-zero-then-body", _post(b"Content-Length: 0\r\n", b"GET /b HTTP/1.1\r\n\r\n")
    yield "cl-get-body", b"GET /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}" + NEXT
    yield "cl-short-body", _post(b"Content-Length: 5\r\n", b"{}", b"")
    yield "cl-body-is-request", _post(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED)


def desync_family() -> Iterator[Case]:
    """CL.TE and TE.CL: both framings in one request, in every order and obfuscation."""
    smuggle_chunked = b"0\r\n\r\n" + SMUGGLED
    te_cl_body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    for te_name, te in (
        ("plain", b"chunked"),
        ("upper", b"CHUNKED"),
        ("sp", b" chunked"),
        ("nbsp", b"\xa0chunked"),
    ):
        for cl_name, cl in (("short", b"4"), ("long", b"%d" % len(te_cl_body)), ("zero", b"0")):
            both = b"Content-Length: " + cl + b"\r\nTransfer-Encoding: " + te + b"\r\n"
            other = b"Transfer-Encoding: " + te + b"\r\nContent-Length: " + cl + b"\r\n"
            yield f"cl-te-{te_name}-{cl_name}", _post(both, smuggle_chunked, b"")
            yield f"te-cl-{te_name}-{cl_name}", _post(other, te_cl_body, b"")
    yield (
        "cl-te-name-sp",
        _post(b"Content-Length: 4\r\nTransfer-Encoding : chunked\r\n", smuggle_chunked, b""),
    )
    yield (
        "cl-te-x-header",
        _post(b"Content-Length: 4\r\nX: x\nTransfer-Encoding: chunked\r\n", smuggle_chunked),
    )


def chunk_family() -> Iterator[Case]:
    te = b"Transfer-Encoding: chunked\r\n"
    for line_name, line in CHUNK_LINES.items():
        yield f"chunk-line-{line_name}", _post(te, line + b"\r\n{}\r\n0\r\n\r\n")
    yield "chunk-ext-bare-lf", _post(te, b"2;\nXX\r\n{}\r\n0\r\n\r\n")
    yield "chunk-ext-bare-cr", _post(te, b"2;\rXX\r\n{}\r\n0\r\n\r\n")
    yield "chunk-size-bare-lf", _post(te, b"2\n{}\r\n0\r\n\r\n")
    yield "chunk-data-long", _post(te, b"2\r\n{}x\r\n0\r\n\r\n")
    yield "chunk-data-short", _post(te, b"3\r\n{}\r\n0\r\n\r\n")
    yield "chunk-data-lf", _post(te, b"2\r\n{}\n0\r\n\r\n")
    yield "chunk-data-no-crlf", _post(te, b"2\r\n{}0\r\n\r\n")
    yield "chunk-last-00", _post(te, b"00\r\n\r\n")
    yield "chunk-last-ext", _post(te, b"0;a=b\r\n\r\n")
    yield "chunk-last-sp", _post(te, b"0 \r\n\r\n")
    yield "chunk-no-last", _post(te, b"2\r\n{}\r\n", b"")
    yield "chunk-last-no-crlf", _post(te, b"0\r\n", b"")
    yield "chunk-many-small", _post(te, b"1\r\nx\r\n" * 50 + b"0\r\n\r\n")
    yield "trailer-one", _post(te, b"0\r\nX-T: v\r\n\r\n")
    yield "trailer-many", _post(te, b"0\r\n" + b"X-T: v\r\n" * 10 + b"\r\n")
    yield "trailer-too-many", _post(te, b"0\r\n" + b"X-T: v\r\n" * 40 + b"\r\n")
    yield "trailer-long", _post(te, b"0\r\nX-T: " + b"v" * 9000 + b"\r\n\r\n")
    yield "trailer-no-colon", _post(te, b"0\r\nnocolon\r\n\r\n")
    yield "trailer-obs-fold", _post(te, b"0\r\nX: a\r\n b\r\n\r\n")
    yield "trailer-bare-lf", _post(te, b"0\r\nX: a\n\r\n")
    yield "trailer-nul", _post(te, b"0\r\nX: a\x00\r\n\r\n")
    yield "trailer-is-request", _post(te, b"0\r\n" + SMUGGLED)
    yield "chunk-framing-flood", _post(te, b"1;e\r\nx\r\n" * 3000 + b"0\r\n\r\n")


def control_byte_family() -> Iterator[Case]:
    for byte in [*range(0x00, 0x20), 0x7F]:
        b = bytes([byte])
        yield f"ctl-{byte:02x}-value", b"GET /a HTTP/1.1\r\nX: a" + b + b"b\r\n\r\n" + NEXT
        yield f"ctl-{byte:02x}-name", b"GET /a HTTP/1.1\r\nX" + b + b"Y: b\r\n\r\n" + NEXT
        yield f"ctl-{byte:02x}-target", b"GET /a" + b + b"b HTTP/1.1\r\n\r\n" + NEXT
    for byte in (0x80, 0xA0, 0xFF):
        yield f"obs-text-{byte:02x}-value", b"GET /a HTTP/1.1\r\nX: a" + bytes([byte]) + b"\r\n\r\n" + NEXT


def line_ending_family() -> Iterator[Case]:
    lines = [b"POST /a HTTP/1.1", b"Host: x", b"Content-Length: 2", b""]
    for ending_name, ending in LINE_ENDINGS.items():
        for index in range(len(lines)):
            raw = b"".join(line + (ending if i == index else b"\r\n") for i, line in enumerate(lines))
            yield f"eol-{ending_name}-line{index}", raw + b"{}" + NEXT
        yield f"eol-{ending_name}-all", b"".join(line + ending for line in lines) + b"{}" + NEXT
    yield "eol-leading-crlf", b"\r\n\r\n" + NEXT
    yield "eol-leading-lf", b"\n" + NEXT
    yield "eol-leading-cr", b"\r" + NEXT


def request_line_family() -> Iterator[Case]:
    for name, line in {
        "http10": b"GET /a HTTP/1.0",
        "http2": b"GET /a HTTP/2.0",
        "http12": b"GET /a HTTP/1.2",
        "http09": b"GET /a",
        "lower-version": b"GET /a http/1.1",
        "two-spaces": b"GET  /a HTTP/1.1",
        "tab": b"GET\t/a HTTP/1.1",
        "trailing-space": b"GET /a HTTP/1.1 ",
        "lower-method": b"get /a HTTP/1.1",
        "unknown-method": b"FOO /a HTTP/1.1",
        "star": b"OPTIONS * HTTP/1.1",
        "absolute": b"GET http://x/a HTTP/1.1",
        "absolute-bad": b"GET http://[x/ HTTP/1.1",
        "authority": b"CONNECT x:80 HTTP/1.1",
        "no-slash": b"GET a HTTP/1.1",
        "fragment": b"GET /a#b HTTP/1.1",
        "long-target": b"GET /" + b"a" * 9000 + b" HTTP/1.1",
        "long-method": b"G" * 40 + b" /a HTTP/1.1",
        "empty": b"",
    }.items():
        yield f"rl-{name}", line + b"\r\n" + HOST + b"\r\n" + NEXT
    yield (
        "rl-huge-head",
        b"GET /a HTTP/1.1\r\n" + b"X-H: " + b"h" * 4000 + b"\r\n" * 1 + b"X-I: i\r\n" * 2000 + b"\r\n",
    )
    yield "rl-many-headers", b"GET /a HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"
    yield "rl-header-no-colon", b"GET /a HTTP/1.1\r\nnocolon\r\n\r\n"
    yield "rl-header-empty-name", b"GET /a HTTP/1.1\r\n: v\r\n\r\n"
    yield "rl-header-empty-value", b"GET /a HTTP/1.1\r\nX:\r\n\r\n" + NEXT


def pipelining_family() -> Iterator[Case]:
    requests = [
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nz\r\n0\r\nT: v\r\n\r\n",
    ]
    for count in range(1, 5):
        yield f"pipe-{count}", b"".join(requests[:count])
    yield "pipe-all-twice", b"".join(requests) * 2
    yield "pipe-close", requests[0].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + requests[1]
    yield "pipe-http10", b"GET /a HTTP/1.0\r\n\r\n" + requests[0]
    yield "pipe-http10-keep", b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + requests[0]
    yield "pipe-crlf-between", requests[0] + b"\r\n" + requests[1]
    yield "pipe-lf-between", requests[0] + b"\n" + requests[1]
    yield "pipe-upgrade", b"GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n" + requests[0]
    yield (
        "pipe-expect",
        b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}" + requests[0],
    )


def hand_written() -> Iterator[Case]:
    """Cases from public desync write-ups and from this server's own history (issue 20)."""
    yield (
        "issue20-trailer-flood",
        _post(b"Transfer-Encoding: chunked\r\n", b"0\r\n" + b"X-T: " + b"v" * 8000 + b"\r\n" * 3),
    )
    yield (
        "issue20-space-before-size",
        _post(b"Transfer-Encoding: chunked\r\n", b" 4a\r\n" + b"x" * 0x4A + b"\r\n0\r\n\r\n"),
    )
    yield (
        "issue20-ext-bare-lf",
        _post(b"Transfer-Encoding: chunked\r\n", b"2;\nXX\r\n{}\r\n0\r\n\r\n" + SMUGGLED),
    )
    yield (
        "issue20-split-chunk-line",
        _post(b"Transfer-Encoding: chunked\r\n", b"1" + b"0" * 70 + b"\r\nx\r\n0\r\n\r\n"),
    )
    yield (
        "te-chunked-cl-first",
        _post(
            b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG", b"ET / HTTP/1.1\r\n\r\n"
        ),
    )
    yield "te-vertical-tab-name", _post(b"Transfer-Encoding:\x0bchunked\r\n", CHUNKED_BODY)
    yield (
        "te-header-in-body",
        _post(b"Content-Length: 30\r\n", b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    )
    yield "cl-overflow-wrap", _post(b"Content-Length: 18446744073709551618\r\n", b"{}")
    yield (
        "chunk-size-overflow-wrap",
        _post(b"Transfer-Encoding: chunked\r\n", b"10000000000000002\r\n{}\r\n0\r\n\r\n"),
    )
    yield "nul-in-request-line", b"GET /\x00 HTTP/1.1\r\n\r\n"
    yield "header-space-continuation", b"GET /a HTTP/1.1\r\nHost: x\r\n \r\n\r\n"
    yield "blank-lines-flood", b"\r\n" * 9000 + NEXT
    yield "host-twice", b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + NEXT
    yield "expect-then-close", b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"


def corpus() -> list[Case]:
    cases = [
        *transfer_encoding_family(),
        *content_length_family(),
        *desync_family(),
        *chunk_family(),
        *control_byte_family(),
        *line_ending_family(),
        *request_line_family(),
        *pipelining_family(),
        *hand_written(),
    ]
    names = [name for name, _ in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
