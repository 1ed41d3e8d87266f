"""A person signs in through the gateway's page in headless Chromium, behind nginx and behind Caddy.

docs/PROTOCOL.md §13: the browser opens a protected page, is shown the sign-in form (nginx's
`error_page 401`, Caddy's `handle_response`; status 401 either way), pastes the service token, and
lands on the page it asked for, with the session cookie carrying it from then on; a crafted sign-in
link cannot send it to another site. Chromium is the system's, driven by Playwright, with JavaScript
off: the page needs none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.access import claim_token, served
from tests.support.chromium import playwright_chromium
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import Pipeline
from tests.support.proxies import PROXIES, SECRET, Proxy

if TYPE_CHECKING:  # the test extra installs it; tests/support/chromium.py skips without it
    from playwright.sync_api import Browser, BrowserContext, Page

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile with JavaScript off (the sign-in page needs none), closed afterwards."""
    opened = browser.new_context(java_script_enabled=False)
    try:
        yield opened
    finally:
        opened.close()


def sign_in(page: Page, token: str) -> None:
    """Paste `token` into the sign-in form and submit it; returns once the next page has loaded."""
    page.fill("#token", token)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("button[type=submit]")


@pytest.fixture(params=sorted(PROXIES))
def site(request: pytest.FixtureRequest, pipeline: Pipeline) -> Iterator[Proxy]:
    with served(pipeline.daemon.access_app()) as port, PROXIES[request.param](f"127.0.0.1:{port}") as proxy:
        yield proxy


def test_a_browser_signs_in_and_keeps_its_session(
    context: BrowserContext, wallet: FakeWallet, pipeline: Pipeline, site: Proxy
) -> None:
    _, token = claim_token(wallet, pipeline)
    page = context.new_page()
    first = page.goto(site.url + "/private/a.txt", timeout=WAIT_MS)
    assert first is not None and first.status == 401
    assert page.title() == "Sign in"
    sign_in(page, token)
    assert page.url == site.url + "/private/a.txt"
    assert page.inner_text("body").strip() == SECRET.decode().strip()
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["anon_ticket_access"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/"
    again = page.goto(site.url + "/private/a.txt", timeout=WAIT_MS)
    assert again is not None and again.status == 200


def test_a_wrong_token_is_explained_on_the_page(context: BrowserContext, site: Proxy) -> None:
    page = context.new_page()
    page.goto(site.url + "/private/a.txt", timeout=WAIT_MS)
    sign_in(page, "ab" * 32)
    assert "no service token with this value" in page.inner_text("#message")
    assert context.cookies() == []


def test_a_crafted_sign_in_link_stays_on_the_site(
    context: BrowserContext, wallet: FakeWallet, pipeline: Pipeline, site: Proxy
) -> None:
    _, token = claim_token(wallet, pipeline)
    page = context.new_page()
    page.goto(site.url + "/login?next=//evil.example/steal", timeout=WAIT_MS)
    sign_in(page, token)
    assert page.url == site.url + "/"
    assert "a public page" in page.inner_text("body")
