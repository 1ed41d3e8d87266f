"""Count the transactions committed to an SQLite database by reading its write-ahead log.

Every committed transaction ends with one *commit frame* in the `-wal` file: a frame whose header
carries the database size after the commit (non-zero), with the salts of the current WAL header
(frames of an earlier WAL generation carry other salts and do not count). Python's sqlite3 has no
commit hook; this reads the real file instead, so a test can tell one group commit from N commits
without mocking anything. Hold a read transaction open across the measurement (`snapshot`) so that
no checkpoint restarts the WAL under it.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anon_ticket.storage.sqlite import connect

WAL_HEADER = 32
FRAME_HEADER = 24


def commits(database: Path) -> int:
    """The number of commit frames in the current generation of `database`'s WAL."""
    wal = database.with_name(database.name + "-wal").read_bytes()
    if len(wal) < WAL_HEADER:
        return 0
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = wal[16:24]
    count = 0
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        _page, size_after_commit = struct.unpack(">II", wal[offset : offset + 8])
        if wal[offset + 8 : offset + 16] != salts:
            break  # the rest is left over from an earlier generation
        if size_after_commit:
            count += 1
        offset += FRAME_HEADER + page_size
    return count


@contextlib.contextmanager
def snapshot(database: Path) -> Iterator[Any]:
    """A read transaction held open: the WAL keeps growing and is not restarted meanwhile."""
    conn = connect(database)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield conn
    finally:
        conn.execute("COMMIT")
        conn.close()
