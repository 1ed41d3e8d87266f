"""The operator's admin panel at `/admin/` on the internal listener (docs/PROTOCOL.md §5).

Server-rendered HTML forms, no JavaScript, nothing loaded from elsewhere: the panel is for a browser
on the operator's machine (or through an SSH tunnel), and the less it can run, the less a compromised
page could do. It signs in with the internal API token through a form and then uses a session cookie,
so the token is typed once and never sits in a URL, a bookmark or the browser history.

Why the cookie has no `Secure` flag: the internal listener speaks plain HTTP on loopback or a Unix
socket, and browsers only send a `Secure` cookie over HTTPS (or to `localhost` by exact name), so the
panel would stop working through an SSH tunnel or a local reverse proxy. It is `HttpOnly`,
`SameSite=Strict` and limited to `Path=/admin/`; when a request did arrive over HTTPS (a TLS proxy
that says so in `wsgi.url_scheme`), `Secure` is added.

Cross-site requests are refused twice: every state-changing POST carries a per-session CSRF token in
a hidden field, and a POST whose `Origin` (or, without it, `Referer`) names another host is refused.
Sessions live in memory only (a bounded `TTLCache`): a restart signs everybody out, which is fine for
a panel with one kind of user.

Nothing typed into a form is ever logged: service tokens reach the log only as a digest prefix
(through `InternalApp.revoke`), and the internal API token never.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from cachetools import TTLCache

from anon_ticket.domain import ServiceToken
from anon_ticket.errors import (
    AnonTicketError,
    InvalidRequest,
    InvalidToken,
    Unauthorized,
)
from anon_ticket.http.internal import MAX_REASON_CHARS, InternalApp
from anon_ticket.http.wsgi import Environ, StartResponse, read_body

log = logging.getLogger(__name__)

PREFIX = "/admin/"
COOKIE_NAME = "anon_ticket_admin"
SESSION_TTL_SECS = 8 * 3600
MAX_SESSIONS = 1000
MAX_FORM_BYTES = 4096
MAX_FORM_FIELDS = 16
FORM_TYPE = "application/x-www-form-urlencoded"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
)
_HTML_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not `no-referrer`: with it, browsers send `Origin: null` on form POSTs (Fetch standard), and the
    # origin check below would refuse the panel's own forms.
    ("Referrer-Policy", "same-origin"),
]
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_ATOMIC_PER_XMR = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str


class Sessions:
    """Signed-in browsers: random ids, an absolute lifetime, and a cap so that logins cannot grow memory.

    cachetools caches are not thread-safe and cheroot serves requests from several threads, hence
    the lock. When the cap is reached the least recently used session is signed out.
    """

    def __init__(
        self,
        ttl_secs: float = SESSION_TTL_SECS,
        max_sessions: int = MAX_SESSIONS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache: TTLCache[str, Session] = TTLCache(maxsize=max_sessions, ttl=ttl_secs, timer=timer)
        self._lock = threading.Lock()
        self.ttl_secs = ttl_secs

    def create(self) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32))
        with self._lock:
            self._cache[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._cache.get(session_id)

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._cache.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)


class CsrfRefused(AnonTicketError):
    """A POST without this session's CSRF token, or from another origin."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True, slots=True)
class _Request:
    environ: Environ
    session_id: str | None
    session: Session | None


Page = tuple[int, str, list[tuple[str, str]]]


class AdminApp:
    """The WSGI application behind `/admin/`: `internal.mount(PREFIX, AdminApp(internal))`.

    It holds the InternalApp so that the panel shows exactly what the internal API answers and
    revokes through the same durable path.
    """

    def __init__(self, internal: InternalApp, *, sessions: Sessions | None = None) -> None:
        self._internal = internal
        self._sessions = sessions or Sessions()
        self._routes: dict[str, tuple[str, Callable[[_Request], Page]]] = {
            PREFIX: ("GET", self._home),
            PREFIX + "login": ("POST", self._login),
            PREFIX + "logout": ("POST", self._logout),
            PREFIX + "token": ("POST", self._lookup),
            PREFIX + "revoke": ("POST", self._revoke),
        }

    # -- dispatch -------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == PREFIX.rstrip("/"):
            return _send(start_response, 303, "", [("Location", PREFIX)])
        route = self._routes.get(path)
        if route is None:
            return _send(start_response, 404, _error_page("Not found", "There is no such page."), [])
        allowed, handler = route
        if method != allowed:
            return _send(
                start_response,
                405,
                _error_page("Method not allowed", f"Use {allowed}."),
                [("Allow", allowed)],
            )
        session_id = _cookie(environ.get("HTTP_COOKIE", ""), COOKIE_NAME)
        request = _Request(environ, session_id, self._sessions.get(session_id))
        try:
            status, body, headers = handler(request)
        except AnonTicketError as error:
            status, body, headers = self._error(request, error)
        except Exception:
            log.exception("unexpected error in the admin panel")
            status, body, headers = 500, _error_page("Error", "Unexpected error; see the log."), []
        return _send(start_response, status, body, headers)

    def _error(self, request: _Request, error: AnonTicketError) -> Page:
        headers = [(k, v) for k, v in error.headers() if k == "Retry-After"]
        if isinstance(error, Unauthorized):
            return 401, _login_page(str(error)), []
        if request.session is None:
            return error.status, _error_page(_title(error.status), str(error)), headers
        body = self._dashboard_shell(request.session, _notice(str(error), "error"), with_status=False)
        return error.status, body, headers

    # -- handlers -------------------------------------------------------------------------------

    def _home(self, request: _Request) -> Page:
        if request.session is None:
            return 200, _login_page(), []
        return 200, self._dashboard_shell(request.session, "", with_status=True), []

    def _login(self, request: _Request) -> Page:
        _require_same_origin(request.environ)
        form = _read_form(request.environ)
        typed = form.get("api_token", "").strip()
        try:
            self._internal.authenticate("Bearer " + typed)
        except Unauthorized:
            log.warning("admin panel: sign-in refused (wrong token)")
            return 401, _login_page("Wrong token. Sign in with the internal API token."), []
        self._sessions.drop(request.session_id)
        session_id, _ = self._sessions.create()
        log.info("admin panel: signed in")
        return 303, "", [("Location", PREFIX), ("Set-Cookie", self._cookie(request, session_id))]

    def _logout(self, request: _Request) -> Page:
        if request.session is not None:
            self._check_csrf(request, _read_form(request.environ))
            self._sessions.drop(request.session_id)
        expired = self._cookie(request, "", max_age=0)
        return 303, "", [("Location", PREFIX), ("Set-Cookie", expired)]

    def _lookup(self, request: _Request) -> Page:
        session = self._signed_in(request)
        form = _read_form(request.environ)
        self._check_csrf(request, form)
        token = _parse_token(form.get("token", ""))
        record = self._internal.token_record(token)
        return 200, self._record_page(session, record, ""), []

    def _revoke(self, request: _Request) -> Page:
        session = self._signed_in(request)
        form = _read_form(request.environ)
        self._check_csrf(request, form)
        token = _parse_token(form.get("token", ""))
        reason = form.get("reason", "").strip()
        if len(reason) > MAX_REASON_CHARS:
            raise InvalidRequest(f"the reason must be at most {MAX_REASON_CHARS} characters")
        if form.get("confirm") != "yes":
            raise InvalidRequest("tick the confirmation box to revoke the token")
        record = self._internal.revoke(token, reason or None)
        return 200, self._record_page(session, record, _notice("The token is revoked.", "ok")), []

    # -- sessions and CSRF ----------------------------------------------------------------------

    def _signed_in(self, request: _Request) -> Session:
        if request.session is None:
            raise Unauthorized("your session has expired; sign in again")
        return request.session

    def _check_csrf(self, request: _Request, form: Mapping[str, str]) -> None:
        assert request.session is not None
        _require_same_origin(request.environ)
        presented = form.get("csrf", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(presented, request.session.csrf.encode("ascii")):
            raise CsrfRefused("this form did not come from this panel; reload the page and try again")

    def _cookie(self, request: _Request, value: str, max_age: int | None = None) -> str:
        age = int(self._sessions.ttl_secs) if max_age is None else max_age
        parts = [
            f"{COOKIE_NAME}={value}",
            f"Path={PREFIX}",
            f"Max-Age={age}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if request.environ.get("wsgi.url_scheme") == "https":
            parts.append("Secure")
        return "; ".join(parts)

    # -- pages ----------------------------------------------------------------------------------

    def _dashboard_shell(self, session: Session, notice: str, *, with_status: bool) -> str:
        status = self._status_section() if with_status else ""
        return _page(
            "anon_ticket admin",
            notice + status + _lookup_form(session.csrf),
            _logout_form(session.csrf),
        )

    def _status_section(self) -> str:
        status = self._internal.status()
        actors = "".join(
            f"<tr><td>{_e(name)}</td><td class='{_e(actor['state'])}'>{_e(actor['state'])}</td>"
            f"<td>{_e(actor['restarts'])}</td></tr>"
            for name, actor in status["actors"].items()
        )
        wallet = status["wallet"]
        payments = status["payments"]
        tokens = status["tokens"]
        return (
            "<h2>Status</h2>"
            + _table(
                [
                    ("Version", status["version"]),
                    ("Abuse level", status["abuse_level"]),
                    ("Wallet height", wallet["height"]),
                    ("Scan cursor", status["scan_cursor"]),
                    ("Last poll", wallet["last_poll_at"]),
                    ("Last wallet error", wallet["last_error"]),
                    ("Primary address", wallet["primary_address"]),
                ]
            )
            + "<h2>Actors</h2><table><tr><th>Actor</th><th>State</th><th>Restarts</th></tr>"
            + actors
            + "</table><h2>Payments and tokens</h2>"
            + _table(
                [
                    ("Payments pending", payments["pending"]),
                    ("Payments redeemable", payments["redeemable"]),
                    ("Payments claimed", payments["claimed"]),
                    ("Tokens active", tokens["active"]),
                    ("Tokens revoked", tokens["revoked"]),
                ]
            )
            + self._flagged_section()
        )

    def _flagged_section(self) -> str:
        """Transfers that never count (docs/PROTOCOL.md §3): the operator may refund or investigate."""
        flagged = self._internal.flagged_transfers()
        heading = "<h2>Transfers not counted</h2>"
        if not flagged:
            return heading + "<p>None: no transfer with an unlock time or a double spend.</p>"
        rows = []
        for item in flagged:
            why = [
                name
                for name, on in (("unlock_time", item["locked"]), ("double spend", item["double_spend_seen"]))
                if on
            ]
            rows.append(
                f"<tr><td><code>{_e(item['txid'])}</code></td><td><code>{_e(item['payment_id'])}</code></td>"
                f"<td>{_e(_xmr(item['amount']))}</td><td>{_e(item['height'] or 'pool')}</td>"
                f"<td>{_e(', '.join(why))}</td></tr>"
            )
        header = "<tr><th>txid</th><th>payment id</th><th>amount</th><th>height</th><th>why</th></tr>"
        return heading + "<table>" + header + "".join(rows) + "</table>"

    def _record_page(self, session: Session, record: Mapping[str, Any], notice: str) -> str:
        amount = int(record["amount"])
        details = _table(
            [
                ("Token", record["token"]),
                ("Status", record["status"]),
                ("Amount", f"{amount} atomic units ({_xmr(amount)} XMR)"),
                ("Issued at", record["issued_at"]),
                ("Revoked at", record["revoked_at"]),
                ("Revoke reason", record["revoke_reason"]),
            ]
        )
        revocable = record["status"] == "active" or record["revoke_reason"] == "payment_reorged"
        revoke = _revoke_form(session.csrf, str(record["token"])) if revocable else ""
        return _page(
            "Token",
            notice + "<h2>Token</h2>" + details + revoke + _lookup_form(session.csrf),
            _logout_form(session.csrf),
        )


# -- request helpers ----------------------------------------------------------------------------


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def _require_same_origin(environ: Environ) -> None:
    """Refuse a POST whose Origin (or Referer) names another host than the one it was sent to.

    Neither header present (curl, scripts) is allowed: the CSRF token still has to match.
    """
    host = environ.get("HTTP_HOST", "").lower()
    origin = environ.get("HTTP_ORIGIN")
    source = origin if origin is not None else environ.get("HTTP_REFERER")
    if source is None or source == "":
        return
    if source == "null" or urllib.parse.urlsplit(source).netloc.lower() != host:
        raise CsrfRefused("the form was sent from another site")


def _read_form(environ: Environ) -> dict[str, str]:
    """The fields of an urlencoded form; an empty body is an empty form (its CSRF check then fails)."""
    media_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    raw = read_body(environ, MAX_FORM_BYTES)
    if not raw:
        return {}
    if media_type != FORM_TYPE:
        raise InvalidRequest("the panel only accepts its own HTML forms")
    try:
        pairs = urllib.parse.parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form is not valid") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _parse_token(text: str) -> ServiceToken:
    """Lenient about the whitespace a paste brings; otherwise exactly the API's rule."""
    try:
        return ServiceToken.parse(text.strip())
    except InvalidToken:
        raise InvalidToken("a service token is exactly 64 hex digits") from None


# -- rendering ----------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.7rem 1.5rem;display:flex;align-items:center;
justify-content:space-between}
header h1{font-size:1.1rem;margin:0}
main{max-width:60rem;margin:1.5rem auto;padding:0 1.5rem}
h2{font-size:1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{width:14rem;font-weight:600;color:#4a5263}
td{font-family:ui-monospace,monospace;word-break:break-all}
td.running{color:#17803d} td.failed,td.stopped,td.restarting{color:#b42318}
form.box{background:#fff;padding:1rem;margin-top:1rem;border:1px solid #e3e6ea}
label{display:block;font-weight:600;margin:.4rem 0 .2rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.45rem;
font-family:ui-monospace,monospace;border:1px solid #b8bfc9}
button{margin-top:.7rem;padding:.45rem 1rem;border:0;background:#2457c5;color:#fff;cursor:pointer}
button.danger{background:#b42318}
header nav{display:flex;align-items:center;gap:1.2rem}
header a{color:#fff}
header button{margin:0;background:#4a5263}
.notice{padding:.6rem 1rem;margin:1rem 0;border:1px solid}
.notice.error{background:#fdecea;border-color:#f5b5ae}
.notice.ok{background:#e8f5ec;border-color:#a6d8b5}
.check{font-weight:normal}
"""


def _e(value: object) -> str:
    return "—" if value is None else html.escape(str(value), quote=True)


def _xmr(amount: int) -> str:
    return format(Decimal(amount) / _ATOMIC_PER_XMR, "f")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    return f"<table>{body}</table>"


def _notice(text: str, kind: str) -> str:
    return f"<p class='notice {_e(kind)}' role='status'>{_e(text)}</p>"


def _page(title: str, content: str, header_extra: str = "") -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta name='referrer' content='same-origin'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>anon_ticket admin</h1>{header_extra}</header><main>{content}</main>"
        "</body></html>"
    )


def _error_page(title: str, message: str) -> str:
    return _page(title, f"<h2>{_e(title)}</h2>{_notice(message, 'error')}<p><a href='{PREFIX}'>Back</a></p>")


def _login_page(error: str = "") -> str:
    notice = _notice(error, "error") if error else ""
    return _page(
        "Sign in — anon_ticket admin",
        notice + f"<form class='box' method='post' action='{PREFIX}login'>"
        "<label for='api_token'>Internal API token</label>"
        "<input type='password' id='api_token' name='api_token' required autocomplete='current-password' "
        "autofocus>"
        "<button type='submit'>Sign in</button></form>"
        "<p>The token is <code>INTERNAL_API_TOKEN</code>, or the <code>internal_api_token</code> file "
        "beside the database.</p>",
    )


def _logout_form(csrf: str) -> str:
    """The signed-in header: a way back to the dashboard, and sign-out (a POST, so it needs CSRF)."""
    return (
        f"<nav><a href='{PREFIX}'>Dashboard</a>"
        f"<form method='post' action='{PREFIX}logout'>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        "<button type='submit'>Sign out</button></form></nav>"
    )


def _lookup_form(csrf: str) -> str:
    return (
        f"<h2>Look up a token</h2><form class='box' method='post' action='{PREFIX}token'>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        "<label for='token'>Service token (64 hex digits)</label>"
        "<input type='text' id='token' name='token' required autocomplete='off' spellcheck='false' "
        "pattern='\\s*[0-9a-fA-F]{64}\\s*'>"
        "<button type='submit'>Look up</button></form>"
    )


def _revoke_form(csrf: str, token: str) -> str:
    return (
        f"<h2>Revoke</h2><form class='box' method='post' action='{PREFIX}revoke'>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        f"<input type='hidden' name='token' value='{_e(token)}'>"
        f"<label for='reason'>Reason (optional, at most {MAX_REASON_CHARS} characters)</label>"
        f"<input type='text' id='reason' name='reason' maxlength='{MAX_REASON_CHARS}' autocomplete='off'>"
        "<label class='check'><input type='checkbox' name='confirm' value='yes' required> "
        "Revoke this token for good: its holder loses access, and this cannot be undone.</label>"
        "<button class='danger' type='submit'>Revoke</button></form>"
    )


def _send(
    start_response: StartResponse, status: int, body: str, headers: list[tuple[str, str]]
) -> list[bytes]:
    payload = body.encode("utf-8")
    content_type = [("Content-Type", "text/html; charset=utf-8")] if payload else []
    start_response(
        _STATUS_LINES[status],
        [*content_type, ("Content-Length", str(len(payload))), *_HTML_HEADERS, *headers],
    )
    return [payload]
