"""The descriptor limit: every open connection costs a descriptor (docs/PROTOCOL.md §8).

Many systems start services with a soft RLIMIT_NOFILE of 1,024 under a much higher hard one, so the
daemon raises the soft limit to the hard one at start, and keeps each listener's connection cap below
what the limit allows. `check` reads the same numbers without changing anything.
"""

from __future__ import annotations

import logging
import resource

from anon_ticket.config import Config

log = logging.getLogger(__name__)

# Descriptors kept for everything but client connections (database, wallet RPC, statsd, pipes).
RESERVED_DESCRIPTORS = 128


def reachable_limit() -> tuple[int, int, int]:
    """(the limit `raise_descriptor_limit` would reach, the soft limit, the hard limit) now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    return int(wanted), int(soft), int(hard)


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one and return the limit now in force."""
    wanted, soft, hard = reachable_limit()
    if soft != wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, wanted, exc)
    return soft


def listener_count(config: Config) -> int:
    """Public and internal, and the access gateway when it is configured: each may hold the cap."""
    return 2 if config.access_gateway is None else 3


def connection_cap(configured: int, descriptor_limit: int, listeners: int) -> int:
    """HTTP_MAX_CONNECTIONS, kept below what the descriptor limit allows each of the listeners."""
    return max(8, min(configured, (descriptor_limit - RESERVED_DESCRIPTORS) // listeners))
