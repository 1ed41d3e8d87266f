"""The PID cache: owns the screen of known payment ids and publishes it for request threads.

Request threads read the published screen directly (a few bit tests, ~1 µs) instead of asking this
actor (~54 µs a round trip), so a flood of unknown PIDs never queues here. The
screen is rebuilt from storage in `on_start` (in the actor's thread); until then nothing is
published and redeem answers 503, because an empty screen would turn real payments away.

With several nodes on PostgreSQL (docs/PROTOCOL.md §11) only the leader's poller adds the ids it
ingests; every node also hears new ids from a `PaymentIdFeed` (LISTEN/NOTIFY, a thread the cache
owns, which `tell`s it). A notification sent while the feed was disconnected is lost, so each time
the feed listens again, and every `rebuild_secs` as a safety net, the cache builds a whole new screen
from storage in a thread of its own and swaps it in; the old screen answers until then, and the ids
added meanwhile are carried over, so the actor never blocks on a rebuild.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.ticker import Ticker
from anon_ticket.core.pid_screen import PidScreen
from anon_ticket.errors import StorageError
from anon_ticket.storage.pid_feed import PaymentIdFeed
from anon_ticket.storage.protocols import Store

log = logging.getLogger(__name__)

# How long the first build waits for the feed to listen (so it misses nothing); after that it builds
# anyway, and the feed's first LISTEN triggers one more rebuild.
LISTEN_WAIT_SECS = 5.0

OpenFeed = Callable[[Callable[[list[bytes]], None], Callable[[int], None]], PaymentIdFeed | None]


@dataclass(frozen=True, slots=True)
class _Heard:
    payment_ids: list[bytes]


@dataclass(frozen=True, slots=True)
class _Listening:
    generation: int


class _RebuildTick:
    """Self-scheduled: the periodic safety-net rebuild."""


@dataclass(frozen=True, slots=True)
class _Built:
    screen: PidScreen | None  # None: the build failed (logged); the next trigger tries again
    generation: int  # the feed's generation when the build started


def build_screen(open_store: Callable[[], Store], capacity: int) -> PidScreen:
    """A new screen holding every payment id in storage (StorageError if storage cannot be read)."""
    screen = PidScreen(capacity)
    store = open_store()
    try:
        # Streamed, never held as a list: at a million payments the ids alone would be ~40 MB of
        # Python objects, the screen 1.2 MB.
        screen.add_many(store.known_payment_ids())
    finally:
        store.close()
    return screen


class PidCache(pykka.ThreadingActor):
    def __init__(
        self,
        published: PublishedState,
        open_store: Callable[[], Store],
        capacity: int,
        open_feed: OpenFeed | None = None,
        rebuild_secs: float = 300.0,
    ) -> None:
        super().__init__()
        self._published = published
        self._open_store = open_store
        self._capacity = capacity
        self._open_feed = open_feed
        self._rebuild_secs = rebuild_secs
        self._screen: PidScreen | None = None
        self._warned_full = False
        self._feed: PaymentIdFeed | None = None
        self._ticker: Ticker | None = None
        self._built_generation = 0  # the feed's generation the current screen was built after
        self._carried: list[bytes] | None = None  # ids added while a rebuild runs; None: none runs
        self._again = False  # a rebuild was asked for while one ran

    def on_start(self) -> None:
        self._published.pid_screen = None
        ref = self.actor_ref
        if self._open_feed is not None:
            self._feed = self._open_feed(
                lambda ids: _tell(ref, _Heard(ids)), lambda generation: _tell(ref, _Listening(generation))
            )
        if self._feed is not None:
            self._feed.start()
            if not self._feed.wait_listening(LISTEN_WAIT_SECS):
                log.warning("not yet listening for new payment ids; the PID screen is rebuilt once it is")
        generation = self._feed.generation if self._feed is not None else 0
        screen = build_screen(self._open_store, self._capacity)
        self._built_generation = generation
        self._screen = screen
        self._published.pid_screen = screen
        log.info("PID screen ready: %d known payment ids, %d KiB", screen.count, screen.memory_bytes // 1024)
        self._check_capacity()
        if self._feed is not None:
            self._ticker = Ticker(ref, _RebuildTick())
            self._ticker.schedule(self._rebuild_secs)

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        if self._feed is not None:
            self._feed.stop()
        if self._published.pid_screen is self._screen:
            self._published.pid_screen = None

    def on_failure(self, *_: object) -> None:
        self.on_stop()

    def on_receive(self, message: object) -> object:
        if isinstance(message, _Heard):
            self.add(message.payment_ids)
        elif isinstance(message, _Listening):
            if message.generation > self._built_generation:
                self._rebuild("the listening connection was re-established")
        elif isinstance(message, _RebuildTick):
            assert self._ticker is not None
            self._ticker.schedule(self._rebuild_secs)
            self._rebuild("periodic")
        elif isinstance(message, _Built):
            self._swap(message)
        else:
            return super().on_receive(message)
        return None

    def ping(self) -> bool:
        return True

    def add(self, payment_ids: Iterable[bytes]) -> None:
        assert self._screen is not None
        ids = list(payment_ids)
        self._screen.add_many(ids)
        if self._carried is not None:
            self._carried.extend(ids)
        self._check_capacity()

    def _rebuild(self, why: str) -> None:
        """Build a new screen in a thread of its own; `_swap` publishes it."""
        if self._carried is not None:
            self._again = True  # the build running may have started before what we must catch up on
            return
        self._carried = []
        generation = self._feed.generation if self._feed is not None else 0
        ref, open_store, capacity = self.actor_ref, self._open_store, self._capacity
        log.debug("rebuilding the PID screen (%s)", why)

        def build() -> None:
            try:
                screen: PidScreen | None = build_screen(open_store, capacity)
            except StorageError as exc:
                log.warning("cannot rebuild the PID screen (the current one keeps answering): %s", exc)
                screen = None
            _tell(ref, _Built(screen, generation))

        threading.Thread(target=build, name="pid-screen-rebuild", daemon=True).start()

    def _swap(self, built: _Built) -> None:
        carried, self._carried = self._carried or [], None
        if built.screen is not None:
            built.screen.add_many(carried)
            self._screen = built.screen
            self._published.pid_screen = built.screen
            self._built_generation = max(self._built_generation, built.generation)
            log.debug("PID screen rebuilt: %d known payment ids", built.screen.count)
            self._check_capacity()
        if self._again:
            self._again = False
            self._rebuild("asked for during the last rebuild")

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


def _tell(ref: pykka.ActorRef[PidCache], message: object) -> None:
    """From the feed's or a build's thread: an actor that stopped meanwhile needs nothing."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


class PidCacheProxy(ActorMemberMixin, pykka.ActorProxy[PidCache]):
    ping = proxy_method(PidCache.ping)
    add = proxy_method(PidCache.add)
