"""The PROXY protocol v1 line tor sends before each onion-service stream (docs/PROTOCOL.md §8).

With `HiddenServiceExportCircuitID haproxy` in torrc, tor opens every stream to the daemon with
`PROXY TCP6 <src> <dst> <sport> <dport>\\r\\n`, where the low 32 bits of the source address are the
id of the rendezvous circuit the stream came over (tor's "haproxy-proxy" spec; the upper 96 bits are
a fixed prefix we ignore). Every attacker shares one source address over Tor, but each circuit costs
them a rendezvous: the circuit is the only client identity the daemon can be fair between.
"""

from __future__ import annotations

import ipaddress

MAX_LINE = 107  # the protocol's own bound for a v1 line, CRLF included
_PREFIX = b"PROXY TCP6 "


class ProxyLineError(Exception):
    """The connection did not start with a valid PROXY TCP6 line: it is closed unanswered."""


def split_line(buffer: bytearray) -> bytes | None:
    """Remove and return the PROXY line at the start of `buffer` (without CRLF); None if incomplete.

    Raises ProxyLineError as soon as the bytes so far cannot begin a valid line, so a client that
    sends anything else is closed at its first bytes.
    """
    head = bytes(buffer[: len(_PREFIX)])
    if not _PREFIX.startswith(head):
        raise ProxyLineError("the connection does not start with a PROXY TCP6 line")
    end = buffer.find(b"\r\n", 0, MAX_LINE)
    if end < 0:
        if len(buffer) >= MAX_LINE:
            raise ProxyLineError("the PROXY line is too long")
        return None
    line = bytes(buffer[:end])
    del buffer[: end + 2]
    return line


def circuit_id(line: bytes) -> int:
    """The tor circuit id named by a PROXY TCP6 line; ProxyLineError for anything malformed."""
    parts = line.split(b" ")
    if len(parts) != 6 or parts[0] != b"PROXY" or parts[1] != b"TCP6":
        raise ProxyLineError("a PROXY line is PROXY TCP6 <src> <dst> <sport> <dport>")
    try:
        source = ipaddress.IPv6Address(parts[2].decode("ascii"))
        ipaddress.IPv6Address(parts[3].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyLineError("a PROXY line's addresses must be IPv6") from None
    for port in parts[4:]:
        if not port.isdigit() or len(port) > 5 or int(port) > 65535 or (len(port) > 1 and port[0:1] == b"0"):
            raise ProxyLineError("a PROXY line's ports must be 0-65535")
    return int(source) & 0xFFFFFFFF
