"""Where request threads and actors find the *current* actors, and how each one is doing.

A restarted actor is a new actor with a new ref, so nobody keeps a proxy: callers ask the locator
each time. The supervisor is its only writer (`set_ref`, `health`). What actors publish for
lock-free reads lives apart, in `actors.published`; the fatal-error signal in `actors.fatal`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

import pykka

from anon_ticket.actors.refusal import Refused
from anon_ticket.errors import Unavailable

P = TypeVar("P")


@dataclass
class ActorHealth:
    state: str = "stopped"  # starting, running, restarting, stopped, failed
    restarts: int = 0


class ActorLocator:
    """The current ref of each named actor, a cached proxy per ref, and each actor's health."""

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._proxies: dict[str, Any] = {}
        self.health: dict[str, ActorHealth] = {}
        self._lock = threading.Lock()

    def set_ref(self, name: str, ref: pykka.ActorRef[Any] | None) -> None:
        with self._lock:
            self._proxies.pop(name, None)
            if ref is None:
                self._refs.pop(name, None)
            else:
                self._refs[name] = ref
            self.health.setdefault(name, ActorHealth())

    def ref(self, name: str) -> pykka.ActorRef[Any] | None:
        return self._refs.get(name)

    def proxy(self, name: str, kind: type[P]) -> P:
        """The current actor's proxy, or `Unavailable` while it is down or restarting.

        `kind` only tells mypy which typed proxy the caller expects.
        """
        ref = self._refs.get(name)
        if ref is None or not ref.is_alive():
            raise Unavailable(f"{name} is restarting")
        # Building a proxy introspects the actor (tens of µs): keep one per ref.
        proxy = self._proxies.get(name)
        if proxy is None or proxy.actor_ref is not ref:
            try:
                proxy = ref.proxy()
            except pykka.ActorDeadError:
                raise Unavailable(f"{name} is restarting") from None
            self._proxies[name] = proxy
        return cast(P, proxy)

    def tell(self, name: str, message: Any) -> bool:
        """Fire and forget; False when the actor is down (the message is dropped, by design)."""
        ref = self._refs.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def all_running(self) -> bool:
        """Every actor recorded as running and really alive (a crash shows before the next watch round)."""
        if not self.health:
            return False
        for name, health in self.health.items():
            ref = self._refs.get(name)
            if health.state != "running" or ref is None or not ref.is_alive():
                return False
        return True

    def down(self) -> list[str]:
        """The names of the actors not running now, sorted (for /healthz)."""
        return sorted(
            name
            for name, health in list(self.health.items())
            if health.state != "running" or (ref := self._refs.get(name)) is None or not ref.is_alive()
        )


T = TypeVar("T")


@overload
def wait(future: pykka.Future[T | Refused], timeout: float, what: str, component: str = "actor") -> T: ...
@overload
def wait(future: pykka.Future[T], timeout: float, what: str, component: str = "actor") -> T: ...
def wait(future: pykka.Future[Any], timeout: float, what: str, component: str = "actor") -> Any:
    """Wait for an actor's answer at most `timeout` seconds; a timeout or dead actor is `Unavailable`.

    A request thread must never hang on an actor: this is the one place that turns Pykka's failure
    modes into the contract's 503. `what` is for the operator's log; a client sees only `component`
    (storage, wallet or actor: docs/PROTOCOL.md §4).
    """
    try:
        answer = future.get(timeout=timeout)
    except pykka.Timeout:
        raise Unavailable(f"{what} did not answer in time", component=component) from None
    except pykka.ActorDeadError:
        raise Unavailable(f"{what} is restarting", component=component) from None
    if isinstance(answer, Refused):  # an expected error, handed back as a value (actors/refusal.py)
        raise answer.error
    return answer
