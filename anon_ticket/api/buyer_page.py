"""The buyer's page on the public listener: `GET /` and `GET /static/<name>` (docs/PROTOCOL.md §10).

Every file is read once, at start, from the `anon_ticket` package itself (`importlib.resources`, so a
wheel install serves the same bytes) and answered from memory: a request never touches the disk.
Assets are served under content-hashed names (`buyer-core.3f2a9c1b04de.js`) with a year of immutable
caching, so a new release can never be mixed with a cached old script; the page, which names them,
is revalidated on every load. Both carry the §10 Content-Security-Policy: scripts and styles from this
origin only, no inline code, requests to this origin only, no framing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from anon_ticket.api.wsgi import Environ, StartResponse, respond_error
from anon_ticket.errors import BuyerPageError, MethodNotAllowed, NotFound

STATIC_PREFIX = "/static/"
PAGE_TEMPLATE = "index.html"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
_PLACEHOLDER = re.compile(r"\{\{static:([A-Za-z0-9._/-]+)\}\}")
_HASH_CHARS = 12
_SECURITY_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]
_ALLOWED = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Asset:
    """One answer held in memory: its body and every header but the length."""

    body: bytes
    headers: tuple[tuple[str, str], ...]


def hashed_name(name: str, body: bytes) -> str:
    """`vendor/qrcode.js` -> `vendor/qrcode.<first 12 hex of its SHA-256>.js`."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:_HASH_CHARS]
    hashed = f"{stem}.{digest}{dot}{ext}" if dot else f"{base}.{digest}"
    return f"{folder}/{hashed}" if folder else hashed


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            files.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.is_file() and "." + entry.name.rpartition(".")[2] in _CONTENT_TYPES:
            files[prefix + entry.name] = entry.read_bytes()
    return files


def _content_type(name: str) -> str:
    return _CONTENT_TYPES["." + name.rpartition(".")[2]]


class BuyerPage:
    """The page and its assets, loaded once; `serve` answers the requests that are its own."""

    def __init__(self, files: dict[str, bytes]) -> None:
        """`files` maps names relative to the static folder to their bytes; `index.html` is the page."""
        if PAGE_TEMPLATE not in files:
            raise BuyerPageError(f"the buyer's page has no {PAGE_TEMPLATE}")
        self.urls: dict[str, str] = {}
        self.assets: dict[str, Asset] = {}
        for name, body in files.items():
            if name == PAGE_TEMPLATE:
                continue
            served = hashed_name(name, body)
            self.urls[name] = STATIC_PREFIX + served
            self.assets[STATIC_PREFIX + served] = Asset(
                body,
                (
                    ("Content-Type", _content_type(name)),
                    ("Cache-Control", "public, max-age=31536000, immutable"),
                    *_SECURITY_HEADERS,
                ),
            )
        self.page = Asset(
            self._render(files[PAGE_TEMPLATE].decode("utf-8")).encode("utf-8"),
            (
                ("Content-Type", _CONTENT_TYPES[".html"]),
                ("Cache-Control", "no-cache"),
                *_SECURITY_HEADERS,
            ),
        )

    @classmethod
    def load(cls) -> BuyerPage:
        """Read the packaged static folder (call once, at start); BuyerPageError if it is unusable."""
        try:
            files = _walk(resources.files("anon_ticket.api").joinpath("static"))
        except OSError as exc:
            raise BuyerPageError(f"cannot read the buyer's page files: {exc}") from exc
        return cls(files)

    def _render(self, template: str) -> str:
        def url(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.urls:
                raise BuyerPageError(f"{PAGE_TEMPLATE} refers to {name}, which is not packaged")
            return self.urls[name]

        return _PLACEHOLDER.sub(url, template)

    @property
    def total_bytes(self) -> int:
        """The page and every asset it may load: what §10 caps at 200 KB."""
        return len(self.page.body) + sum(len(asset.body) for asset in self.assets.values())

    def serve(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """Answer `/` or a path under `/static/`; NotFound or MethodNotAllowed otherwise.

        RFC 9110 §9.3.2: HEAD gets GET's headers and no body (a WSGI server would send one), a HEAD of an
        unknown file included: its 404 is answered here, without the JSON body a GET would get.
        """
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        asset = self.page if path == "/" else self.assets.get(path)
        if asset is None:
            if method == "HEAD":
                respond_error(start_response, NotFound("no such file"))
                return []
            raise NotFound("no such file")
        if method not in _ALLOWED:
            raise MethodNotAllowed(_ALLOWED)
        start_response("200 OK", [*asset.headers, ("Content-Length", str(len(asset.body)))])
        return [] if method == "HEAD" else [asset.body]
