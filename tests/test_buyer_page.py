"""The buyer's page as the public listener serves it (docs/PROTOCOL.md §10), over real sockets.

One daemon (fake wallet) for the module; one more with BUYER_PAGE=off. What the page does in a browser
is tested in tests/test_buyer_page_browser.py; its derivations in tests/test_buyer_page_js.py.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
import requests

from anon_ticket.api.buyer_page import CONTENT_SECURITY_POLICY, BuyerPage, hashed_name
from anon_ticket.config import Config
from anon_ticket.errors import BuyerPageError, ConfigError
from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet

REPO = Path(__file__).resolve().parents[1]
MAX_TOTAL_BYTES = 200 * 1000
IMMUTABLE = "public, max-age=31536000, immutable"
HOOKS = {"pid", "payment-id", "address", "amount", "status", "token"}


wallet = module_wallet()


class PageParser(HTMLParser):
    """What the page refers to, and anything inline that the CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.links: list[str] = []
        self.anchors: list[str] = []
        self.inline: list[str] = []
        self.hooks: set[str] = set()
        self.labelled: set[str] = set()
        self.fields: list[tuple[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.scripts.append(str(attributes["src"]))
            else:
                self.inline.append("<script> without src")
        if tag == "link":
            self.links.append(str(attributes.get("href")))
        if tag == "a":
            self.anchors.append(str(attributes.get("href")))
        if attributes.get("data-field"):
            self.hooks.add(str(attributes["data-field"]))
        if tag == "label" and attributes.get("for"):
            self.labelled.add(str(attributes["for"]))
        if tag in ("input", "textarea", "select"):
            self.fields.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script text")


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


# -- the packaged page, without a server --------------------------------------------------------------


def test_page_plus_assets_fit_in_200_kb() -> None:
    page = BuyerPage.load()
    assert page.total_bytes <= MAX_TOTAL_BYTES, page.total_bytes


def test_the_page_has_no_inline_code_and_loads_only_its_own_assets() -> None:
    page = BuyerPage.load()
    found = parse(page.page.body.decode())
    assert found.inline == []
    assert found.scripts and all(s in page.assets for s in found.scripts), found.scripts
    assert found.links and all(href in page.assets for href in found.links), found.links
    # The vendored scripts' licences are linked from the page and served beside them.
    assert len(found.anchors) == 2 and all(href in page.assets for href in found.anchors), found.anchors
    for href in found.anchors:
        body = page.assets[href].body
        assert b"Permission is hereby granted" in body or b"Licensed under the MIT license" in body, href
    assert found.hooks == HOOKS
    # Every form field has a label (keyboard and screen-reader users).
    assert all(field_id in found.labelled for _, field_id in found.fields), found.fields


def test_our_own_scripts_and_styles_name_no_other_origin() -> None:
    folder = resources.files("anon_ticket.api").joinpath("static")
    for name in ("buyer-core.js", "buyer-page.js", "buyer.css", "index.html"):
        text = folder.joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r"\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), name
        assert "url(" not in text and "@import" not in text and "eval(" not in text, name


def test_asset_names_carry_their_content_hash() -> None:
    assert hashed_name("vendor/qrcode.js", b"x") == "vendor/qrcode.2d711642b726.js"
    assert hashed_name("buyer.css", b"") == "buyer.e3b0c44298fc.css"
    with pytest.raises(BuyerPageError, match=r"missing\.js"):
        BuyerPage({"index.html": b'<script src="{{static:missing.js}}"></script>'})
    with pytest.raises(BuyerPageError, match=r"no index\.html"):
        BuyerPage({"buyer.css": b""})


def test_buyer_page_setting() -> None:
    assert Config.from_environ({}).buyer_page is True
    assert Config.from_environ({"BUYER_PAGE": " OFF "}).buyer_page is False
    assert Config.from_environ({"BUYER_PAGE": "on"}).buyer_page is True
    with pytest.raises(ConfigError, match="BUYER_PAGE: must be on or off"):
        Config.from_environ({"BUYER_PAGE": "yes please"})


def test_a_wheel_carries_the_page(tmp_path: Path) -> None:
    """Package data: a wheel holds every file of the page, so `pip install` serves the same set.

    Built from a copy of the sources, so that the build leaves nothing in the work tree.
    """
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("anon_ticket", "actors"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("anon_ticket-*.whl")
    static = REPO / "anon_ticket" / "api" / "static"
    expected = {
        "anon_ticket/api/static/" + p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()
    }
    with zipfile.ZipFile(wheel) as archive:
        packed = {n for n in archive.namelist() if n.startswith("anon_ticket/api/static/")}
    assert packed == expected


# -- served by the daemon -----------------------------------------------------------------------------


def raw_exchange(url: str, request: bytes) -> bytes:
    """One request on a fresh connection that the server closes; every byte it sent back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_get_serves_the_page_with_the_csp(daemon: DaemonProcess) -> None:
    response = daemon.public("GET", "/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    csp = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.content == BuyerPage.load().page.body


def test_every_asset_is_served_with_long_caching(daemon: DaemonProcess) -> None:
    found = parse(daemon.public("GET", "/").text)
    served = 0
    total = len(daemon.public("GET", "/").content)
    for url in found.scripts + found.links:
        response = daemon.public("GET", url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        kind = response.headers["Content-Type"]
        assert (
            kind
            == {
                ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml",
            }["." + url.rpartition(".")[2]]
        )
        served += 1
        total += len(response.content)
    assert served == 6
    assert total <= MAX_TOTAL_BYTES


def test_head_has_the_headers_of_get_and_no_body(daemon: DaemonProcess) -> None:
    script = parse(daemon.public("GET", "/").text).scripts[0]
    for path in ("/", script):
        get = daemon.public("GET", path)
        port = daemon.public_url
        raw = raw_exchange(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert body == b"", body[:100]
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
        )
        assert headers["Content-Length"] == str(len(get.content))
        assert headers["Content-Type"] == get.headers["Content-Type"]
        assert headers["Cache-Control"] == get.headers["Cache-Control"]
    raw = raw_exchange(
        daemon.public_url, b"HEAD /static/nope.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 "), head
    assert body == b"", body[:100]


def test_other_methods_and_unknown_files(daemon: DaemonProcess) -> None:
    posted = daemon.public("POST", "/", data=b"x")
    assert posted.status_code == 405
    assert posted.headers["Allow"] == "GET, HEAD"
    assert posted.json()["error"] == "method_not_allowed"
    for path in (
        "/static/buyer-core.js",
        "/static/nope.js",
        "/static/",
        "/static/vendor/../index.html",
        "/index.html",
    ):
        response = daemon.public("GET", path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    # The API is untouched by the page.
    assert daemon.public("GET", "/api/v1/info").status_code in (200, 503)
    assert daemon.redeem("ab" * 32).json()["error"] == "payment_not_found"


def test_the_page_is_not_on_the_internal_listener(daemon: DaemonProcess) -> None:
    script = parse(daemon.public("GET", "/").text).scripts[0]
    for path in ("/", script):
        response = daemon.internal("GET", path)
        assert response.status_code in (401, 404), (path, response.status_code)
        assert "<html" not in response.text


def test_buyer_page_off_is_404(tmp_path: Path, wallet: FakeWallet) -> None:
    script = BuyerPage.load().page.body.decode()
    asset = parse(script).scripts[0]
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env={"BUYER_PAGE": "off"}) as daemon:
        for path in ("/", asset):
            response = daemon.public("GET", path)
            assert response.status_code == 404, path
            assert response.json()["error"] == "not_found"
        assert daemon.redeem("ab" * 32).json()["error"] == "payment_not_found"


def test_requests_session_sees_the_same_bytes_as_the_package(daemon: DaemonProcess) -> None:
    """The daemon answers from what it read at start: every asset's bytes equal the packaged file."""
    page = BuyerPage.load()
    with requests.Session() as session:
        for url, asset in page.assets.items():
            response = session.get(daemon.public_url + url, timeout=10)
            assert response.status_code == 200, url
            assert response.content == asset.body, url
