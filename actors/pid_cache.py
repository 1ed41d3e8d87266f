"""The PID cache: owns the screen of known payment ids and publishes it for request threads.

Request threads read the published screen directly (a few bit tests, ~1 µs) instead of asking this
actor (~54 µs a round trip), so a flood of unknown PIDs never queues here. The
screen is rebuilt from storage in `on_start` (in the actor's thread); until then nothing is
published and redeem answers 503, because an empty screen would turn real payments away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors.registry import Registry
from anon_ticket.pid_screen import PidScreen
from anon_ticket.storage.base import Store

log = logging.getLogger(__name__)


class PidCache(pykka.ThreadingActor):
    def __init__(self, registry: Registry, open_store: Callable[[], Store], capacity: int) -> None:
        super().__init__()
        self._registry = registry
        self._open_store = open_store
        self._capacity = capacity
        self._screen: PidScreen | None = None
        self._warned_full = False

    def on_start(self) -> None:
        self._registry.pid_screen = None
        screen = PidScreen(self._capacity)
        store = self._open_store()
        try:
            # Streamed, never held as a list: at a million payments the ids alone would be ~40 MB of
            # Python objects, the screen 1.2 MB.
            screen.add_many(store.known_payment_ids())
        finally:
            store.close()
        self._screen = screen
        self._registry.pid_screen = screen
        log.info("PID screen ready: %d known payment ids, %d KiB", screen.count, screen.memory_bytes // 1024)
        self._check_capacity()

    def on_stop(self) -> None:
        if self._registry.pid_screen is self._screen:
            self._registry.pid_screen = None

    def on_failure(self, *_: object) -> None:
        self.on_stop()

    def ping(self) -> bool:
        return True

    def add(self, payment_ids: Iterable[bytes]) -> None:
        assert self._screen is not None
        self._screen.add_many(payment_ids)
        self._check_capacity()

    def _check_capacity(self) -> None:
        assert self._screen is not None
        if self._screen.over_capacity and not self._warned_full:
            self._warned_full = True
            log.warning(
                "the PID screen holds more payment ids (%d) than PID_SCREEN_CAPACITY (%d): unknown PIDs "
                "will reach storage more often; raise PID_SCREEN_CAPACITY",
                self._screen.count,
                self._capacity,
            )


class PidCacheProxy(ActorMemberMixin, pykka.ActorProxy[PidCache]):
    ping = proxy_method(PidCache.ping)
    add = proxy_method(PidCache.add)
