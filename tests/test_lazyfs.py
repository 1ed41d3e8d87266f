"""The power-loss file system forgets exactly what a machine losing power forgets (tests/support/lazyfs.py).

Canaries first: if the file system kept unsynced writes, every power-cut test of the daemon would
pass for nothing. Then what its docstring promises about metadata, and SQLite in WAL mode on it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lazyfs import PAGE_SIZE, LazyMount, require_fuse


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[LazyMount]:
    require_fuse()
    with LazyMount(tmp_path / "disk", tmp_path / "mnt") as mount:
        yield mount


def write_file(path: Path, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def synced_file(path: Path, data: bytes) -> None:
    """A file whose data and name are both durable."""
    write_file(path, data, sync=True)
    sync_dir(path.parent)


def test_a_write_without_fsync_is_gone_after_a_cut_and_a_synced_one_is_there(lazy: LazyMount) -> None:
    mnt = lazy.mountpoint
    synced_file(mnt / "synced", b"kept")
    synced_file(mnt / "unsynced", b"old")
    write_file(mnt / "unsynced", b"new data that nobody synced", sync=False)
    assert (mnt / "unsynced").read_bytes() == b"new data that nobody synced"
    assert (lazy.backing / "unsynced").read_bytes() == b"old", "the write reached the disk without fsync"
    figures = lazy.cut()
    assert figures["pages_lost"] == 1
    lazy.remount()
    assert (mnt / "synced").read_bytes() == b"kept"
    assert (mnt / "unsynced").read_bytes() == b"old"


def test_reads_see_unsynced_writes_before_the_cut_through_another_descriptor(lazy: LazyMount) -> None:
    path = lazy.mountpoint / "f"
    synced_file(path, b"a" * (3 * PAGE_SIZE))
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"B" * 10, PAGE_SIZE - 5)  # across a page boundary
        os.pwrite(fd, b"tail", 5 * PAGE_SIZE)  # a hole, then an extension
    finally:
        os.close(fd)
    data = path.read_bytes()
    expected = bytearray(b"a" * (3 * PAGE_SIZE) + bytes(2 * PAGE_SIZE) + b"tail")
    expected[PAGE_SIZE - 5 : PAGE_SIZE + 5] = b"B" * 10
    assert data == bytes(expected)
    assert path.stat().st_size == 5 * PAGE_SIZE + 4
    lazy.cut()
    lazy.remount()
    assert path.read_bytes() == b"a" * (3 * PAGE_SIZE)


def test_everything_fails_after_the_cut_so_nobody_writes_after_it(lazy: LazyMount) -> None:
    path = lazy.mountpoint / "f"
    synced_file(path, b"before")
    fd = os.open(path, os.O_RDWR)
    try:
        lazy.cut()
        with pytest.raises(OSError) as raised:
            os.pwrite(fd, b"after", 0)
            os.fsync(fd)
        assert raised.value.errno == 5  # EIO
    finally:
        os.close(fd)
    lazy.remount()
    assert path.read_bytes() == b"before"


def test_a_torn_page_reaches_the_disk_as_a_prefix(lazy: LazyMount) -> None:
    path = lazy.mountpoint / "f"
    synced_file(path, b"A" * PAGE_SIZE)
    write_file(path, b"B" * PAGE_SIZE, sync=False)
    figures = lazy.cut(torn=True, seed=7)
    lazy.remount()
    data = path.read_bytes()
    torn = figures["torn_bytes"]
    assert 0 < torn < PAGE_SIZE
    assert data == b"B" * torn + b"A" * (PAGE_SIZE - torn)


def test_written_back_pages_survive_whole_and_the_others_are_lost(lazy: LazyMount) -> None:
    path = lazy.mountpoint / "f"
    pages = 64
    synced_file(path, b"A" * (pages * PAGE_SIZE))
    write_file(path, b"B" * (pages * PAGE_SIZE), sync=False)
    figures = lazy.cut(writeback=0.5, seed=3)
    lazy.remount()
    data = path.read_bytes()
    chunks = [data[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] for i in range(pages)]
    assert set(chunks) == {b"A" * PAGE_SIZE, b"B" * PAGE_SIZE}
    assert chunks.count(b"B" * PAGE_SIZE) == figures["pages_written_back"]
    assert 0 < figures["pages_written_back"] < pages


def test_a_truncate_counts_as_data_undone_unless_the_file_is_synced(lazy: LazyMount) -> None:
    mnt = lazy.mountpoint
    synced_file(mnt / "lost", b"x" * 10_000)
    synced_file(mnt / "kept", b"y" * 10_000)
    os.truncate(mnt / "lost", 100)
    with open(mnt / "kept", "r+b") as handle:
        handle.truncate(100)
        handle.seek(200)
        handle.write(b"z")  # after a truncate the gap reads as zeros, not as the old bytes
        handle.flush()
        os.fsync(handle.fileno())
    assert (mnt / "lost").stat().st_size == 100
    lazy.cut()
    lazy.remount()
    assert (mnt / "lost").read_bytes() == b"x" * 10_000
    assert (mnt / "kept").read_bytes() == b"y" * 100 + bytes(100) + b"z"


def test_a_new_file_needs_its_directory_synced(lazy: LazyMount) -> None:
    """fsync of the file alone makes its data durable, not its name (POSIX; stricter than ext4)."""
    mnt = lazy.mountpoint
    write_file(mnt / "named", b"1", sync=True)
    sync_dir(mnt)
    write_file(mnt / "unnamed", b"2", sync=True)
    assert sorted(os.listdir(mnt)) == ["named", "unnamed"]
    figures = lazy.cut()
    assert figures["namespace_undone"] == 1
    lazy.remount()
    assert sorted(os.listdir(mnt)) == ["named"]


def test_unlink_and_rename_are_undone_until_the_directory_is_synced(lazy: LazyMount) -> None:
    mnt = lazy.mountpoint
    for name in ("gone", "moved", "target", "committed"):
        synced_file(mnt / name, name.encode())
    os.unlink(mnt / "committed")
    sync_dir(mnt)
    os.unlink(mnt / "gone")
    os.replace(mnt / "moved", mnt / "target")
    assert sorted(os.listdir(mnt)) == ["target"]
    assert (mnt / "target").read_bytes() == b"moved"
    assert len(list((lazy.backing.parent / "disk.trash").iterdir())) == 2  # kept until the commit
    lazy.cut()
    lazy.remount()
    assert sorted(os.listdir(mnt)) == ["gone", "moved", "target"]
    assert [(mnt / n).read_bytes() for n in ("gone", "moved", "target")] == [b"gone", b"moved", b"target"]


def test_write_rename_sync_directory_is_durable(lazy: LazyMount) -> None:
    """The recipe the daemon's token file uses: write, fsync, link or rename, fsync the directory."""
    mnt = lazy.mountpoint
    write_file(mnt / ".tmp", b"secret", sync=True)
    os.link(mnt / ".tmp", mnt / "token")
    os.unlink(mnt / ".tmp")
    sync_dir(mnt)
    lazy.cut()
    lazy.remount()
    assert sorted(os.listdir(mnt)) == ["token"]
    assert (mnt / "token").read_bytes() == b"secret"


def test_sqlite_wal_works_on_it_and_keeps_only_synced_commits(lazy: LazyMount) -> None:
    """open, write from two connections (shared memory), checkpoint, integrity; then a cut: the
    FULL commits stay, the OFF commit after them is lost (so the file system really forgets)."""
    path = lazy.mountpoint / "x.db"
    conn = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, blob BLOB)")
        for n in range(300):
            conn.execute("INSERT INTO t VALUES (?, ?)", (n, os.urandom(200)))
        assert other.execute("SELECT count(*) FROM t").fetchone() == (300,)
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        conn.execute("INSERT INTO t VALUES (300, x'00')")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("INSERT INTO t VALUES (301, x'01')")
        assert other.execute("SELECT count(*) FROM t").fetchone() == (302,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        lazy.cut(torn=True, seed=11)
    finally:
        conn.close()
        other.close()
    lazy.remount()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT max(n), count(*) FROM t").fetchone() == (300, 301)
    finally:
        conn.close()
