"""The buyer's page end to end in headless Chromium, against the real regtest chain (docs/PROTOCOL.md §10).

A buyer opens the page, makes a PID, saves it (the download is the file `client new --out` writes),
reads the address the page shows, pays it from the payer's real wallet, and watches pending
confirmations turn into the token while blocks are mined; a reload in the middle loses nothing. Then
a fresh browser profile, 320 px wide, resumes from the saved file, and another, keyboard only, from the
pasted PID. The address the page built is compared with what the merchant's real wallet builds.

Chromium is the system's (/usr/bin/chromium), driven by Playwright. Screenshots go to
test-artifacts/buyer-page/ (git-ignored). The page polls every second here (`?poll=1`), and the daemon
lets one PID redeem more often than its default of 30 a minute. The answers the chain cannot easily
produce (410, 429) are shown against the fake wallet.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from anon_ticket.client.address import integrated_address
from anon_ticket.core.domain import PaymentId
from tests.support.buyer import expected_token
from tests.support.chromium import playwright_chromium
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.privacypass_node import install_web_packages
from tests.support.regtest import RegtestChain
from tests.support.services import need
from tests.test_regtest_e2e import MIN_AMOUNT, Shop

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "buyer-page"
WAIT_MS = 60_000
POLL = "?poll=1"
APT_INSTALLS = "scripts/test installs it with apt-get as root"

if TYPE_CHECKING:  # the test extra installs it; tests/support/chromium.py skips without it
    from playwright.sync_api import Browser, BrowserContext, Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def qr_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jsQR, as web/package-lock.json pins it (a devDependency, never served): its script's path."""
    return install_web_packages(tmp_path_factory.mktemp("jsqr")) / "jsqr" / "dist" / "jsQR.js"


_CANVAS_PIXELS = """() => {
  const canvas = document.getElementById("qr");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let text = "";
  for (let i = 0; i < data.length; i += 8192) {
    text += String.fromCharCode.apply(null, data.subarray(i, i + 8192));
  }
  return {width: canvas.width, height: canvas.height, rgba: btoa(text)};
}"""


# WCAG 2 contrast of every visible element that holds text, against its nearest opaque background.
_LOW_CONTRAST = """() => {
  const rgb = (text) => text.match(/[0-9.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const bg = rgb(getComputedStyle(el).backgroundColor);
      if (bg.length < 4 || bg[3] === 1) return bg.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}#${el.id}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def read_qr(page: Page, reader: Path) -> str | None:
    """What a QR scanner reads off the page's canvas."""
    pixels = page.evaluate(_CANVAS_PIXELS)
    result = subprocess.run(
        [
            need("node", APT_INSTALLS),
            str(REPO / "tests" / "support" / "qr_decode_node.js"),
            str(reader),
        ],
        input=json.dumps(pixels),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoded: str | None = json.loads(result.stdout)
    return decoded


@pytest.fixture
def shop(regtest_chain: RegtestChain, tmp_path: Path) -> Iterator[Shop]:
    """The daemon on the real chain, as in tests/test_regtest_e2e.py, letting one PID poll every second."""
    polled = Shop(regtest_chain, tmp_path)
    polled.daemon.env["ABUSE_PID_PER_MINUTE"] = "600"
    with polled.running() as running:
        yield running


class Watched:
    """A browser profile (context) and page, recording every request and console problem."""

    def __init__(self, browser: Browser, origin: str, width: int, height: int = 900) -> None:
        self.origin = origin
        self.context: BrowserContext = browser.new_context(
            accept_downloads=True, viewport={"width": width, "height": height}
        )
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # A 404/402/… answer of the API is logged by Chromium as a failed resource: expected here.
        if message.type == "error" and "status of" not in message.text:
            self.problems.append(message.text)

    def field(self, name: str) -> str:
        return str(self.page.text_content(f'[data-field="{name}"]') or "")

    def wait_field(self, name: str, value: str) -> None:
        self.page.wait_for_function(
            '([name, value]) => document.querySelector(`[data-field="${name}"]`).textContent === value',
            arg=[name, value],
        )

    def wait_text(self, selector: str, text: str) -> None:
        self.page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent.includes(text)", arg=[selector, text]
        )

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check_clean(self) -> None:
        """Nothing loaded from elsewhere, no CSP violation, no script error."""
        assert all(url.startswith(self.origin + "/") for url in self.requests), self.requests
        assert self.problems == [], self.problems

    def close(self) -> None:
        self.context.close()


@pytest.mark.regtest
def test_pay_and_redeem_in_the_browser(shop: Shop, browser: Browser, qr_reader: Path, tmp_path: Path) -> None:
    chain = shop.chain
    origin = shop.daemon.public_url
    buyer = Watched(browser, origin, width=900)
    page = buyer.page
    try:
        page.goto(origin + "/" + POLL)
        buyer.shot("0-start")
        # No address before the PID is saved.
        page.click("#new-pid")
        pid_text = buyer.field("pid")
        pid = PaymentId.parse(pid_text)
        assert pid.hex() == pid_text
        assert page.is_hidden("#step-pay") and buyer.field("address") == ""
        assert page.is_disabled("#to-pay")
        buyer.shot("1-save-pid")
        with page.expect_download() as download:
            page.click("#save-pid")
        pid_file = tmp_path / download.value.suggested_filename
        download.value.save_as(pid_file)
        assert pid_file.read_text() == pid.hex() + "\n"  # what `client new --out` writes
        page.click("#to-pay")

        # The address and amount, derived in the browser, are what the real wallet would build.
        buyer.wait_field("payment-id", pid.chain_payment_id().hex())
        address = buyer.field("address")
        assert address == chain.merchant.make_integrated_address(pid.chain_payment_id().hex())
        assert address == integrated_address(chain.merchant.address, pid.chain_payment_id())
        assert buyer.field("amount") == "0.1"
        assert read_qr(page, qr_reader) == f"monero:{address}?tx_amount=0.1"
        buyer.wait_field("status", "payment_not_found")
        buyer.shot("2-pay")

        # Paid from the payer's real wallet to the address read off the page.
        txid = shop.to_mine(chain.payer.transfer(address, MIN_AMOUNT))
        buyer.wait_field("status", "pending")
        buyer.wait_text("#status-text", "0 of 2 confirmations")

        # A reload in the middle loses nothing: same PID, same address, still pending.
        page.reload()
        buyer.wait_field("address", address)
        assert buyer.field("pid") == pid.hex()
        buyer.wait_field("status", "pending")

        shop.mine(1)
        buyer.wait_text("#status-text", "1 of 2 confirmations")
        buyer.shot("3-pending")
        assert page.evaluate(_LOW_CONTRAST) == []
        shop.mine(1)
        buyer.wait_field("status", "claimed")
        token = expected_token(pid, txid)
        assert buyer.field("token") == token
        assert shop.token_record(token)["status"] == "active"
        buyer.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        page.click("#copy-token")
        assert page.evaluate("navigator.clipboard.readText()") == token
        buyer.shot("4-token")
        buyer.check_clean()
    finally:
        buyer.close()

    # A fresh profile, 320 px wide, resumes from the saved file.
    narrow = Watched(browser, origin, width=320, height=800)
    try:
        narrow.page.goto(origin + "/" + POLL)
        narrow.page.click("#show-resume")
        narrow.page.set_input_files("#resume-file", str(pid_file))
        narrow.page.click("#resume button[type=submit]")
        narrow.wait_field("status", "already_claimed")
        assert narrow.field("token") == token
        assert narrow.field("address") == address
        # Nothing sticks out sideways at 320 px.
        assert narrow.page.evaluate("document.documentElement.scrollWidth") <= 320
        narrow.shot("5-resumed-320px")
        assert narrow.page.evaluate(_LOW_CONTRAST) == []
        narrow.check_clean()
    finally:
        narrow.close()

    # Another fresh profile, keyboard only: paste the PID and continue.
    keys = Watched(browser, origin, width=900)
    try:
        keys.page.goto(origin + "/" + POLL)
        _tab_to(keys.page, "show-resume")
        keys.page.keyboard.press("Enter")
        assert keys.page.evaluate("document.activeElement.id") == "resume-text"
        keys.page.keyboard.type(pid.hex().upper())
        _tab_to(keys.page, "", text="Continue")
        keys.page.keyboard.press("Enter")
        keys.wait_field("token", token)
        keys.check_clean()
    finally:
        keys.close()


@pytest.mark.regtest
def test_a_typo_is_refused_without_echo_and_no_payment_is_short(shop: Shop, browser: Browser) -> None:
    """A mistyped PID is refused in words (never echoed); a short payment is explained (402)."""
    chain = shop.chain
    origin = shop.daemon.public_url
    buyer = Watched(browser, origin, width=900)
    page = buyer.page
    try:
        page.goto(origin + "/" + POLL)
        page.click("#show-resume")
        typo = "ab" * 31 + "a"
        page.fill("#resume-text", typo)
        page.click("#resume button[type=submit]")
        error = str(page.text_content("#resume-error"))
        assert "not a PID" in error and typo not in error
        assert page.is_hidden("#step-pay")

        pid = PaymentId.generate()
        page.fill("#resume-text", pid.hex())
        page.click("#resume button[type=submit]")
        address = integrated_address(chain.merchant.address, pid.chain_payment_id())
        buyer.wait_field("address", address)
        shop.to_mine(chain.payer.transfer(address, MIN_AMOUNT // 4))
        shop.mine(2)
        buyer.wait_field("status", "insufficient_payment")
        text = str(page.text_content("#status-text"))
        assert "0.025 XMR received, 0.1 XMR needed" in text and "0.075 XMR" in text
        buyer.shot("6-insufficient")
        buyer.check_clean()
    finally:
        buyer.close()


def _tab_to(page: Page, element_id: str, text: str | None = None, limit: int = 30) -> None:
    """Press Tab until the element with this id (or a button with this text) has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("[document.activeElement.id, document.activeElement.textContent.trim()]")
        if (element_id and focused[0] == element_id) or (text is not None and focused[1] == text):
            return
    raise AssertionError(f"Tab never reached {element_id or text}")


def test_revoked_and_rate_limited_are_explained(browser: Browser, tmp_path: Path) -> None:
    """410 stops the page with an explanation; 429 makes it wait for Retry-After and say so."""
    with (
        FakeWallet(height=200) as wallet,
        DaemonProcess(tmp_path, wallet_url=wallet.url, env={"ABUSE_PID_PER_MINUTE": "3"}) as daemon,
    ):
        origin = daemon.public_url
        revoked_pid, token = claim_token(daemon, wallet)
        answer = daemon.internal("POST", f"/api/v1/token/{token}/revoke", json={"reason": "abuse"})
        assert answer.status_code == 200, answer.text
        buyer = Watched(browser, origin, width=900)
        try:
            buyer.page.goto(origin + "/" + POLL)
            buyer.page.click("#show-resume")
            buyer.page.fill("#resume-text", revoked_pid.hex())
            buyer.page.click("#resume button[type=submit]")
            buyer.wait_field("status", "token_revoked")
            assert "revoked" in str(buyer.page.text_content("#status-text"))
            assert buyer.field("token") == ""
            buyer.shot("7-revoked")

            # Start over: after a confirmation, the PID is forgotten by the tab.
            buyer.page.once("dialog", lambda dialog: dialog.accept())
            buyer.page.click("#forget")
            assert buyer.page.is_visible("#new-pid") and buyer.field("pid") == ""
            assert buyer.page.evaluate("sessionStorage.length") == 0
        finally:
            buyer.close()

        # A payment in the pool, polled every second: the fourth redeem in a minute is refused.
        limited = Watched(browser, origin, width=900)
        try:
            pid = PaymentId.generate()
            wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=daemon.min_payment_amount)
            limited.page.goto(origin + "/" + POLL)
            limited.page.click("#show-resume")
            limited.page.fill("#resume-text", pid.hex())
            limited.page.click("#resume button[type=submit]")
            limited.wait_field("status", "rate_limited")
            text = str(limited.page.text_content("#status-text"))
            assert "Too many requests" in text and "trying again in" in text
            limited.shot("8-rate-limited")
            assert limited.page.evaluate(_LOW_CONTRAST) == []
            limited.check_clean()
        finally:
            limited.close()


def test_without_javascript_the_page_says_so(browser: Browser, tmp_path: Path) -> None:
    """JavaScript off: the page says so and shows the command-line client's two commands."""
    with FakeWallet(height=200) as wallet, DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        context = browser.new_context(java_script_enabled=False, viewport={"width": 320, "height": 800})
        try:
            page = context.new_page()
            page.goto(daemon.public_url + "/")
            text = page.inner_text("body")
            assert "JavaScript is off" in text
            assert "python -m anon_ticket client new --server" in text and "--out anon-ticket.pid" in text
            assert (
                "python -m anon_ticket client redeem --server" in text
                and "--pid-file anon-ticket.pid" in text
            )
            # Nothing that needs a script is visible.
            assert page.is_hidden("#new-pid") and page.is_hidden("#step-pay")
            assert page.evaluate("document.documentElement.scrollWidth") <= 320
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "9-no-javascript-320px.png"), full_page=True)
        finally:
            context.close()


def test_a_shop_without_its_wallet_says_it_is_not_ready(browser: Browser, tmp_path: Path) -> None:
    """/api/v1/info answers 503 until the wallet's address is known: no address is shown, only why."""
    with DaemonProcess(tmp_path) as daemon:  # its wallet-rpc URL has nobody listening
        assert daemon.public("GET", "/api/v1/info").status_code == 503
        buyer = Watched(browser, daemon.public_url, width=900)
        try:
            buyer.page.goto(daemon.public_url + "/" + POLL)
            buyer.page.click("#show-resume")
            buyer.page.fill("#resume-text", PaymentId.generate().hex())
            buyer.page.click("#resume button[type=submit]")
            buyer.wait_text("#info-error", "not ready yet")
            assert buyer.page.is_hidden("#pay-details") and buyer.field("address") == ""
            buyer.shot("10-not-ready")
        finally:
            buyer.close()
