"""The admin panel at /admin/ on the real daemon (docs/PROTOCOL.md §5): a CherryPy application.

Forms are driven with plain HTTP, as a browser without JavaScript sends them: sign-in and its
throttle, the session cookie (HttpOnly, SameSite=Strict, a new id at sign-in), CSRF, the `Host`
allow-list, token lookup and revocation, the figures (charts, CSV), the funds report and the abuse
history. Each page is also rendered by a real headless Chromium, signed in, and kept as a PNG in
tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import csv
import html
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import markupsafe
import pytest
import requests

from anon_ticket import __version__
from anon_ticket.core.domain import PaymentId
from anon_ticket.panel.figures import CSV_COLUMNS, xmr
from anon_ticket.panel.tools import CONTENT_SECURITY_POLICY, COOKIE_NAME
from anon_ticket.privacypass import client as privacypass_client
from anon_ticket.privacypass.wire import b64url_encode
from tests.support.chromium import ARTIFACTS, CookieTunnel, chromium, png_size, screenshot
from tests.support.daemon import DaemonProcess, claim_token, pay, redeem_until
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.private_tokens import issue, published
from tests.support.services import require
from tests.support.waiting import wait_for

UNKNOWN_TOKEN = "ef" * 32


wallet = module_wallet()


class Browser:
    """A cookie-keeping HTTP client that sends what a browser sends for same-origin forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, **kwargs: object) -> requests.Response:
        with self.session.get(self.base + path, timeout=10, allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
            _ = response.content
            return response

    def post(
        self, path: str, data: dict[str, str], *, origin: str | None = "same", host: str | None = None
    ) -> requests.Response:
        headers = {}
        if origin is not None:
            headers["Origin"] = self.base if origin == "same" else origin
        if host is not None:
            # requests matches its cookie jar against the Host header: send the cookie by hand.
            headers["Host"] = host
            headers["Cookie"] = f"{COOKIE_NAME}={self.cookie}"
        with self.session.post(
            self.base + path, data=data, headers=headers, timeout=10, allow_redirects=False
        ) as response:
            _ = response.content
            return response

    def login(self, api_token: str) -> requests.Response:
        return self.post("/admin/login", {"api_token": api_token})

    @property
    def cookie(self) -> str | None:
        return self.session.cookies.get(COOKIE_NAME)

    def csrf(self) -> str:
        page = self.get("/admin/token")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match, page.text
        return html.unescape(match.group(1))


@pytest.fixture
def browser(daemon: DaemonProcess) -> Iterator[Browser]:
    client = Browser(daemon.internal_url)
    yield client
    client.close()


@pytest.fixture
def signed_in(browser: Browser, daemon: DaemonProcess) -> Browser:
    assert browser.login(daemon.api_token).status_code == 303
    return browser


def _token_status(daemon: DaemonProcess, token: str) -> str:
    return str(daemon.internal("GET", f"/api/v1/token/{token}").json()["status"])


def _assert_page_headers(response: requests.Response) -> None:
    assert response.headers["Content-Type"] == "text/html;charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server"] == "anon_ticket"  # no CherryPy version
    assert "<script" not in response.text and " style=" not in response.text
    assert "Traceback" not in response.text


# -- sign-in -----------------------------------------------------------------------------------


def test_login_page_headers_and_head(browser: Browser) -> None:
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    page = browser.get("/admin/")
    assert page.status_code == 200
    _assert_page_headers(page)
    assert "Set-Cookie" not in page.headers  # no session until a sign-in
    assert 'action="/admin/login"' in page.text and 'type="password"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    head = browser.session.head(browser.base + "/admin/", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == page.headers["Content-Length"]
    css = browser.get("/admin/style.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css;charset=utf-8"
    assert "font" in css.text
    redirect = browser.get("/admin")
    assert redirect.status_code in (301, 303) and redirect.headers["Location"] == "/admin/"


def test_wrong_token_is_refused(browser: Browser, daemon: DaemonProcess) -> None:
    # Three wrong tries: this module's daemon stays below the throttle (5 a minute; see the last test).
    for wrong in ("", daemon.api_token + "x", daemon.api_token.upper()):
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
    assert "secure" not in attributes  # plain HTTP on loopback: see docs/PROTOCOL.md §5
    assert daemon.api_token not in cookie

    page = browser.get("/admin/")
    assert page.status_code == 200
    _assert_page_headers(page)
    status = daemon.status()
    text = page.text
    assert __version__ in text
    for name in status["actors"]:
        assert f"<td>{name}</td>" in text
    assert f'<th>Scan cursor</th><td class="">{status["scan_cursor"]}</td>' in text
    assert status["wallet"]["primary_address"] in text
    assert f'Tokens active</span><span class="value">{status["tokens"]["active"]}<' in text
    assert f'Payments claimed</span><span class="value">{status["payments"]["claimed"]}<' in text
    assert "Abuse over the last hour" in text
    assert 'action="/admin/logout"' in text


def test_session_id_changes_at_sign_in_and_the_old_one_dies(browser: Browser, daemon: DaemonProcess) -> None:
    with browser.session.post(
        browser.base + "/admin/login",
        data={"api_token": daemon.api_token},
        cookies={COOKIE_NAME: "f" * 40},  # planted by an attacker
        timeout=10,
        allow_redirects=False,
    ) as response:
        assert response.status_code == 303
    first = browser.cookie
    assert first and first != "f" * 40
    assert browser.login(daemon.api_token).status_code == 303  # signing in again: another new id
    second = browser.cookie
    assert second and second != first
    with requests.get(daemon.internal_url + "/admin/funds", cookies={COOKIE_NAME: first}, timeout=10) as old:
        assert "Sign in" in old.text  # redirected to the sign-in page: the first id is gone
    assert browser.get("/admin/funds").status_code == 200


def test_login_from_another_origin_is_refused(browser: Browser, daemon: DaemonProcess) -> None:
    response = browser.post("/admin/login", {"api_token": daemon.api_token}, origin="http://evil.example")
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers
    assert browser.post("/admin/login", {"api_token": daemon.api_token}, origin="null").status_code == 403


def test_logout_ends_the_session(signed_in: Browser, daemon: DaemonProcess) -> None:
    old_cookie = signed_in.cookie
    assert old_cookie
    response = signed_in.post("/admin/logout", {"csrf": signed_in.csrf()})
    assert response.status_code == 303
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "Sign in" in signed_in.get("/admin/").text
    with requests.get(
        daemon.internal_url + "/admin/", cookies={COOKIE_NAME: old_cookie}, timeout=10
    ) as replay:
        assert "Sign in" in replay.text  # dead on the server, not only forgotten by the browser


def test_pages_need_a_session(browser: Browser) -> None:
    for path in (
        "/admin/figures",
        "/admin/figures.csv",
        "/admin/funds",
        "/admin/token",
        "/admin/figures_csv",
    ):
        response = browser.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/admin/", path
    response = browser.post("/admin/token", {"token": UNKNOWN_TOKEN, "csrf": "x"})
    assert response.status_code == 401
    assert "sign in again" in response.text
    browser.session.cookies.set(COOKIE_NAME, "forged-session-id", path="/admin/")
    assert "Sign in" in browser.get("/admin/").text
    assert browser.post("/admin/revoke", {"token": UNKNOWN_TOKEN, "csrf": "x"}).status_code == 401


# -- Host, CSRF, and the public port -----------------------------------------------------------------


def test_a_foreign_host_is_refused_even_with_a_valid_session(
    signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    """DNS rebinding: another site's name pointed at 127.0.0.1 must not drive the panel."""
    _, token = claim_token(daemon, wallet)
    csrf = signed_in.csrf()
    port = daemon.internal_url.rpartition(":")[2]
    cookie = f"{COOKIE_NAME}={signed_in.cookie}"
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"localhost.evil.example:{port}",
        "127.0.0.1.nip.io",
    ):
        page = signed_in.get("/admin/", headers={"Host": host})
        assert page.status_code == 400, host
        assert "only to its own address" in page.text
        _assert_page_headers(page)
        revoke = {"token": token, "confirm": "yes", "csrf": csrf}
        assert signed_in.post("/admin/revoke", revoke, origin=None, host=host).status_code == 400
    assert _token_status(daemon, token) == "active"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"[::1]:{port}", "localhost:9000"):
        assert signed_in.get("/admin/funds", headers={"Host": host, "Cookie": cookie}).status_code == 200, (
            host
        )


def test_the_public_port_does_not_serve_the_panel(daemon: DaemonProcess) -> None:
    for path in ("/admin/", "/admin/login", "/admin/style.css", "/admin"):
        response = daemon.public("GET", path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


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
    other = Browser(daemon.internal_url)  # another browser's session does not carry this one's token
    try:
        other.login(daemon.api_token)
        assert other.post("/admin/revoke", {**revoke, "csrf": csrf}).status_code == 403
    finally:
        other.close()
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
    assert '<th>Status</th><td class="good">active</td>' in page.text
    assert f"{xmr(daemon.min_payment_amount)} XMR ({daemon.min_payment_amount} atomic units)" in page.text
    assert 'action="/admin/revoke"' in page.text
    assert token not in page.url

    unconfirmed = signed_in.post("/admin/revoke", {"token": token, "reason": "x", "csrf": csrf})
    assert unconfirmed.status_code == 400 and "confirmation box" in unconfirmed.text
    too_long = signed_in.post(
        "/admin/revoke", {"token": token, "reason": "r" * 257, "confirm": "yes", "csrf": csrf}
    )
    assert too_long.status_code == 400 and "256" in too_long.text
    assert _token_status(daemon, token) == "active"

    reason = "<script>alert('x')</script> & refund"
    revoked = signed_in.post(
        "/admin/revoke", {"token": token, "reason": reason, "confirm": "yes", "csrf": csrf}
    )
    assert revoked.status_code == 200, revoked.text
    assert "The token is revoked." in revoked.text
    assert "<script>" not in revoked.text
    assert str(markupsafe.escape(reason)) in revoked.text
    assert 'action="/admin/revoke"' not in revoked.text  # nothing left to revoke

    record = daemon.internal("GET", f"/api/v1/token/{token}").json()
    assert (record["status"], record["revoke_reason"]) == ("revoked", reason)
    assert redeem_until(daemon, pid, 410).json()["reason"] == "revoked"
    again = signed_in.post("/admin/token", {"token": token, "csrf": csrf})
    assert '<th>Status</th><td class="bad">revoked</td>' in again.text


def test_lookup_errors(signed_in: Browser) -> None:
    csrf = signed_in.csrf()
    missing = signed_in.post("/admin/token", {"token": UNKNOWN_TOKEN, "csrf": csrf})
    assert missing.status_code == 404 and "no token with this value" in missing.text
    invalid = signed_in.post("/admin/token", {"token": "not-a-token", "csrf": csrf})
    assert invalid.status_code == 400 and "64 hex digits" in invalid.text
    revoke_missing = signed_in.post("/admin/revoke", {"token": UNKNOWN_TOKEN, "confirm": "yes", "csrf": csrf})
    assert revoke_missing.status_code == 404
    repeated = signed_in.post("/admin/token", {"token": [UNKNOWN_TOKEN, UNKNOWN_TOKEN], "csrf": csrf})  # type: ignore[dict-item]
    assert repeated.status_code == 400
    with signed_in.session.post(
        signed_in.base + "/admin/token", json={"token": UNKNOWN_TOKEN, "csrf": csrf}, timeout=10
    ) as not_a_form:
        assert not_a_form.status_code == 400 and "HTML forms" in not_a_form.text


def test_unknown_pages_and_methods(signed_in: Browser) -> None:
    missing = signed_in.get("/admin/nothing")
    assert missing.status_code == 404
    _assert_page_headers(missing)
    wrong = signed_in.get("/admin/login")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    _assert_page_headers(wrong)
    assert signed_in.post("/admin/figures", {"csrf": signed_in.csrf()}).status_code == 405
    for path in ("/admin/figures", "/admin/funds", "/admin/figures.csv", "/admin/nothing"):
        head = signed_in.session.head(signed_in.base + path, timeout=10)
        assert head.content == b"", path  # HEAD never has a body (RFC 9110 §9.3.2)
        assert head.status_code == signed_in.get(path).status_code


# -- figures, funds, abuse -------------------------------------------------------------------


def _fetch_and_spend_private_tokens(
    daemon: DaemonProcess, service_token: str, fetch: int, spend: int
) -> tuple[int, int]:
    """Privacy Pass tokens fetched and some spent (docs/PROTOCOL.md §12); the daemon's totals after."""
    key, challenge = published(daemon)
    for index in range(fetch):
        request, pending = privacypass_client.prepare(key, challenge)
        answer = issue(daemon, service_token, request.encode())
        assert answer.status_code == 200, answer.text
        if index < spend:
            token = b64url_encode(pending.finalize(answer.content).encode())
            assert (
                daemon.internal("POST", "/api/v1/private-token/spend", json={"token": token}).status_code
                == 200
            )
    days = daemon.internal("GET", f"/api/v1/token/{service_token}").json()["private_tokens"]
    assert days["issued"] == fetch
    database = sqlite3.connect(daemon.database_path)
    try:
        row = database.execute("SELECT sum(issued), sum(spent) FROM private_token_days").fetchone()
    finally:
        database.close()
    return int(row[0]), int(row[1])


def test_figures_page_and_csv(signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, service_token = claim_token(daemon, wallet)
    issued, spent = _fetch_and_spend_private_tokens(daemon, service_token, 3, 2)
    claims = daemon.status()["payments"]["claimed"]
    page = signed_in.get("/admin/figures")
    assert page.status_code == 200
    _assert_page_headers(page)
    assert page.text.count("<svg") == 5
    for title in (
        "Claims per day",
        "XMR counted per day",
        "Payments waiting for confirmations",
        "Private tokens issued per day",
        "Private tokens spent per day",
    ):
        assert title in page.text
    assert 'href="/admin/figures.csv"' in page.text

    export = signed_in.get("/admin/figures.csv")
    assert export.status_code == 200
    assert export.headers["Content-Type"] == "text/csv;charset=utf-8;header=present"
    assert export.headers["Content-Disposition"].startswith('attachment; filename="anon_ticket-')
    assert export.text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 30
    assert rows == sorted(rows, key=lambda row: row["date"])
    assert sum(int(row["claims"]) for row in rows) == claims  # every claim of this daemon, by day
    counted = sum(int(row["counted_atomic"]) for row in rows)
    assert counted >= claims * daemon.min_payment_amount
    for row in rows:
        assert row["counted_xmr"] == xmr(int(row["counted_atomic"]))
    assert sum(int(row["private_tokens_issued"]) for row in rows) == issued  # docs/PROTOCOL.md §12
    assert sum(int(row["private_tokens_spent"]) for row in rows) == spent
    today = rows[-1]
    assert int(today["claims"]) >= 1
    assert f"{today['claims']} claims" in page.text  # the bar's tooltip


def test_funds_report(signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet) -> None:
    """Money that arrived and can never be redeemed: below the minimum, unlock_time, double spend."""
    daemon.wait_scanning()
    short = PaymentId.generate()
    pay(wallet, short, daemon.min_payment_amount - 1234, daemon.confirmations)
    locked = wallet.add_pool(
        payment_id=PaymentId.generate().chain_payment_id().hex(), amount=7, unlock_time=999
    )
    spent = wallet.add_pool(
        payment_id=PaymentId.generate().chain_payment_id().hex(), amount=8, double_spend_seen=True
    )
    daemon.wait_for_log(f"transfer {spent[:12]}")
    redeem_until(daemon, short, 402)  # counted, and below the minimum
    page = signed_in.get("/admin/funds")
    assert page.status_code == 200
    _assert_page_headers(page)
    text = page.text
    row = re.search(rf"<tr><td class=\"mono\">{short.chain_payment_id().hex()}</td>(.*?)</tr>", text)
    assert row, text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == xmr(daemon.min_payment_amount - 1234)
    assert cells[1] == xmr(1234)  # missing
    assert cells[2] == "1"  # transfers
    assert cells[5].endswith(" s") or "min" in cells[5]  # age since first seen
    assert locked in text and spent in text
    assert '<span class="tag">unlock_time</span>' in text
    assert '<span class="tag bad">double spend</span>' in text
    assert re.search(r"Transfers that will never count <small>\d+ transfers?, [0-9.]+ XMR</small>", text)


def test_the_dashboard_shows_the_abuse_of_the_last_hour(signed_in: Browser, daemon: DaemonProcess) -> None:
    for _ in range(5):
        assert daemon.redeem(PaymentId.generate()).status_code == 404  # unknown PIDs: suspicious

    def counted() -> str | None:
        text = signed_in.get("/admin/").text
        found = re.findall(r"<title>\d\d:\d\d: (\d+) suspicious answers, (\w[\w ]*)</title>", text)
        return text if sum(int(n) for n, _ in found) >= 5 else None

    text = wait_for("the abuse history on the dashboard", counted, 15)
    assert text.count("<svg") == 1
    assert 'class="bar normal"' in text


def test_no_secret_reaches_the_log(signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet) -> None:
    pid, token = claim_token(daemon, wallet)
    csrf = signed_in.csrf()
    signed_in.post("/admin/token", {"token": token, "csrf": csrf})
    signed_in.post("/admin/revoke", {"token": token, "confirm": "yes", "csrf": csrf})
    signed_in.post("/admin/login", {"api_token": "wrong-" + daemon.api_token})  # the 4th wrong one
    daemon.internal("GET", "/healthz")
    daemon.wait_for_log("GET /healthz")
    log = daemon.log_text()
    assert token not in log.lower()
    assert pid.hex() not in log.lower()
    assert daemon.api_token not in log
    assert csrf not in log
    cookie = signed_in.cookie
    assert cookie and cookie not in log
    assert "admin panel: sign-in refused" in log
    assert "Traceback" not in log
    assert "cherrypy." not in log  # the panel's requests are logged once, by the internal listener


# -- a real browser ----------------------------------------------------------------------------


def test_every_page_renders_in_headless_chromium(
    signed_in: Browser, daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    binary = chromium()
    require("chromium", binary is not None, "scripts/test installs it with apt-get when run as root")
    claim_token(daemon, wallet)
    ARTIFACTS.mkdir(exist_ok=True)
    assert signed_in.cookie
    pages = {
        "login": "/admin/",
        "dashboard": "/admin/",
        "figures": "/admin/figures",
        "funds": "/admin/funds",
        "tokens": "/admin/token",
    }
    with (
        CookieTunnel(daemon.internal_url, "") as anonymous,
        CookieTunnel(daemon.internal_url, f"{COOKIE_NAME}={signed_in.cookie}") as tunnel,
    ):
        for name, path in pages.items():
            base = anonymous.url if name == "login" else tunnel.url
            out = ARTIFACTS / f"admin-{name}.png"
            size = (1280, 1900) if name == "figures" else (1280, 1000)  # three charts and a table
            data = screenshot(binary, base + path, out, tmp_path / f"profile-{name}", size)
            print(f"screenshot: {out}")
            assert png_size(data) == size
            assert len(data) > 12_000, name  # a blank or unstyled page compresses to far less
    # The browser fetched the style sheet from the panel (the CSP let it) and every page answered 200.
    log = daemon.log_text()
    assert "internal GET /admin/style.css -> 200" in log
    for path in ("/admin/figures", "/admin/funds", "/admin/token"):
        assert f"internal GET {path} -> 200" in log


# -- the sign-in throttle (its own daemon: it locks sign-ins for a minute) ---------------------------


def test_failed_sign_ins_are_throttled(tmp_path: Path) -> None:
    with DaemonProcess(tmp_path) as daemon:
        browser = Browser(daemon.internal_url)
        try:
            for _ in range(5):
                assert browser.login("wrong token").status_code == 401
            throttled = browser.login("wrong token")
            assert throttled.status_code == 429
            assert 1 <= int(throttled.headers["Retry-After"]) <= 60
            assert "Too many failed sign-ins" in throttled.text
            _assert_page_headers(throttled)
            right = browser.login(daemon.api_token)  # even the right token waits: no oracle
            assert right.status_code == 429 and "Set-Cookie" not in right.headers
            for _ in range(3):
                assert browser.login("wrong token").status_code == 429
            daemon.internal("GET", "/healthz")
            daemon.wait_for_log("GET /healthz")
            assert daemon.log_text().count("too many failed sign-ins") == 1  # logged once
            assert daemon.internal("GET", "/api/v1/status").status_code == 200  # the API is not locked out
        finally:
            browser.close()
