"""The descriptor limit against the connection caps: every open connection costs a descriptor.

The daemon raises its soft RLIMIT_NOFILE to the hard one at start (`daemon.raise_descriptor_limit`)
and keeps each of its two listeners below what that allows (`daemon.connection_cap`); a cap lower than
HTTP_MAX_CONNECTIONS is a shop that turns buyers away earlier than its operator thinks.
"""

from __future__ import annotations

import resource

from anon_ticket.commands.check.report import Finding, ok, problem
from anon_ticket.config import Config
from anon_ticket.daemon import RESERVED_DESCRIPTORS, connection_cap

LISTENERS = 2  # public and internal


def check(config: Config) -> Finding:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    reachable = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    wanted = config.http_max_connections
    needed = LISTENERS * wanted + RESERVED_DESCRIPTORS
    cap = connection_cap(wanted, reachable)
    if cap < wanted:
        return problem(
            "descriptors",
            f"the limit is {reachable} (soft {soft}, hard {hard}): the daemon would cap each listener at "
            f"{cap} connections, below HTTP_MAX_CONNECTIONS={wanted}",
            f"raise it to at least {needed} (LimitNOFILE={needed} in the systemd unit, or ulimit -n) or "
            f"set HTTP_MAX_CONNECTIONS={cap}",
        )
    return ok(
        "descriptors",
        f"limit {reachable} covers {LISTENERS} × HTTP_MAX_CONNECTIONS={wanted} (+{RESERVED_DESCRIPTORS})",
    )
