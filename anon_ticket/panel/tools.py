"""The panel's CherryPy tools, one concern each, in the `panel` toolbox of its own Application.

- `panel.host` (on_start_resource): 400 unless `Host` names this listener (hosts.py), before the
  body is read or anything else runs;
- `panel.forms` (before_request_body): a POST body must be an urlencoded HTML form;
- `panel.signed_in` (before_handler): pages behind the sign-in; a GET goes to the sign-in page, a
  POST answers 401 with it;
- `panel.csrf` (before_handler): every POST carries this session's CSRF token and, if the browser
  says where it comes from (`Origin`, else `Referer`), comes from this host;
- `panel.headers` (before_finalize, and on the error path): CSP, no caching, no framing, and the
  session cookie's `SameSite=Strict` (which CherryPy's sessions cannot set) — or no cookie at all for
  a browser that is not signed in.
"""

from __future__ import annotations

import hmac
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import cherrypy
from cherrypy._cptools import Toolbox

from anon_ticket.panel.hosts import HostPolicy
from anon_ticket.panel.sessions import PanelSession

COOKIE_NAME = "anon_ticket_admin"
COOKIE_PATH = "/admin/"
SESSION_IDLE_MINUTES = 60
SESSION_MAX_SECS = 8 * 3600  # absolute: use does not extend a sign-in beyond this
CSRF_FIELD = "csrf"
FORM_TYPE = "application/x-www-form-urlencoded"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not `no-referrer`: with it, browsers send `Origin: null` on form POSTs (Fetch standard), and the
    # origin check would refuse the panel's own forms.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def session_data() -> dict[str, Any] | None:
    """This request's sign-in (`signed_in_at`, `csrf`), or None; never stores anything itself."""
    session = getattr(cherrypy.serving, "session", None)
    if session is None:  # before the sessions tool ran (e.g. refused by the Host check)
        return None
    signed_in_at = session.get("signed_in_at")
    if not isinstance(signed_in_at, int) or time.time() - signed_in_at > SESSION_MAX_SECS:
        if signed_in_at is not None:
            session.clear()  # lifetime over: forget it, whatever the idle timeout says
        return None
    return {"signed_in_at": signed_in_at, "csrf": session.get("csrf", "")}


def sign_in() -> str:
    """A fresh session id (never the one the browser brought: session fixation) and CSRF token."""
    session = cherrypy.serving.session
    session.regenerate()
    csrf = secrets.token_urlsafe(32)
    session["signed_in_at"] = int(time.time())
    session["csrf"] = csrf
    return csrf


def sign_out() -> None:
    session = cherrypy.serving.session
    session.clear()
    session.delete()


def same_origin() -> bool:
    """True unless `Origin` (or, without it, `Referer`) names another host than this request's.

    Neither header (curl, scripts) passes here; the CSRF token must still match.
    """
    headers = cherrypy.serving.request.headers
    host = str(headers.get("Host", "")).lower()
    source = headers.get("Origin")
    if source is None:
        source = headers.get("Referer")
    if not source:
        return True
    return source != "null" and urllib.parse.urlsplit(str(source)).netloc.lower() == host


def _host(policy: HostPolicy) -> Callable[[], None]:
    def check() -> None:
        if not policy.allows(cherrypy.serving.request.headers.get("Host")):
            raise cherrypy.HTTPError(
                400, "This panel answers only to its own address (localhost or the listener's address)."
            )

    return check


def _forms() -> None:
    request = cherrypy.serving.request
    if request.method != "POST":
        return
    media_type = str(request.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    length = request.headers.get("Content-Length")
    has_body = (length not in (None, "", "0")) or "Transfer-Encoding" in request.headers
    if has_body and media_type != FORM_TYPE:
        raise cherrypy.HTTPError(400, "The panel only accepts its own HTML forms.")


def _signed_in(render_login: Callable[[str], str]) -> Callable[[], None]:
    def check() -> None:
        if session_data() is not None:
            return
        request = cherrypy.serving.request
        response = cherrypy.serving.response
        request.handler = None  # the page's handler does not run
        if request.method in ("GET", "HEAD"):
            raise cherrypy.HTTPRedirect(COOKIE_PATH, 303)
        response.status = 401
        response.body = render_login("Your session has expired; sign in again.").encode("utf-8")
        response.headers["Content-Type"] = "text/html;charset=utf-8"

    return check


def _csrf() -> None:
    request = cherrypy.serving.request
    if request.method != "POST" or request.handler is None:
        return
    data = session_data()
    presented = request.params.pop(CSRF_FIELD, "")
    expected = (data or {}).get("csrf", "")
    if not isinstance(presented, str) or not expected or not same_origin():
        raise cherrypy.HTTPError(
            403, "This form did not come from this panel; reload the page and try again."
        )
    if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode("ascii")):
        raise cherrypy.HTTPError(
            403, "This form did not come from this panel; reload the page and try again."
        )


def secure_headers() -> None:
    """Security headers on every answer; the session cookie only for a signed-in browser."""
    request = cherrypy.serving.request
    response = cherrypy.serving.response
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    cookie = response.cookie
    if COOKIE_NAME not in cookie:
        return
    session = getattr(cherrypy.serving, "session", None)
    if session is not None and PanelSession.stored(session.id):
        morsel = cookie[COOKIE_NAME]
        morsel["samesite"] = "Strict"
        if request.scheme == "https":
            morsel["secure"] = True
    elif COOKIE_NAME in request.cookie:
        morsel = cookie[COOKIE_NAME]  # a stale or signed-out id: tell the browser to drop it
        morsel.set(COOKIE_NAME, "", "")
        morsel["max-age"] = 0
        morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        morsel["samesite"] = "Strict"
    else:
        del cookie[COOKIE_NAME]  # not signed in, never was: no cookie to carry around


def build_toolbox(policy: HostPolicy, render_login: Callable[[str], str]) -> Toolbox:
    box = Toolbox("panel")
    box.host = cherrypy.Tool("on_start_resource", _host(policy), priority=10)
    box.forms = cherrypy.Tool("before_request_body", _forms)
    box.signed_in = cherrypy.Tool("before_handler", _signed_in(render_login), priority=60)
    box.csrf = cherrypy.Tool("before_handler", _csrf, priority=70)
    box.headers = cherrypy.Tool("before_finalize", secure_headers, priority=90)
    return box
