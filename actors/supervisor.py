"""The supervisor: starts the actors in dependency order, restarts a dead one, gives up on a budget.

It is deliberately not an actor (a `BaseException` in any Pykka actor stops them all, and Pykka has
no supervision of its own): it is a plain object with one watch thread, plugged into the CherryPy bus.
A restarted actor is a new actor; its ref goes to the `ActorLocator`, where callers look it up,
and rebuilds its state from storage in its own `on_start`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from anon_ticket.actors.locator import ActorHealth, ActorLocator

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECS = 0.1
MAX_RESTART_DELAY_SECS = 5.0


class StartupError(Exception):
    """An actor could not start; everything started before it was stopped again."""


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """How to start one actor: `start` returns a started ref (e.g. `SomeActor.start(...)`).

    `interrupt`, if given, is called (from the stopping thread) just before the actor is asked to
    stop: it ends whatever blocking call the actor is in, so the stop message is read at once.
    """

    name: str
    start: Callable[[], pykka.ActorRef[Any]]
    interrupt: Callable[[], None] | None = None


class Supervisor:
    def __init__(
        self,
        actors: ActorLocator,
        specs: list[ActorSpec],
        *,
        max_restarts: int,
        window_secs: float,
        ping_timeout_secs: float,
        on_give_up: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        """`heartbeat` runs on every round of the watch loop (the systemd watchdog: a hung loop stops it)."""
        self._heartbeat = heartbeat
        self._actors = actors
        self._specs = specs
        self._max_restarts = max_restarts
        self._window_secs = window_secs
        self._ping_timeout = ping_timeout_secs
        self._on_give_up = on_give_up
        self._clock = clock
        self._restarts: collections.deque[float] = collections.deque()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._gave_up = False

    # -- start and stop -------------------------------------------------------------------------

    def start_actors(self) -> None:
        """Start every actor in order and wait until each has finished `on_start`."""
        started: list[str] = []
        for spec in self._specs:
            try:
                self._start_one(spec)
            except Exception as exc:
                log.error("actor %s failed to start: %s", spec.name, exc)
                for name in reversed(started):
                    self._stop_one(name)
                raise StartupError(f"actor {spec.name} failed to start: {exc}") from exc
            started.append(spec.name)

    def watch(self) -> None:
        """Start the watch thread (idempotent)."""
        if self._watcher is None:
            self._stopping.clear()
            self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        """Stop watching, then stop the actors in reverse order of their start."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._watcher = None
        for spec in reversed(self._specs):
            if spec.interrupt is not None:
                spec.interrupt()
            self._stop_one(spec.name)

    def _start_one(self, spec: ActorSpec) -> None:
        health = self._actors.health.setdefault(spec.name, ActorHealth())
        health.state = "starting"
        try:
            ref = spec.start()
        except Exception as exc:
            # Before any of the actor's code runs, e.g. RuntimeError "can't start new thread" when the
            # process is out of threads: a failed start like any other, so that a restart retries it
            # against the budget instead of the exception ending the watch thread.
            health.state = "failed"
            raise StartupError(f"{spec.name} could not be started: {exc}") from exc
        self._actors.set_ref(spec.name, ref)
        try:
            # Block until on_start has finished: an actor that dies there is a start failure.
            ref.proxy().ping().get(timeout=self._ping_timeout)
        except (pykka.ActorDeadError, pykka.Timeout, AttributeError) as exc:
            self._actors.set_ref(spec.name, None)
            if ref.is_alive():
                ref.stop(block=False)
            health.state = "failed"
            raise StartupError(f"{spec.name} did not come up: {type(exc).__name__}") from exc
        health.state = "running"

    def _stop_one(self, name: str) -> None:
        ref = self._actors.ref(name)
        health = self._actors.health.get(name)
        if health is not None:
            health.state = "stopped"
        if ref is None:
            return
        try:
            ref.stop(timeout=self._ping_timeout)
        except (pykka.ActorDeadError, pykka.Timeout):
            log.warning("actor %s did not stop in time", name)
        self._actors.set_ref(name, None)

    # -- watching -------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL_SECS):
            if self._heartbeat is not None:
                self._heartbeat()
            for spec in self._specs:
                if self._stopping.is_set():
                    return
                ref = self._actors.ref(spec.name)
                if ref is not None and ref.is_alive():
                    continue
                if not self._restart(spec):
                    return

    def _restart(self, spec: ActorSpec) -> bool:
        now = self._clock()
        while self._restarts and self._restarts[0] <= now - self._window_secs:
            self._restarts.popleft()
        if len(self._restarts) >= self._max_restarts:
            # It stays down: /healthz and /api/v1/status must say so while the daemon stops.
            self._actors.health.setdefault(spec.name, ActorHealth()).state = "failed"
            self._give_up(
                f"{len(self._restarts)} actor restarts within {self._window_secs:g} s "
                f"(last: {spec.name}); stopping so the service manager can restart the process"
            )
            return False
        self._restarts.append(now)
        health = self._actors.health.setdefault(spec.name, ActorHealth())
        health.restarts += 1
        health.state = "restarting"
        delay = min(MAX_RESTART_DELAY_SECS, 0.05 * 2 ** (len(self._restarts) - 1))
        log.error("actor %s died; restarting it in %.2f s (restart %d)", spec.name, delay, health.restarts)
        if self._stopping.wait(delay):
            return False
        try:
            self._start_one(spec)
        except StartupError as exc:
            log.error("%s", exc)
            return True  # the next watch round counts it against the budget again
        log.info("actor %s restarted", spec.name)
        return True

    def _give_up(self, reason: str) -> None:
        if not self._gave_up:
            self._gave_up = True
            log.critical("%s", reason)
            self._on_give_up(reason)
