"""A real HTTP server on a real loopback socket that plays a scripted sequence of docs/PROTOCOL.md §4 answers.

The daemon is not needed: the client only sees HTTP, so a script of (status, body, headers) per path
is the simplest faithful fake. Each path's script is consumed in order; its last step repeats.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from anon_ticket.client.cli import main
from anon_ticket.core.domain import PAYMENT_ID_SCHEME

PRIMARY = "48cdQyLdVoHhbTBqbFsts2fRPCF4GcDWcgm8UDofy7rpe2uqzK28U8tKRX8LSiRYWf3rPJRePskpS2hZ5eGx6ErKDeBYBFV"
INFO = {
    "primary_address": PRIMARY,
    "min_payment_amount": 10_000_000_000,
    "required_confirmations": 10,
    "payment_id_scheme": PAYMENT_ID_SCHEME,
}
DROP = "drop"  # a step that closes the connection without any answer
NOT_FOUND_CODE = "payment_not_found"


@dataclass(frozen=True)
class Step:
    status: int | str
    body: object = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


def error(status: int, code: str, message: str = "", **extra: object) -> Step:
    headers: tuple[tuple[str, str], ...] = ()
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers = (("Retry-After", str(retry_after)),)
    return Step(status, {"error": code, "message": message or code, **extra}, headers)


def ok(body: object, status: int = 200) -> Step:
    return Step(status, body)


@dataclass
class Seen:
    method: str
    path: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    steps: dict[str, list[Step]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, path: str) -> Step | None:
        with self.lock:
            queue = self.steps.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            with script.lock:
                script.seen.append(Seen(self.command, path, self.path, dict(self.headers.items()), body))
            step = script.next_step(path) or error(404, "not_found")
            if step.status == DROP:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            assert isinstance(step.status, int)
            payload = step.payload()
            self.send_response(step.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in step.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@dataclass
class FakeServer:
    url: str
    script: Script

    def play(self, path: str, *steps: Step) -> None:
        self.script.steps[path] = list(steps)

    def info(self, *steps: Step) -> None:
        self.play("/api/v1/info", *steps)

    def redeem(self, *steps: Step) -> None:
        self.play("/api/v1/redeem", *steps)


def start_server() -> tuple[FakeServer, ThreadingHTTPServer, threading.Thread]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake = FakeServer(f"http://127.0.0.1:{httpd.server_address[1]}", script)
    fake.info(ok(INFO))
    return fake, httpd, thread


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*argv: str, stdin: str = "") -> Run:
    """The command line as a user runs it, with its streams captured; stdin is a pipe, not a terminal."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())
