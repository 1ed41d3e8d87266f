"""The panel's session storage: CherryPy's RAM sessions, bounded, holding only signed-in browsers.

CherryPy's `RamSession` stores a session for every request that looks at it, signed in or not, and
cleans up from a background thread on the global engine. Here a session is stored only once it holds
something (a sign-in), the number kept is capped (the oldest go first), and expired ones are dropped
whenever one is saved, so no thread is needed (`clean_freq` 0). Memory stays bounded whatever
arrives; a restart signs everybody out, which is fine for a panel with one kind of user.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from cherrypy.lib import sessions

MAX_SESSIONS = 1000


class PanelSession(sessions.RamSession):
    cache: ClassVar[dict[str, Any]] = {}  # type: ignore[misc]  # own store, not RamSession's
    locks: ClassVar[dict[str, Any]] = {}  # type: ignore[misc]
    max_sessions: ClassVar[int] = MAX_SESSIONS
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def _save(self, expiration_time: Any) -> None:
        if not self._data:
            self._delete()  # nothing to keep: an anonymous visit, or a sign-out
            return
        with self._guard:
            self.cache[self.id or ""] = (self._data, expiration_time)
            if len(self.cache) > self.max_sessions:
                self._shrink()

    def _shrink(self) -> None:
        now = self.now()
        for key, (_, expires) in list(self.cache.items()):
            if expires <= now:
                self.cache.pop(key, None)
                self.locks.pop(key, None)
        while len(self.cache) > self.max_sessions:
            oldest = min(self.cache, key=lambda key: self.cache[key][1])
            self.cache.pop(oldest, None)
            self.locks.pop(oldest, None)

    def _load(self) -> Any:
        found = self.cache.get(self.id or "")
        if found is not None and found[1] < self.now():
            self.cache.pop(self.id or "", None)
            return None
        return found

    def release_lock(self) -> None:
        super().release_lock()
        if self.id not in self.cache:
            self.locks.pop(self.id or "", None)  # RamSession would keep a lock per id ever seen

    @classmethod
    def stored(cls, session_id: str | None) -> bool:
        return bool(session_id) and session_id in cls.cache
