"""Sessions of the access gateway (docs/PROTOCOL.md §13): a random id in a cookie, an expiry in memory.

A Privacy Pass session holds its expiry only, so nothing in it links it to the token that opened it
(the spend keeps a digest of the token's nonce, and the session a digest of a fresh random id). A
session opened with a service token also holds that token's digest: a revocation, or the end of the
paid time, must end the session too, and a service token is linkable to its every use anyway.

The store is in memory, per process, bounded (`capacity`; at the cap the oldest session gives way;
one service token holds at most `SESSIONS_PER_TOKEN`) and expiring; a restart signs everybody out.
Several nodes behind one proxy need sticky routing to the node that opened a session
(docs/OPERATIONS.md). Keys are SHA-256 digests of the cookie value, so a dictionary look-up's timing
says nothing about the value.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_CAPACITY = 100_000
# Sessions one service token may hold at once: signing in again and again with one token cannot push
# everybody else's sessions out of the bounded store (the oldest of that token's gives way instead).
SESSIONS_PER_TOKEN = 16
COOKIE_VALUE_BYTES = 32
MAX_COOKIE_VALUE_CHARS = 64


@dataclass(frozen=True, slots=True, repr=False)
class Session:
    expires_at: float
    token_digest: bytes | None  # the service token's digest, None for a Privacy Pass session


class Sessions:
    """Thread-safe: request threads open and find sessions concurrently."""

    def __init__(
        self,
        lifetime_secs: float,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifetime_secs = lifetime_secs
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        # Insertion order is opening order: the first entry is the oldest session.
        self._sessions: collections.OrderedDict[bytes, Session] = collections.OrderedDict()
        # Each service token's sessions, oldest first (Privacy Pass sessions have no token).
        self._by_token: dict[bytes, collections.deque[bytes]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def open(self, token_digest: bytes | None = None) -> str:
        """A new session for `lifetime_secs`; returns the cookie value (shown to this client only)."""
        value = secrets.token_urlsafe(COOKIE_VALUE_BYTES)
        session = Session(self._clock() + self.lifetime_secs, token_digest)
        key = _key(value)
        with self._lock:
            self._drop_expired()
            if token_digest is not None:
                mine = self._by_token.setdefault(token_digest, collections.deque())
                while len(mine) >= SESSIONS_PER_TOKEN:
                    self._forget(mine[0])
            while len(self._sessions) >= self._capacity:
                self._forget(next(iter(self._sessions)))
            self._sessions[key] = session
            if token_digest is not None:
                self._by_token.setdefault(token_digest, collections.deque()).append(key)
        return value

    def find(self, value: str) -> Session | None:
        """The live session of a cookie value, or None (unknown, malformed or expired)."""
        if not 0 < len(value) <= MAX_COOKIE_VALUE_CHARS:
            return None
        key = _key(value)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._clock() >= session.expires_at:
                self._forget(key)
                return None
            return session

    def _drop_expired(self) -> None:
        """Forget sessions past their expiry from the oldest on (they expire in opening order)."""
        now = self._clock()
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if now < oldest.expires_at:
                return
            self._forget(key)

    def _forget(self, key: bytes) -> None:
        """Drop one session and its place in its token's list (the lock is held)."""
        session = self._sessions.pop(key)
        if session.token_digest is None:
            return
        mine = self._by_token[session.token_digest]
        mine.remove(key)
        if not mine:
            del self._by_token[session.token_digest]


def _key(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def cookie_header(value: str, lifetime_secs: int) -> tuple[str, str]:
    """The `Set-Cookie` header of a session (§13): HttpOnly, SameSite=Strict, the whole site."""
    return (
        "Set-Cookie",
        f"{SESSION_COOKIE_NAME}={value}; Max-Age={lifetime_secs}; Path=/; HttpOnly; SameSite=Strict",
    )


SESSION_COOKIE_NAME = "anon_ticket_access"


def cookie_value(cookie_header_value: str) -> str | None:
    """Our session cookie's value from a request's `Cookie` header (RFC 6265 §5.4), if any."""
    for pair in cookie_header_value.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name == SESSION_COOKIE_NAME:
            return value.strip().strip('"')
    return None
