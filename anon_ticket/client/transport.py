"""One HTTP exchange with the public API, hardened for a server we do not trust, reached over Tor.

- No redirects: a 307 would make requests re-send the PID to wherever the server points.
- No environment: `trust_env` off, so neither `*_PROXY` variables nor `~/.netrc` credentials apply
  behind the buyer's back; the proxy is exactly `--proxy`.
- Bounded bodies, no compression: a hostile server cannot make us buffer or inflate gigabytes.
- A fixed User-Agent that does not reveal the library or Python version.
- A `.onion` server is refused without a proxy that resolves names remotely: otherwise the lookup
  would leak to the local DNS resolver (and fail anyway).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import requests

from anon_ticket.client.errors import NetworkError, ServerError, UsageError

MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "anon-ticket-client"
PROXY_SCHEMES = frozenset({"socks5h", "socks5", "socks4a", "socks4", "http", "https"})
LOCAL_DNS_PROXY_SCHEMES = frozenset({"socks5", "socks4"})


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: its status, its body decoded as JSON (None when it is not JSON), Retry-After."""

    status: int
    body: object = field(repr=False)  # may hold the service token: never in a repr
    retry_after: int | None


def _split(url: str, what: str) -> SplitResult:
    """urlsplit, with the errors it defers (a bad port or IPv6 literal) surfaced as usage errors."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port
    except ValueError as exc:
        raise UsageError(f"{what} is not a valid URL: {exc}") from exc
    return parts


def normalise_server(url: str) -> str:
    """The base URL without a trailing slash; endpoints are appended as `/api/v1/…`."""
    parts = _split(url, "--server")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server must be an http:// or https:// URL, not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise UsageError("--server must not carry credentials")
    if parts.query or parts.fragment:
        raise UsageError("--server must not carry a query or a fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def check_proxy(proxy: str | None, server: str) -> None:
    host = urlsplit(server).hostname or ""
    if proxy is None:
        if host.endswith(".onion"):
            raise UsageError("a .onion server needs --proxy socks5h://127.0.0.1:9050 (Tor)")
        return
    parts = _split(proxy, "--proxy")
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise UsageError(f"--proxy must look like socks5h://127.0.0.1:9050, not {proxy!r}")
    if parts.scheme in LOCAL_DNS_PROXY_SCHEMES and host.endswith(".onion"):
        raise UsageError(f"{parts.scheme}:// resolves names locally; use socks5h:// for a .onion server")
    if parts.scheme.startswith("socks") and importlib.util.find_spec("socks") is None:
        raise UsageError("SOCKS proxies need PySocks: pip install 'requests[socks]'")


def proxy_warnings(proxy: str | None) -> list[str]:
    """Legal but risky choices, for the command line to print (`check_proxy` refuses the illegal ones)."""
    scheme = urlsplit(proxy).scheme if proxy is not None else ""
    if scheme in LOCAL_DNS_PROXY_SCHEMES:
        return [f"{scheme}:// resolves host names on this machine; socks5h:// lets Tor do it"]
    return []


def open_session(proxy: str | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers.clear()
    session.headers.update(
        {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}
    )
    if proxy is not None:
        session.proxies = {"http": proxy, "https": proxy}
    return session


def exchange(
    session: requests.Session, method: str, url: str, *, body: dict[str, str] | None, timeout: float
) -> Reply:
    """Send one request; transport failures become `NetworkError`, oversized bodies `ServerError`."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {} if body is None else {"Content-Type": "application/json"}
    try:
        with session.request(
            method, url, data=data, headers=headers, timeout=timeout, stream=True, allow_redirects=False
        ) as response:
            raw = _read_bounded(response)
            status = response.status_code
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except requests.RequestException as exc:
        via = " (through the proxy: is Tor running?)" if session.proxies else ""
        raise NetworkError(f"cannot reach the server: {_what_failed(exc)}{via}") from exc
    return Reply(status, _json_or_none(raw), retry_after)


@dataclass(frozen=True, slots=True)
class RawReply:
    """An HTTP answer whose body is bytes (a Privacy Pass TokenResponse), with its JSON when it is JSON."""

    status: int
    content_type: str
    raw: bytes = field(repr=False)
    body: object = field(repr=False)
    retry_after: int | None


def exchange_bytes(
    session: requests.Session, url: str, payload: bytes, headers: dict[str, str], *, timeout: float
) -> RawReply:
    """POST raw bytes; the same guarantees as `exchange` (no redirects, bounded body, no environment)."""
    try:
        with session.request(
            "POST", url, data=payload, headers=headers, timeout=timeout, stream=True, allow_redirects=False
        ) as response:
            raw = _read_bounded(response)
            status = response.status_code
            content_type = response.headers.get("Content-Type", "")
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except requests.RequestException as exc:
        via = " (through the proxy: is Tor running?)" if session.proxies else ""
        raise NetworkError(f"cannot reach the server: {_what_failed(exc)}{via}") from exc
    return RawReply(status, content_type, raw, _json_or_none(raw), retry_after)


def _what_failed(exc: requests.RequestException) -> str:
    """A short cause; requests' own text repeats the URL and urllib3 internals."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused or is not running"
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _read_bounded(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ServerError(f"the server's answer is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> int | None:
    """Whole seconds only (docs/PROTOCOL.md §4); an HTTP date or garbage counts as "not said"."""
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return int(value.strip())


def _json_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
