"""The daemon with claims and revocations committed under `synchronous=OFF`: a deliberately broken copy.

`python -m tests.support.unsynced_claims` patches the SQLite store so that the transactions it makes
durable (claims, revocations: `synchronous=FULL`) are not synced at all, then runs the daemon as
`python -m anon_ticket` would. The power-cut test runs it to show that its harness does see
acknowledged claims vanish when they are not on disk (tests/test_power_loss.py); nothing else may.
"""

from __future__ import annotations

import contextlib
import runpy
from collections.abc import Iterator
from typing import Any

from anon_ticket.storage.sqlite import SqliteStore

_synced_transaction = SqliteStore._transaction


@contextlib.contextmanager
def _unsynced_transaction(self: SqliteStore, *, durable: bool = False) -> Iterator[Any]:
    if not durable:
        with _synced_transaction(self) as conn:
            yield conn
        return
    self._conn.execute("PRAGMA synchronous=OFF")
    try:
        with _synced_transaction(self) as conn:
            yield conn
    finally:
        self._conn.execute("PRAGMA synchronous=NORMAL")


def unsync_durable_transactions() -> None:
    """From now on, in this process, the store's durable transactions are not synced."""
    SqliteStore._transaction = _unsynced_transaction  # type: ignore[method-assign]


if __name__ == "__main__":
    unsync_durable_transactions()
    runpy.run_module("anon_ticket", run_name="__main__", alter_sys=True)
