"""Claims by token digest for the gateway's decisions, each read reused for at most half a second.

A proxy asks for every request, often many times a second for the same token; the claim's row is the
one thing the decision reads, and reading it is half of a decision's cost. Keeping each answer for
`CACHE_SECS` (0.5 s) bounds how late a change is seen: a revocation, a reorg or a top-up counts at
most half a second later, on this node and on every other node sharing the database. The end of the
paid time is compared with the clock at each decision, so it is never late. Failures are not kept:
the next request asks the database again. Bounded: at most `capacity` digests (unknown ones too, so
a flood of made-up tokens costs one read each per half second at most), the oldest forgotten first.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from anon_ticket.storage.protocols import ClaimRecord, Store

CACHE_SECS = 0.5
DEFAULT_CAPACITY = 10_000


class ClaimLookups:
    """Thread-safe; `claim(digest)` raises what the store raises (StorageError) and keeps nothing then."""

    def __init__(
        self,
        reader: Callable[[], Store],
        ttl_secs: float = CACHE_SECS,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl_secs
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._read: collections.OrderedDict[bytes, tuple[ClaimRecord | None, float]] = (
            collections.OrderedDict()
        )

    def claim(self, digest: bytes) -> ClaimRecord | None:
        now = self._clock()
        with self._lock:
            kept = self._read.get(digest)
            if kept is not None and now - kept[1] < self._ttl:
                return kept[0]
        record = self._reader().claim_by_digest(digest)
        with self._lock:
            self._read[digest] = (record, now)
            self._read.move_to_end(digest)
            while len(self._read) > self._capacity:
                self._read.popitem(last=False)
        return record
