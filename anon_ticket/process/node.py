"""This daemon as one node of a service (docs/PROTOCOL.md §11): its id and its role.

The id is `<hostname>:<process id>`, computed when asked (never at import time), so a restarted node
has a new one. The role says whether this node polls the wallet: `leader` (always, on SQLite) or
`standby`. The wallet poller decides it and publishes it; status, the panel and statsd read it.
"""

from __future__ import annotations

import os
import socket

LEADER = "leader"
STANDBY = "standby"


def node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
