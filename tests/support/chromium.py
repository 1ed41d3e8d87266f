"""Headless Chromium: the system's binary, driven by Playwright for the browser tests, and screenshots
of the admin panel, signed in, without JavaScript or DevTools.

Chromium's `--screenshot` cannot fill a form, so a signed-in page is shown through `CookieTunnel`: a
small HTTP forwarder on its own loopback port (what an SSH tunnel to the internal listener is) that
adds the session cookie to each request. The panel sees `Host: 127.0.0.1:<tunnel port>`, a name of
its own, as it would through a real tunnel.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import requests

from tests.support.services import require

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def playwright_chromium() -> Iterator[Browser]:
    """The system's Chromium launched by Playwright (no sandbox, no GPU), closed afterwards; skips
    (fails under CI=true) when either is missing."""
    require("playwright", sync_playwright is not None, "the test extra installs it")
    executable = chromium()
    require("chromium", executable is not None, "scripts/test installs it with apt-get as root")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def screenshot(
    binary: str, url: str, out: Path, profile: Path, size: tuple[int, int] = (1280, 1000)
) -> bytes:
    """A PNG of `url`; returns its bytes (the caller checks them)."""
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
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={size[0]},{size[1]}",
        url,
    ]
    result = subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return out.read_bytes()


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class CookieTunnel:
    """Forwards GETs from its own port to `target`, adding `Cookie: <cookie>`."""

    def __init__(self, target: str, cookie: str) -> None:
        tunnel = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {"Host": self.headers.get("Host", ""), "Cookie": tunnel.cookie}
                with requests.get(
                    target + self.path, headers=headers, timeout=10, allow_redirects=False
                ) as answer:
                    body = answer.content
                    self.send_response(answer.status_code)
                    for name in ("Content-Type", "Content-Security-Policy", "Location", "Cache-Control"):
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.cookie = cookie
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="cookie-tunnel", daemon=True)

    def __enter__(self) -> CookieTunnel:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
