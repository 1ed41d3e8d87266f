"""The admin panel at /admin/ on the real daemon: sign-in, session cookie, CSRF, lookup and revoke.

The forms are driven with plain HTTP (as a browser without JavaScript would send them), and one test
renders the login page in a real headless Chromium to make sure the page and its CSP hold up in a
browser.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket import __version__
from anon_ticket.domain import PaymentId
from anon_ticket.http.admin import CONTENT_SECURITY_POLICY, MAX_SESSIONS, SESSION_TTL_SECS, Sessions
from tests.support.daemon import DaemonProcess, claim_token, redeem_until
from tests.support.fake_wallet import FakeWallet
from tests.support.services import require

UNKNOWN_TOKEN = "ef" * 32
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def wallet() -> Iterator[FakeWallet]:
    """One wallet for the module, shared with its daemon (the `daemon` fixture of conftest.py)."""
    with FakeWallet(height=200) as fake:
        yield fake


class Browser:
    """A cookie-keeping HTTP client that sends what a browser sends for same-origin forms."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.base = daemon.internal_url
        self.session = requests.Session()
        self.origin = self.base

    def close(self) -> None:
        self.session.close()

    def get(self, path: str) -> requests.Response:
        with self.session.get(self.base + path, timeout=10, allow_redirects=False) as response:
            _ = response.content
            return response

    def post(self, path: str, data: dict[str, str], *, origin: str | None = "same") -> requests.Response:
        headers = {}
        if origin is not None:
            headers["Origin"] = self.origin if origin == "same" else origin
        with self.session.post(
            self.base + path, data=data, headers=headers, timeout=10, allow_redirects=False
        ) as response:
            _ = response.content
            return response

    def login(self, api_token: str) -> requests.Response:
        return self.post("/admin/login", {"api_token": api_token})

    def csrf(self) -> str:
        page = self.get("/admin/")
        match = re.search(r"name='csrf' value='([^']+)'", page.text)
        assert match, page.text
        return html.unescape(match.group(1))


@pytest.fixture
def browser(daemon: DaemonProcess) -> Iterator[Browser]:
    client = Browser(daemon)
    yield client
    client.close()


@pytest.fixture
def signed_in(browser: Browser, daemon: DaemonProcess) -> Browser:
    assert browser.login(daemon.api_token).status_code == 303
    return browser


def _token_status(daemon: DaemonProcess, token: str) -> str:
    return str(daemon.internal("GET", f"/api/v1/token/{token}").json()["status"])


# -- sign-in -----------------------------------------------------------------------------------


def test_login_page_and_security_headers(browser: Browser) -> None:
    page = browser.get("/admin/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in page.headers
    assert "action='/admin/login'" in page.text
    assert "type='password'" in page.text
    assert "<script" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external resources
    redirect = browser.get("/admin")
    assert redirect.status_code == 303 and redirect.headers["Location"] == "/admin/"


def test_wrong_token_is_refused(browser: Browser, daemon: DaemonProcess) -> None:
    for wrong in ("", "nope", daemon.api_token + "x", daemon.api_token[:-1], daemon.api_token.upper()):
        response = browser.login(wrong)
        assert response.status_code == 401
        assert "Wrong token" in response.text
        assert "Set-Cookie" not in response.headers
    assert "Sign in" in browser.get("/admin/").text


def test_right_token_opens_the_dashboard(browser: Browser, daemon: DaemonProcess, wallet: FakeWallet) -> None:
    claim_token(daemon, wallet)
    response = browser.login(daemon.api_token)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/admin/" in cookie
    assert "secure" not in attributes  # plain HTTP on loopback: see anon_ticket/http/admin.py
    assert daemon.api_token not in cookie

    page = browser.get("/admin/")
    assert page.status_code == 200
    status = daemon.status()
    text = page.text
    assert __version__ in text
    for name in status["actors"]:
        assert name in text
    assert f"<td>{status['scan_cursor']}</td>" in text
    assert f"<td>{status['wallet']['height']}</td>" in text
    assert status["wallet"]["primary_address"] in text
    assert f"<th>Tokens active</th><td>{status['tokens']['active']}</td>" in text
    assert f"<th>Payments claimed</th><td>{status['payments']['claimed']}</td>" in text
    assert status["abuse_level"] in text
    assert "action='/admin/token'" in text and "action='/admin/logout'" in text


def test_login_from_another_origin_is_refused(browser: Browser, daemon: DaemonProcess) -> None:
    response = browser.post("/admin/login", {"api_token": daemon.api_token}, origin="http://evil.example")
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert browser.post("/admin/login", {"api_token": daemon.api_token}, origin="null").status_code == 403


def test_logout_ends_the_session(signed_in: Browser, daemon: DaemonProcess) -> None:
    old_cookie = signed_in.session.cookies.get("anon_ticket_admin")
    assert old_cookie
    response = signed_in.post("/admin/logout", {"csrf": signed_in.csrf()})
    assert response.status_code == 303
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "Sign in" in signed_in.get("/admin/").text
    # The old session id is dead on the server, not only forgotten by the browser.
    with requests.get(
        daemon.internal_url + "/admin/", cookies={"anon_ticket_admin": old_cookie}, timeout=10
    ) as replay:
        assert "Sign in" in replay.text


def test_forged_or_missing_session_cannot_act(browser: Browser, daemon: DaemonProcess) -> None:
    response = browser.post("/admin/token", {"token": UNKNOWN_TOKEN, "csrf": "x"})
    assert response.status_code == 401
    assert "sign in again" in response.text
    browser.session.cookies.set("anon_ticket_admin", "forged-session-id", path="/admin/")
    assert "Sign in" in browser.get("/admin/").text
    assert browser.post("/admin/revoke", {"token": UNKNOWN_TOKEN, "csrf": "x"}).status_code == 401


# -- CSRF --------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(
    signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    _, token = claim_token(daemon, wallet)
    csrf = signed_in.csrf()
    revoke = {"token": token, "reason": "csrf", "confirm": "yes"}
    assert signed_in.post("/admin/revoke", revoke).status_code == 403
    assert signed_in.post("/admin/revoke", {**revoke, "csrf": ""}).status_code == 403
    assert signed_in.post("/admin/revoke", {**revoke, "csrf": csrf + "x"}).status_code == 403
    for origin in ("http://evil.example", "null", daemon.internal_url + ".evil.example"):
        assert signed_in.post("/admin/revoke", {**revoke, "csrf": csrf}, origin=origin).status_code == 403
    assert signed_in.post("/admin/token", {"token": token}).status_code == 403
    assert signed_in.post("/admin/logout", {}).status_code == 403
    assert _token_status(daemon, token) == "active"
    # Another browser's valid session does not carry this one's CSRF token.
    other = Browser(daemon)
    try:
        other.login(daemon.api_token)
        assert other.post("/admin/revoke", {**revoke, "csrf": csrf}).status_code == 403
    finally:
        other.close()
    assert _token_status(daemon, token) == "active"
    # A cross-site Referer (no Origin) is refused as well.
    with signed_in.session.post(
        signed_in.base + "/admin/revoke",
        data={**revoke, "csrf": csrf},
        headers={"Referer": "http://evil.example/page"},
        timeout=10,
        allow_redirects=False,
    ) as response:
        assert response.status_code == 403
    assert _token_status(daemon, token) == "active"


# -- lookup and revoke -------------------------------------------------------------------------


def test_lookup_and_revoke_through_the_forms(
    signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    pid, token = claim_token(daemon, wallet)
    csrf = signed_in.csrf()
    page = signed_in.post("/admin/token", {"token": "  " + token.upper() + "\n", "csrf": csrf})
    assert page.status_code == 200, page.text
    assert token in page.text
    assert "<th>Status</th><td>active</td>" in page.text
    assert f"{daemon.min_payment_amount} atomic units" in page.text
    assert "action='/admin/revoke'" in page.text
    assert token not in page.url  # never in a URL

    unconfirmed = signed_in.post("/admin/revoke", {"token": token, "reason": "x", "csrf": csrf})
    assert unconfirmed.status_code == 400
    too_long = signed_in.post(
        "/admin/revoke", {"token": token, "reason": "r" * 257, "confirm": "yes", "csrf": csrf}
    )
    assert too_long.status_code == 400
    assert "256" in too_long.text
    assert _token_status(daemon, token) == "active"

    reason = "<script>alert('x')</script> & refund"
    revoked = signed_in.post(
        "/admin/revoke", {"token": token, "reason": reason, "confirm": "yes", "csrf": csrf}
    )
    assert revoked.status_code == 200, revoked.text
    assert "The token is revoked." in revoked.text
    assert "<script>" not in revoked.text
    assert html.escape(reason, quote=True) in revoked.text
    assert "action='/admin/revoke'" not in revoked.text  # nothing left to revoke

    record = daemon.internal("GET", f"/api/v1/token/{token}").json()
    assert record["status"] == "revoked"
    assert record["revoke_reason"] == reason
    assert redeem_until(daemon, pid, 410).json()["reason"] == "revoked"

    again = signed_in.post("/admin/token", {"token": token, "csrf": csrf})
    assert "<th>Status</th><td>revoked</td>" in again.text


def test_lookup_errors(signed_in: Browser) -> None:
    csrf = signed_in.csrf()
    missing = signed_in.post("/admin/token", {"token": UNKNOWN_TOKEN, "csrf": csrf})
    assert missing.status_code == 404
    assert "no token with this value" in missing.text
    invalid = signed_in.post("/admin/token", {"token": "not-a-token", "csrf": csrf})
    assert invalid.status_code == 400
    assert "64 hex digits" in invalid.text
    revoke_missing = signed_in.post("/admin/revoke", {"token": UNKNOWN_TOKEN, "confirm": "yes", "csrf": csrf})
    assert revoke_missing.status_code == 404
    with signed_in.session.post(
        signed_in.base + "/admin/token",
        json={"token": UNKNOWN_TOKEN, "csrf": csrf},
        timeout=10,
    ) as not_a_form:
        assert not_a_form.status_code == 400


def test_unknown_pages_and_methods(browser: Browser) -> None:
    assert browser.get("/admin/nothing").status_code == 404
    wrong = browser.get("/admin/login")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert wrong.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_no_secret_reaches_the_log(signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet) -> None:
    pid, token = claim_token(daemon, wallet)
    csrf = signed_in.csrf()
    signed_in.post("/admin/token", {"token": token, "csrf": csrf})
    signed_in.post("/admin/revoke", {"token": token, "confirm": "yes", "csrf": csrf})
    signed_in.post("/admin/login", {"api_token": "wrong-" + daemon.api_token})
    daemon.internal("GET", "/healthz")
    daemon.wait_for_log("GET /healthz")
    log = daemon.log_text()
    assert token not in log.lower()
    assert pid.hex() not in log.lower()
    assert daemon.api_token not in log
    assert csrf not in log
    cookie = signed_in.session.cookies.get("anon_ticket_admin")
    assert cookie and cookie not in log
    assert "admin panel: sign-in refused" in log


def test_sessions_expire_and_are_capped() -> None:
    """In-process: the cap and the absolute lifetime would take 1,000 logins or 8 hours otherwise."""
    assert (SESSION_TTL_SECS, MAX_SESSIONS) == (8 * 3600, 1000)
    now = [0.0]
    sessions = Sessions(ttl_secs=10, max_sessions=3, timer=lambda: now[0])
    ids = [sessions.create()[0] for _ in range(3)]
    assert len(set(ids)) == 3 and all(len(i) >= 43 for i in ids)
    assert all(sessions.get(i) is not None for i in ids)
    newest, _ = sessions.create()
    assert len(sessions) == 3
    assert sessions.get(ids[0]) is None  # the least recently used one was signed out
    assert sessions.get(newest) is not None
    now[0] = 9.9
    assert sessions.get(newest) is not None
    now[0] = 10.1
    assert sessions.get(newest) is None  # absolute lifetime: use does not extend it
    assert len(sessions) == 0
    assert sessions.get(None) is None and sessions.get("") is None


# -- a real browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_login_page_renders_in_headless_chromium(daemon: DaemonProcess, tmp_path: Path) -> None:
    binary = _chromium()
    require("chromium", binary is not None, "scripts/test installs it with apt-get when run as root")
    assert binary is not None
    screenshot = tmp_path / "login.png"
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1200,900",
        daemon.internal_url + "/admin/",
    ]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    data = screenshot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5000  # a blank page compresses to far less
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900)
    # The browser really fetched the page (and nothing else from our listener but its favicon).
    daemon.wait_for_log("internal GET /admin/ -> 200")


def test_transfers_that_never_count_are_shown_to_the_operator(
    signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    """docs/PROTOCOL.md §3: a non-zero unlock_time or a double spend is recorded for the operator."""
    daemon.wait_scanning()
    locked = wallet.add_pool(
        payment_id=PaymentId.generate().chain_payment_id().hex(), amount=7, unlock_time=999
    )
    spent = wallet.add_pool(
        payment_id=PaymentId.generate().chain_payment_id().hex(), amount=8, double_spend_seen=True
    )
    daemon.wait_for_log(f"transfer {spent[:12]}")
    page = signed_in.get("/admin/").text
    assert "Transfers not counted" in page
    assert locked in page and spent in page
    assert "unlock_time" in page and "double spend" in page
    log = daemon.log_text()
    assert f"transfer {locked[:12]}… for payment" in log and "recorded, not counted" in log
