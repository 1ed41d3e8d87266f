"""Which `Host` headers the panel answers to: its own address and names of it (DNS rebinding).

A page of another site whose name an attacker re-points at 127.0.0.1 reaches the panel with that
site's name in `Host`; only names of this listener are served. The port is not compared: an SSH tunnel
(`ssh -L 9000:127.0.0.1:8081`) or a local proxy legitimately changes it, and the name is what a
rebinding attack cannot fake. On a wildcard bind (`0.0.0.0`, `::`) any IP literal is accepted: a name
can be rebound, an address cannot.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from anon_ticket.config import BindAddress

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (names, not a bind)


@dataclass(frozen=True, slots=True)
class HostPolicy:
    names: frozenset[str]
    any_ip_literal: bool = False

    @classmethod
    def for_listener(cls, address: BindAddress | Path) -> HostPolicy:
        if isinstance(address, Path):
            # Clients of a Unix socket send a placeholder name: `localhost` (curl), or the socket path
            # itself, plain or percent-encoded (requests-unixsocket's `http+unix://%2Frun%2F…`).
            path = str(address)
            return cls(LOOPBACK_NAMES | {path.lower(), urllib.parse.quote(path, safe="").lower()})
        host = address.host.strip("[]").lower()
        if host in _WILDCARDS:
            return cls(LOOPBACK_NAMES, any_ip_literal=True)
        return cls(LOOPBACK_NAMES | {host})

    def allows(self, header: str | None) -> bool:
        name = _host_name(header or "")
        if name is None:
            return False
        if name in self.names:
            return True
        if self.any_ip_literal:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


def _host_name(header: str) -> str | None:
    """The name in `Host` (RFC 9110 §7.2), lower-cased, without port or IPv6 brackets; None if malformed."""
    value = header.strip().lower()
    if not value or any(c.isspace() or c in "@?#" for c in value):
        return None
    if value.startswith("/"):
        return value  # a Unix socket's path, as some clients send it
    try:
        parts = urllib.parse.urlsplit("//" + value)
        parts.port  # noqa: B018 (validates the port: ValueError when it is not a number in range)
    except ValueError:
        return None
    if parts.path or not parts.hostname:
        return None
    return parts.hostname
