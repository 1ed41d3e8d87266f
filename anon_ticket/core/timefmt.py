"""Times on the wire: RFC 3339, UTC, whole seconds (docs/PROTOCOL.md §4)."""

from __future__ import annotations

import time


def rfc3339(unix_seconds: int | None) -> str | None:
    if unix_seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_seconds))
