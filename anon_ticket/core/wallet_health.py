"""The wallet's health for /api/v1/status, /healthz and statsd (docs/PROTOCOL.md §9).

The wallet poller writes it (from its own thread); request threads and the metrics actor read plain
attributes. Two separate signals, because they call for different actions:

- **stale**: no poll has been applied for `stale_secs` (the wallet is down, hung, dripping, answering
  garbage, or faulted for that long). New payments are not being seen.
- **fault**: the wallet answers but reports a height the database has moved past (restored or
  resyncing): nothing is applied, nothing is revoked, until it is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

REASON_STALE = "wallet_stale"
REASON_FAULT = "wallet_fault"


@dataclass
class WalletHealth:
    stale_secs: float = 60.0
    clock: Callable[[], float] = time.monotonic
    height: int | None = None  # what the wallet last reported, applied or not
    last_poll_at: int | None = None  # unix seconds: the last poll attempt that ended, whatever its outcome
    last_success_at: int | None = None  # unix seconds: the last poll applied by this process
    last_error: str | None = None  # of the last poll, at most 500 characters; None after a success
    fault: str | None = None  # the wallet fault in force, if any
    _last_success: float | None = None
    _since: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._since = self.clock()

    def succeeded(self, height: int, at: int) -> None:
        self.height = height
        self.last_poll_at = self.last_success_at = at
        self.last_error = self.fault = None
        self._last_success = self.clock()

    def mirrored(self, height: int | None, last_applied_at: int | None, now: float) -> None:
        """A standby node (docs/PROTOCOL.md §11): the leader's last applied poll, read from storage.

        Staleness then means the same on every node: no poll applied by *any* node for `stale_secs`.
        `now` is the wall clock (`last_applied_at` is unix seconds).
        """
        self.height = height
        self.last_poll_at = self.last_success_at = last_applied_at
        self.last_error = self.fault = None
        if last_applied_at is not None:
            self._last_success = self.clock() - max(0.0, now - last_applied_at)

    def failed(self, error: str, at: int) -> None:
        self.last_poll_at = at
        self.last_error = error

    def faulted(self, fault: str, height: int, at: int) -> None:
        self.height = height
        self.last_poll_at = at
        self.last_error = self.fault = fault

    def stale(self) -> bool:
        """No poll applied for `stale_secs` (counted from the daemon's start until the first one)."""
        reference = self._last_success if self._last_success is not None else self._since
        return self.clock() - reference >= self.stale_secs

    def up(self) -> bool:
        """The statsd gauge `wallet.up`: the last poll worked and polls are not stale."""
        return self.last_error is None and not self.stale()

    def reasons(self) -> list[str]:
        """Why /healthz says `degraded` (empty when all is well)."""
        found = []
        if self.stale():
            found.append(REASON_STALE)
        if self.fault is not None:
            found.append(REASON_FAULT)
        return found
