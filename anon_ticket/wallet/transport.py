"""One HTTP POST to monero-wallet-rpc with a deadline on the whole exchange and a cap on the answer.

docs/PROTOCOL.md §9: `MONERO_RPC_TIMEOUT_SECS` bounds the whole call (connect, send, every byte of the
answer), not each read. A socket timeout alone bounds each read, so a wallet dripping one byte a
second would hold a call forever; here a watchdog timer shuts the socket down at the deadline, which
wakes the blocked read at once. `abort()` does the same from another thread, for good: it is how the
daemon abandons a hung call when it stops. The answer is read in chunks and the call fails as soon
as it passes `max_response_bytes`, so an enormous answer is never held, let alone parsed.

HTTP digest authentication (RFC 2617, MD5 and MD5-sess with qop=auth, what `monero-wallet-rpc
--rpc-login` speaks) is done here because the exchange must stay under the same deadline.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import re
import secrets
import select
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

from anon_ticket.errors import WalletUnreachable

CHUNK_BYTES = 64 * 1024
_CHALLENGE_PAIR = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_DIGEST_WORD = re.compile(r"(?i)(?:^|,)\s*digest\s+")


@dataclass(frozen=True, slots=True)
class _Challenge:
    realm: str
    nonce: str
    algorithm: str  # MD5 or MD5-SESS
    qop: str | None
    opaque: str | None


def _parse_challenges(headers: list[str]) -> _Challenge | None:
    """The first usable Digest challenge among the WWW-Authenticate headers (epee sends two)."""
    for header in headers:
        for part in _DIGEST_WORD.split(header):
            fields = {
                m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                for m in _CHALLENGE_PAIR.finditer(part)
            }
            algorithm = fields.get("algorithm", "MD5").upper()
            if "nonce" not in fields or algorithm not in ("MD5", "MD5-SESS"):
                continue
            qops = [q.strip().lower() for q in fields.get("qop", "").split(",") if q.strip()]
            if qops and "auth" not in qops:
                continue
            return _Challenge(
                fields.get("realm", ""),
                fields["nonce"],
                algorithm,
                "auth" if qops else None,
                fields.get("opaque"),
            )
    return None


class _Digest:
    """Client side of RFC 2617 digest auth; reuses the last challenge with a growing nonce count."""

    def __init__(self, user: str, password: str) -> None:
        self._user = user
        self._password = password
        self.challenge: _Challenge | None = None
        self._count = itertools.count(1)

    def __repr__(self) -> str:
        return f"_Digest(user={self._user!r}, password=********)"

    def learn(self, challenge: _Challenge) -> None:
        self.challenge = challenge
        self._count = itertools.count(1)

    def header(self, method: str, uri: str) -> str | None:
        c = self.challenge
        if c is None:
            return None

        def md5(text: str) -> str:
            return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()

        cnonce = secrets.token_hex(8)
        nc = f"{next(self._count):08x}"
        ha1 = md5(f"{self._user}:{c.realm}:{self._password}")
        if c.algorithm == "MD5-SESS":
            ha1 = md5(f"{ha1}:{c.nonce}:{cnonce}")
        ha2 = md5(f"{method}:{uri}")
        if c.qop == "auth":
            response = md5(f"{ha1}:{c.nonce}:{nc}:{cnonce}:auth:{ha2}")
        else:
            response = md5(f"{ha1}:{c.nonce}:{ha2}")
        parts = [
            f'username="{self._user}"',
            f'realm="{c.realm}"',
            f'nonce="{c.nonce}"',
            f'uri="{uri}"',
            f"algorithm={'MD5-sess' if c.algorithm == 'MD5-SESS' else 'MD5'}",
            f'response="{response}"',
        ]
        if c.qop == "auth":
            parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        if c.opaque is not None:
            parts.append(f'opaque="{c.opaque}"')
        return "Digest " + ", ".join(parts)


class _Expired(Exception):
    """The watchdog shut the socket down: the deadline passed, or the client was aborted."""


class WalletHttp:
    """POSTs bodies to one URL over one kept-alive connection. Not thread-safe, except `abort()`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        max_response_bytes: int,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the wallet URL must be http:// or https:// with a host")
        self.url = url
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._digest = _Digest(user, password or "") if user is not None else None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()  # guards _in_flight and _aborted against the watchdog/abort
        self._in_flight: tuple[int, http.client.HTTPConnection] | None = None
        self._calls = itertools.count(1)
        self._expired_call = 0
        self._aborted = False

    def __repr__(self) -> str:
        return f"WalletHttp({self.url!r}, timeout={self.timeout:g})"

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def abort(self) -> None:
        """From any thread: the call in flight fails at once, and so does every later call."""
        with self._lock:
            self._aborted = True
            in_flight = self._in_flight
        if in_flight is not None:
            _shut(in_flight[1])

    @property
    def aborted(self) -> bool:
        return self._aborted

    def _expire(self, call: int) -> None:
        with self._lock:
            in_flight = self._in_flight
            if in_flight is None or in_flight[0] != call:
                return  # that call finished just before its timer fired
            self._expired_call = call
        _shut(in_flight[1])

    # -- the exchange -----------------------------------------------------------------------------

    def post(self, body: bytes, what: str, timeout: float | None = None) -> bytearray:
        """POST `body` as JSON; the answer's body when it is HTTP 200, else `WalletUnreachable`.

        `timeout` replaces this client's deadline for this one call (a call known to be slow).
        """
        if self._aborted:
            raise WalletUnreachable(f"{what}: abandoned, the daemon is stopping")
        call = next(self._calls)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        watchdog = threading.Timer(limit, self._expire, (call,))
        watchdog.daemon = True
        watchdog.start()
        try:
            return self._post(call, body, deadline, what)
        except (_Expired, OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            if self._aborted:
                raise WalletUnreachable(f"{what}: abandoned, the daemon is stopping") from None
            if self._expired_call == call or time.monotonic() >= deadline:
                raise WalletUnreachable(f"{what}: no complete answer within {limit:g} s") from None
            raise WalletUnreachable(f"{what}: {type(exc).__name__}") from None
        except BaseException:
            self.close()
            raise
        finally:
            watchdog.cancel()
            with self._lock:
                self._in_flight = None

    def _post(self, call: int, body: bytes, deadline: float, what: str) -> bytearray:
        for attempt in (1, 2):
            conn = self._connection(call, deadline)
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if self._digest is not None:
                authorization = self._digest.header("POST", self._path)
                if authorization is not None:
                    headers["Authorization"] = authorization
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            if response.status == 401 and self._digest is not None and attempt == 1:
                challenge = _parse_challenges(response.msg.get_all("WWW-Authenticate") or [])
                # The second try goes on this same connection: monero-wallet-rpc (epee) only accepts
                # a nonce on the connection it was issued on. So the 401 page is read (capped).
                self._read_capped(response, what)
                if response.will_close:
                    self.close()
                if challenge is None:
                    raise WalletUnreachable(f"{what}: HTTP 401 without a digest challenge")
                self._digest.learn(challenge)
                continue
            if response.status != 200:
                self.close()
                if response.status == 401:
                    break
                raise WalletUnreachable(f"{what}: HTTP {response.status}")
            data = self._read_capped(response, what)
            if response.will_close:
                self.close()
            return data
        raise WalletUnreachable(f"{what}: HTTP 401, the wallet refused MONERO_RPC_USER/PASSWORD")

    def _connection(self, call: int, deadline: float) -> http.client.HTTPConnection:
        conn = self._conn
        remaining = max(0.001, deadline - time.monotonic())
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()  # the wallet closed the kept-alive connection meanwhile: connect again
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=remaining)
            self._conn = conn
        with self._lock:
            if self._aborted:
                raise _Expired
            self._in_flight = (call, conn)
        if conn.sock is None:
            conn.timeout = remaining
            conn.connect()
        # Each single read is bounded too; the watchdog bounds them all together.
        conn.sock.settimeout(remaining)
        with self._lock:
            if self._aborted or self._expired_call == call:
                raise _Expired  # the watchdog fired while connecting, before there was a socket
        return conn

    def _read_capped(self, response: http.client.HTTPResponse, what: str) -> bytearray:
        cap = self.max_response_bytes
        declared = response.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            self.close()
            raise WalletUnreachable(f"{what}: the answer is {int(declared)} bytes, over the {cap}-byte limit")
        data = bytearray()
        while True:
            chunk = response.read(CHUNK_BYTES)
            if not chunk:
                break
            data += chunk
            if len(data) > cap:
                self.close()
                raise WalletUnreachable(f"{what}: the answer is over the {cap}-byte limit")
        return data  # not copied into bytes: json.loads takes a bytearray as it is


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable has been closed (or sent garbage): not reusable."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _shut(conn: http.client.HTTPConnection) -> None:
    """Wake whoever is blocked on this connection's socket (shutdown does, close does not)."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
