"""WSGI on a worker thread: a complete request in, the bytes of its whole answer out.

Requests reach a worker only once they have fully arrived (docs/PROTOCOL.md §8), so the body is an
in-memory stream and the application never waits on a client. Answers are small JSON or HTML pages,
so the whole answer is built before it is sent: its length is known, and the server, not the
application, has the last word on the details every answer must get right (docs/PROTOCOL.md §4): no
body on any `HEAD` answer, `Server: anon_ticket` without a version, `Connection: close` when the
connection will close.
"""

from __future__ import annotations

import email.utils
import io
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from anon_ticket.httpd.framing import Request

SERVER_NAME = "anon_ticket"  # the Server header: no version, no host name
CIRCUIT_KEY = "anon_ticket.circuit"  # the tor circuit id (int) when PROXY_PROTOCOL=tor, else absent
_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_OWN_HEADERS = frozenset({"server", "date", "connection", "transfer-encoding", "keep-alive"})
_NO_BODY = frozenset({204, 304})

WsgiCallable = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a connection comes from and arrived at, for the environ."""

    server_name: str
    server_port: str
    remote_addr: str
    remote_port: str
    circuit: int | None = None


class _Date:
    """The Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._text = email.utils.formatdate(now, usegmt=True)
            self._second = now
        return self._text


http_date = _Date()


class AppFailed(Exception):
    """The application raised or broke the WSGI protocol: a defect, answered with a generic 503."""


def environ_for(request: Request, peer: Peer, errors: Any) -> dict[str, Any]:
    target = request.target
    if target.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": peer.server_name,
        "SERVER_PORT": peer.server_port,
        "SERVER_PROTOCOL": request.version,
        "REMOTE_ADDR": peer.remote_addr,
        "REMOTE_PORT": peer.remote_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if peer.circuit is not None:
        environ[CIRCUIT_KEY] = peer.circuit
    for name, value in request.headers:
        if name in ("content-length", "transfer-encoding"):
            continue  # the body is whole: its length below is the truth
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = environ[key] + ", " + value if key in environ else value
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        environ["CONTENT_LENGTH"] = str(len(request.body))
    return environ


def call_app(app: WsgiCallable, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run the application to the end: (status, headers, body). AppFailed for any defect."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if started and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        started[:] = [status, headers]
        return lambda data: chunks.append(bytes(data))

    chunks: list[bytes] = []
    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                chunks.append(bytes(chunk))
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise AssertionError("the application did not call start_response")
        status = int(str(started[0]).split(" ", 1)[0])
        headers = [(str(k), str(v)) for k, v in started[1]]
    except Exception as exc:
        raise AppFailed(f"{type(exc).__name__} in the WSGI application") from exc
    return status, headers, b"".join(chunks)


def body_consumed(environ: dict[str, Any]) -> bool:
    """Whether the application read the whole body: if not, the connection closes after the answer."""
    stream = environ["wsgi.input"]
    return not isinstance(stream, io.BytesIO) or stream.tell() >= len(stream.getbuffer())


def serialize(
    method: str, status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool
) -> bytes:
    """The answer's bytes: our own framing headers, and no body for HEAD (RFC 9110 §9.3.2)."""
    lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}"]
    has_length = False
    for name, value in headers:
        lower = name.lower()
        if lower in _OWN_HEADERS or "\r" in value or "\n" in value:
            continue
        if lower == "content-length":
            has_length = True
            lines.append(f"{name}: {value if method == 'HEAD' else len(body)}")
            continue
        lines.append(f"{name}: {value}")
    no_body = status in _NO_BODY or 100 <= status < 200
    if not has_length and not no_body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append(f"Date: {http_date()}")
    lines.append(f"Server: {SERVER_NAME}")
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    if method == "HEAD" or no_body:
        return head
    return head + body


def error_answer(
    method: str,
    status: int,
    code: str,
    message: str,
    keep_alive: bool = False,
    extra_headers: list[tuple[str, str]] | None = None,
) -> bytes:
    """An answer the server itself gives, in the contract's JSON error shape (docs/PROTOCOL.md §4)."""
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *(extra_headers or []),
    ]
    return serialize(method, status, headers, body, keep_alive)


class LogStream:
    """`wsgi.errors`: what an application writes there goes to the log, never to raw stderr.

    Raw stderr would break `LOG_FORMAT=json`; each write is one bounded log record.
    """

    def __init__(self, write_line: Callable[[str], None]) -> None:
        self._write_line = write_line

    def write(self, text: str) -> int:
        stripped = text.strip()
        if stripped:
            self._write_line(stripped[:500])
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        return None
