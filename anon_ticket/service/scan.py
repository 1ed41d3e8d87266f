"""The operator's rescan (docs/PROTOCOL.md §5, §7): move the scan cursor back through the running daemon.

The storage writer is the daemon's only writer, so a rescan asked of a running daemon is one more
message to it, answered once committed; the rules a rescan must follow live in `anon_ticket/core/rescan.py`
and are checked again by the store inside its transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from anon_ticket.actors.locator import ActorLocator, wait
from anon_ticket.actors.storage_writer import StorageWriterProxy
from anon_ticket.core import rescan

log = logging.getLogger(__name__)


class ScanService:
    """Callable from any request thread; holds no per-request state."""

    def __init__(self, actors: ActorLocator, actor_timeout_secs: float) -> None:
        self._actors = actors
        self._timeout = actor_timeout_secs

    def rescan(self, request: rescan.RescanRequest) -> dict[str, Any]:
        writer = self._actors.proxy("storage_writer", StorageWriterProxy)
        state = wait(
            writer.rescan_from(request.from_height, request.reset_highest),
            self._timeout,
            "storage writer",
            "storage",
        )
        return {
            "scan_cursor": state.scan_cursor,
            "scan_floor": state.scan_floor,
            "highest_height": state.highest_height,
        }
