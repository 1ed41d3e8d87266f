"""The panel in-process, through its WSGI interface: errors, limits and the session's lifetime.

A real `InternalApp` and panel, with a storage reader that fails on demand (fault injection): an
unexpected exception is a 500 page and one log record with its traceback; a storage failure is a 503
page whose text names no path, SQL or database error (those go to the log). Also: oversized forms,
HEAD on a POST-only page, and a sign-in that ends after 8 hours however much it is used.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.published import PublishedState
from anon_ticket.api.internal import InternalApp
from anon_ticket.config import BindAddress, Secret
from anon_ticket.errors import StorageError
from anon_ticket.panel.app import UNAVAILABLE_MESSAGE, build_panel
from anon_ticket.panel.sessions import PanelSession
from anon_ticket.panel.tools import CONTENT_SECURITY_POLICY, COOKIE_NAME, SESSION_MAX_SECS
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.scan import ScanService
from anon_ticket.service.status import StatusService
from anon_ticket.service.tokens import OperatorSettings, TokenService
from anon_ticket.storage.protocols import Store

API_TOKEN = "panel-test-token-0123456789"


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.code = int(status[:3])
        self.headers = dict(headers)
        self.body = body.decode("utf-8")


def call(
    app: Any, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    """One WSGI call as a server makes it (PEP 3333 environ)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "anon_ticket",
        "SERVER_PORT": "8081",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8081",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    seen: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen[:] = [status, response_headers]

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Answer(seen[0], seen[1], data)


@pytest.fixture
def fault() -> list[BaseException]:
    return []


@pytest.fixture
def panel(fault: list[BaseException]) -> Any:
    def reader() -> Store:
        if fault:
            raise fault[0]
        raise AssertionError("each test sets a fault before the panel reads storage")

    actors = ActorLocator()
    operator = OperatorSettings(min_payment_amount=10, min_confirmations=2, actor_timeout_secs=1)
    tokens = TokenService(actors, reader, operator, clock=lambda: 1_800_000_000.0)
    status = StatusService(actors, PublishedState(), reader, operator)
    metrics = Metrics(actors, 1)
    internal = InternalApp(metrics, Secret(API_TOKEN), tokens, status, ScanService(actors, 1))
    return build_panel(internal, tokens, status, metrics, reader, operator, BindAddress("127.0.0.1", 8081))


def _signed_in_cookie(panel: Any) -> str:
    answer = call(
        panel,
        "POST",
        "/admin/login",
        body=b"api_token=" + API_TOKEN.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.code == 303, answer.body
    return answer.headers["Set-Cookie"].split(";")[0]


def test_an_unexpected_error_is_a_500_page_and_one_log_record(
    panel: Any, fault: list[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    cookie = _signed_in_cookie(panel)
    assert cookie.startswith(COOKIE_NAME + "=")
    fault.append(RuntimeError("boom in /srv/secret/anon_ticket.db"))
    with caplog.at_level(logging.INFO):
        answer = call(panel, "GET", "/admin/", headers={"Cookie": cookie})
    assert answer.code == 500
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Type"] == "text/html;charset=utf-8"
    assert "Unexpected error" in answer.body
    for leak in ("Traceback", "boom", "/srv/secret", "RuntimeError"):
        assert leak not in answer.body
    records = [r for r in caplog.records if "unexpected error in the admin panel" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None
    # Not twice (CherryPy's traceback and request-header logging are off): our record is the only one.
    assert not [r for r in caplog.records if r.name.startswith("cherrypy.error")]


def test_a_storage_failure_is_a_generic_503_page(
    panel: Any, fault: list[BaseException], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    cookie = _signed_in_cookie(panel)
    detail = f"database read failed: no such table: transfers ({tmp_path}/anon_ticket.db)"
    fault.append(StorageError(detail))
    with caplog.at_level(logging.INFO):
        for path in ("/admin/funds", "/admin/figures", "/admin/figures.csv", "/admin/"):
            answer = call(panel, "GET", path, headers={"Cookie": cookie})
            assert answer.code == 503, path
            assert answer.headers["Retry-After"] == "5"
            assert UNAVAILABLE_MESSAGE.split(" (")[0] in answer.body
            assert "no such table" not in answer.body and str(tmp_path) not in answer.body
    assert any(detail in r.getMessage() for r in caplog.records)
    assert "Traceback" not in caplog.text


def test_limits_and_head(panel: Any) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    big = call(panel, "POST", "/admin/login", body=b"api_token=" + b"x" * 5000, headers=form)
    assert big.code == 413 and "Traceback" not in big.body
    assert big.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    head = call(panel, "HEAD", "/admin/login")
    assert head.code == 405 and head.headers["Allow"] == "POST" and head.body == ""
    assert call(panel, "PUT", "/admin/", body=b"x", headers=form).code == 405


def test_a_sign_in_ends_after_eight_hours_whatever_its_use(panel: Any, fault: list[BaseException]) -> None:
    cookie = _signed_in_cookie(panel)
    fault.append(StorageError("not reached"))
    session_id = cookie.partition("=")[2]
    assert call(panel, "GET", "/admin/funds", headers={"Cookie": cookie}).code == 503  # signed in
    data, _ = PanelSession.cache[session_id]
    data["signed_in_at"] -= SESSION_MAX_SECS + 1  # as if signed in 8 hours ago (and used since)
    answer = call(panel, "GET", "/admin/funds", headers={"Cookie": cookie})
    assert answer.code == 303 and answer.headers["Location"] == "/admin/"
    assert session_id not in PanelSession.cache  # forgotten, not only refused
    assert "Max-Age=0" in answer.headers["Set-Cookie"]


def test_the_panel_never_touches_cherrypys_global_tree_engine_or_server(panel: Any) -> None:
    """Served by WSGI only: nothing mounted globally, nothing started (docs/PROTOCOL.md §5)."""
    import cherrypy  # noqa: PLC0415

    assert call(panel, "GET", "/admin/").code == 200
    assert cherrypy.tree.apps == {}
    assert cherrypy.engine.state == cherrypy.engine.states.STOPPED
    assert not cherrypy.server.running
