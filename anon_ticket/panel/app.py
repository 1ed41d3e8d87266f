"""Builds the panel: a `cherrypy.Application` that the internal listener serves by WSGI.

The Application is a WSGI callable by itself (`Application.__call__`), so the internal app hands it
`/admin/…` requests and nothing else is needed: CherryPy's global engine and server are never
started, and the global `cherrypy.tree` stays empty (the public listener can never serve the panel).
Its config keeps CherryPy quiet and safe for a money daemon's operator page: no tracebacks to the
client (errors are small HTML pages; the traceback goes to our log once), no request headers in the
log (they carry the session cookie), no access log of its own (the internal listener logs each
request), and a `Server` header without a version.
"""

from __future__ import annotations

import importlib.resources
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cherrypy
import jinja2

from anon_ticket.api.internal import InternalApp
from anon_ticket.config import BindAddress
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.errors import AnonTicketError
from anon_ticket.panel import figures, tools
from anon_ticket.panel.hosts import HostPolicy
from anon_ticket.panel.pages import Pages
from anon_ticket.panel.sessions import PanelSession
from anon_ticket.panel.throttle import LoginThrottle
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.status import StatusService
from anon_ticket.service.tokens import OperatorSettings, TokenService
from anon_ticket.storage.protocols import Store

log = logging.getLogger(__name__)

SCRIPT_NAME = "/admin"
MAX_FORM_BYTES = 4096
UNAVAILABLE_MESSAGE = (
    "Something the panel needs (storage, the wallet or an actor) is unavailable right now. "
    "Try again shortly; the daemon's log says more."
)


def templates() -> jinja2.Environment:
    """Jinja2 with autoescaping on for every template: nothing shown can inject markup."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("anon_ticket.panel", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["xmr"] = figures.xmr
    env.filters["time"] = lambda value: (rfc3339(value) or "—").replace("T", " ").replace("Z", " UTC")
    env.filters["age"] = age
    env.globals["prefix"] = tools.COOKIE_PATH
    return env


def age(seconds: int | None) -> str:
    """A short human age: `45 s`, `12 min`, `5 h 3 min`, `3 d 4 h`."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def build_panel(
    internal: InternalApp,
    tokens: TokenService,
    status: StatusService,
    metrics: Metrics,
    reader: Callable[[], Store],
    settings: OperatorSettings,
    address: BindAddress | Path,
    *,
    clock: Callable[[], float] = time.time,
) -> cherrypy.Application:
    """The `/admin/` Application for the internal listener bound at `address`."""
    env = templates()
    stylesheet = (importlib.resources.files("anon_ticket.panel") / "static" / "panel.css").read_text("utf-8")
    pages = Pages(
        internal, tokens, status, metrics, reader, settings, env, LoginThrottle(), stylesheet, clock
    )

    def error_page(status: str, message: str, traceback: str, version: str) -> str:
        """CherryPy's error pages (404, 405, 400 …) as the panel's own small page, never a traceback."""
        del traceback, version
        cherrypy.serving.response.headers["Content-Type"] = "text/html;charset=utf-8"
        return pages.render("error.html", status=status, message=message)

    def error_response() -> None:
        """An error no handler caught: an `AnonTicketError` as its status, anything else as 500."""
        error = sys.exc_info()[1]
        response = cherrypy.serving.response
        if isinstance(error, AnonTicketError):
            status, message = error.status, str(error)
            extra = [(k, v) for k, v in error.headers() if k == "Retry-After"]
            if status >= 500:
                # The details (a path, SQL, a database error) go to the log, not into the page.
                log.warning("admin panel: %s", error)
                message = UNAVAILABLE_MESSAGE
        else:
            log.error("unexpected error in the admin panel", exc_info=error)
            status, message, extra = 500, "Unexpected error; the daemon's log says more.", []
        response.status = status
        response.headers.clear()
        response.headers.update(
            {"Content-Type": "text/html;charset=utf-8", "Server": "anon_ticket", **dict(extra)}
        )
        response.body = pages.render("error.html", status=str(status), message=message).encode("utf-8")
        tools.secure_headers()

    policy = HostPolicy.for_listener(address)
    app = cherrypy.Application(
        pages,
        SCRIPT_NAME,
        {
            "/": {
                "panel.host.on": True,
                "panel.forms.on": True,
                "panel.signed_in.on": True,
                "panel.csrf.on": True,
                "panel.headers.on": True,
                "tools.allow.on": True,
                "tools.allow.methods": ["GET", "HEAD"],
                "tools.sessions.on": True,
                "tools.sessions.storage_class": PanelSession,
                "tools.sessions.name": tools.COOKIE_NAME,
                "tools.sessions.path": tools.COOKIE_PATH,
                "tools.sessions.httponly": True,
                "tools.sessions.timeout": tools.SESSION_IDLE_MINUTES,
                "tools.sessions.clean_freq": 0,
                "tools.encode.on": True,
                "tools.encode.encoding": "utf-8",
                "tools.log_headers.on": False,
                "tools.log_tracebacks.on": False,
                "request.show_tracebacks": False,
                "request.show_mismatched_params": False,
                "request.error_response": error_response,
                "request.body.maxbytes": MAX_FORM_BYTES,
                "error_page.default": error_page,
                "response.headers.server": "anon_ticket",
                "log.screen": False,
                "log.access_file": "",
                "log.error_file": "",
            }
        },
    )
    app.relative_urls = "server"  # redirects say `/admin/`, never echo the request's Host
    app.toolboxes = {**app.toolboxes, "panel": tools.build_toolbox(policy, pages.login_page)}
    # CherryPy's per-application loggers would otherwise also reach the root logger: the internal
    # listener already logs each request, and errors are logged above, once, without headers.
    app.log.error_log.propagate = False
    app.log.access_log.propagate = False
    return app
