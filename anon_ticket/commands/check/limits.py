"""The descriptor limit against the connection caps: every open connection costs a descriptor.

The daemon raises its soft RLIMIT_NOFILE to the hard one at start and keeps each listener below what
that allows (`process/descriptors.py`); a limit that cannot hold HTTP_MAX_CONNECTIONS on every
listener is a shop that turns buyers away earlier than its operator thinks.
"""

from __future__ import annotations

from anon_ticket.commands.check.report import Finding, ok, problem
from anon_ticket.config import Config
from anon_ticket.process.descriptors import RESERVED_DESCRIPTORS, listener_count, reachable_limit


def check(config: Config) -> Finding:
    reachable, soft, hard = reachable_limit()
    count = listener_count(config)
    wanted = config.http_max_connections
    needed = count * wanted + RESERVED_DESCRIPTORS
    each = max(0, (reachable - RESERVED_DESCRIPTORS) // count)
    if reachable < needed:
        return problem(
            "descriptors",
            f"the limit is {reachable} (soft {soft}, hard {hard}): room for {each} connections on each of "
            f"{count} listeners, below HTTP_MAX_CONNECTIONS={wanted}",
            f"raise it to at least {needed} (LimitNOFILE={needed} in the systemd unit, or ulimit -n) or "
            f"set HTTP_MAX_CONNECTIONS={each}",
        )
    return ok(
        "descriptors",
        f"limit {reachable} covers {count} × HTTP_MAX_CONNECTIONS={wanted} (+{RESERVED_DESCRIPTORS})",
    )
