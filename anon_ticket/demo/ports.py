"""Loopback ports for the processes the demo (and the test suite) starts, chosen so nothing takes them.

A port from `bind(port 0)` comes from the kernel's ephemeral range, the same range it draws the local
port of every outgoing connection from. Between choosing such a port and the process binding it, any
connection on the machine (a daemon's own to its wallet, a siege's thousands) may take it, and the
start fails with "address already in use". Ports below the ephemeral range are never given to
connections, so a port chosen there and found free stays free until the process binds it.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_EPHEMERAL_LOW = 32768  # the kernel's default when the range cannot be read
_LOWEST = 10000  # below: the well-known and registered ports of local services


def _ephemeral_low() -> int:
    try:
        low = int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _LINUX_EPHEMERAL_LOW
    return low if low > _LOWEST + 1000 else _LINUX_EPHEMERAL_LOW


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports on `host` below the ephemeral range, free a moment ago.

    Each is bound (without SO_REUSEADDR, so a port with connections lingering on it is passed over)
    and all are held together while choosing, then released for the caller's process to bind.
    """
    rng = random.SystemRandom()
    high = _ephemeral_low()
    ports: list[int] = []
    if count == 0:
        return ports
    with contextlib.ExitStack() as held:
        for _ in range(200 * count):
            port = rng.randrange(_LOWEST, high)
            if port in ports:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            held.enter_context(sock)
            ports.append(port)
            if len(ports) == count:
                return ports
    raise OSError(f"no {count} free TCP ports on {host} between {_LOWEST} and {high}")


def unused_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on (statsd packets sent there go nowhere)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
