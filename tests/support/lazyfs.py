"""A file system that forgets what was not synced: power cuts for tests, in the style of Jepsen's LazyFS.

`LazyFS` is a FUSE file system (mfusepy, libfuse 3) over a real *backing* folder. What a program
writes to a file stays in a per-file page cache in this process's memory (4 KiB pages holding the
file's new content, plus the file's new size) and is served from there to every read, exactly as
the kernel's page cache would serve it. Only `fsync`/`fdatasync` of that file writes its pages and
its size to the backing file (and fsyncs it). `power_cut()` throws away everything that was not
synced, as a machine losing power does; optionally each file's most recently written dirty page is
*torn* (a random prefix of its new bytes reaches the backing file, the rest keeps the old bytes),
and a random share of the other dirty pages (and of the oldest uncommitted namespace changes, in
order, as a journal commits them) may have been "written back" before the cut.

**Metadata.** A namespace change — create, mkdir, unlink, rmdir, rename, link, symlink — is made
in the backing folder at once (so every process sees it), but is *logged* with what undoes it, and
the log is committed only by an `fsync` of a directory (any directory: ext4 in `data=ordered` mode
commits every pending metadata change in one journal transaction, and an fsync of a directory
forces that commit). A power cut undoes the uncommitted changes in reverse order: a created file
vanishes, an unlinked file (kept in a trash folder beside the backing folder until the commit) comes
back, a rename is reverted and the file it replaced restored. This is *stricter* than ext4, where
an `fsync` of a new file usually commits its directory entry too, and exactly what POSIX promises:
a new name survives a crash only once its directory is synced. So a program that forgets the
directory fsync loses files here.

A file's size follows its data: a `truncate`/`ftruncate` (or an extension by a write) changes the
cached size only, and reaches the backing file at the file's next `fsync`; a power cut before it
leaves the old size. Again stricter than ext4 (whose journal may commit a truncate within 5 s
without any fsync), and allowed by POSIX. SQLite's WAL protocol does not rely on it: a WAL that is
reset is rewritten from its header, with new salts, and every frame is checked against them.

`chmod`, `chown` and `utimens` go to the backing file at once and are never undone: weaker than a
disk, where they are metadata like the rest. Neither SQLite's recovery nor the daemon reads
modes or times to decide what is committed (a token file's mode is given at its creation, which
*is* logged), so nothing tested here depends on it.

Locks are left to the kernel (no `lock` operation is registered, so FUSE keeps POSIX locks in the
kernel, as for a local file system): SQLite's `fcntl` locks, and the daemon's `flock`, work between
processes as they do on ext4, and vanish with the processes at a cut. Shared memory (SQLite's
`-shm` file, mapped with `mmap`) works because files are served through the kernel's page cache
(no `direct_io`); it is unmounted at every cut, so no page the kernel kept survives one.

Run it as a child process (`python -m tests.support.lazyfs BACKING MOUNTPOINT`): it prints
`mounted` when the mount is ready and reads commands on standard input (`cut TORN WRITEBACK SEED`,
answered with `cut …` figures; `stats`). End of input unmounts it. `LazyMount` drives that child
from a test: `cut()` (the power cut, then the file system refuses every operation with EIO, so
nobody writes after it), `remount()` (a fresh process over what the backing folder holds).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import services

PAGE_SIZE = 4096
MOUNT_TIMEOUT_SECS = 20.0


# -- one file's unsynced state --------------------------------------------------------------------


@dataclass
class CachedFile:
    """What a program sees of one file (by backing inode) beyond what reached the backing file.

    `pages` hold the full new content of each dirty page; `size` is the file's size as programs see
    it; `low_water` is the smallest size since the last sync (backing bytes at or beyond it were cut
    off by a truncate and read as zeros until they are written again).
    """

    fd: int  # an O_RDWR descriptor on the backing file (held: the inode cannot be reused meanwhile)
    size: int
    low_water: int
    pages: dict[int, bytearray] = field(default_factory=dict)
    last_page: int | None = None  # the most recently written dirty page (the one a cut may tear)
    handles: int = 0

    @property
    def dirty(self) -> bool:
        return bool(self.pages) or self.size != self.low_water or self.size != os.fstat(self.fd).st_size

    def _backing(self, index: int) -> bytearray:
        """Page `index` as the backing file holds it, with what a truncate cut off read as zeros."""
        start = index * PAGE_SIZE
        raw = bytearray(os.pread(self.fd, PAGE_SIZE, start)) if start < self.low_water else bytearray()
        keep = max(0, min(len(raw), self.low_water - start))
        del raw[keep:]
        raw.extend(bytes(PAGE_SIZE - len(raw)))
        return raw

    def read(self, size: int, offset: int) -> bytes:
        end = min(offset + size, self.size)
        out = bytearray()
        position = offset
        while position < end:
            index, within = divmod(position, PAGE_SIZE)
            page = self.pages.get(index)
            if page is None:
                page = self._backing(index)
            take = min(PAGE_SIZE - within, end - position)
            out += page[within : within + take]
            position += take
        return bytes(out)

    def write(self, data: bytes, offset: int) -> None:
        position = offset
        view = memoryview(data)
        while view:
            index, within = divmod(position, PAGE_SIZE)
            page = self.pages.get(index)
            if page is None:
                page = self.pages[index] = self._backing(index)
            take = min(PAGE_SIZE - within, len(view))
            page[within : within + take] = view[:take]
            view = view[take:]
            position += take
            self.last_page = index
        self.size = max(self.size, offset + len(data))

    def truncate(self, length: int) -> None:
        if length < self.size:
            self.low_water = min(self.low_water, length)
            cut_page, within = divmod(length, PAGE_SIZE)
            for index in [i for i in self.pages if i > cut_page or (i == cut_page and within == 0)]:
                del self.pages[index]
            if within and cut_page in self.pages:
                self.pages[cut_page][within:] = bytes(PAGE_SIZE - within)
            if self.last_page is not None and self.last_page not in self.pages:
                self.last_page = None
        self.size = length

    def sync(self) -> None:
        """fsync: the cut-off region, the dirty pages and the size reach the backing file, durably."""
        if self.low_water < os.fstat(self.fd).st_size:
            os.ftruncate(self.fd, self.low_water)
        for index, page in sorted(self.pages.items()):
            start = index * PAGE_SIZE
            os.pwrite(self.fd, bytes(page[: max(0, min(PAGE_SIZE, self.size - start))]), start)
        os.ftruncate(self.fd, self.size)
        os.fsync(self.fd)
        self.pages.clear()
        self.last_page = None
        self.low_water = self.size

    def lose(self, rng: random.Random, *, torn: bool, writeback: float) -> tuple[int, int, int]:
        """The power cut for this file: (pages lost, pages written back, bytes of the torn page)."""
        torn_bytes = 0
        written = 0
        for index, page in sorted(self.pages.items()):
            start = index * PAGE_SIZE
            valid = max(0, min(PAGE_SIZE, self.size - start))
            if index == self.last_page and torn and valid > 1:
                torn_bytes = rng.randrange(1, valid)
                os.pwrite(self.fd, bytes(page[:torn_bytes]), start)
            elif writeback and rng.random() < writeback and valid:
                os.pwrite(self.fd, bytes(page[:valid]), start)
                written += 1
        lost = len(self.pages) - written
        self.pages.clear()
        return lost, written, torn_bytes


# -- the file system ------------------------------------------------------------------------------


def _operations_base() -> Any:
    # Imported here: the test process (LazyMount, require_fuse) must load without libfuse.
    import mfusepy  # noqa: PLC0415

    return mfusepy.Operations


class _Frozen(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "the power is off")


def make_lazyfs(backing: Path, trash: Path) -> Any:
    """A `LazyFS` instance (the class derives from mfusepy.Operations, imported only here)."""
    base = _operations_base()

    class LazyFS(base):  # type: ignore[misc,valid-type]
        use_ns = True

        def __init__(self) -> None:
            self.backing = backing
            self.trash = trash
            self._mutex = threading.RLock()
            self.files: dict[int, CachedFile] = {}  # by backing inode
            self.handles: dict[int, int] = {}  # FUSE file handle -> backing inode
            self.next_handle = 1
            self.namespace_log: list[tuple[Any, ...]] = []  # uncommitted changes, oldest first
            self.trash_serial = 0
            self.frozen = False
            self.syncs = 0

        # -- plumbing ---------------------------------------------------------------------------

        def _real(self, path: str) -> str:
            return str(self.backing) + path

        @contextlib.contextmanager
        def _op(self) -> Iterator[None]:
            with self._mutex:
                if self.frozen:
                    raise _Frozen()
                yield

        def _file(self, inode: int, real: str) -> CachedFile:
            cached = self.files.get(inode)
            if cached is None:
                fd = os.open(real, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
                size = os.fstat(fd).st_size
                cached = self.files[inode] = CachedFile(fd=fd, size=size, low_water=size)
            return cached

        def _forget_if_idle(self, inode: int) -> None:
            cached = self.files.get(inode)
            idle = cached is not None and cached.handles == 0
            if idle and (not cached.dirty or os.fstat(cached.fd).st_nlink == 0):
                os.close(cached.fd)
                del self.files[inode]

        def _to_trash(self, real: str) -> str:
            self.trash_serial += 1
            kept = str(self.trash / f"{self.trash_serial}")
            os.rename(real, kept)
            return kept

        def _handle(self, inode: int) -> int:
            handle = self.next_handle
            self.next_handle += 1
            self.handles[handle] = inode
            self.files[inode].handles += 1
            return handle

        # -- attributes and directories ---------------------------------------------------------

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            with self._op():
                st = os.lstat(self._real(path))
                attrs = {
                    key: getattr(st, key)
                    for key in (
                        "st_mode",
                        "st_nlink",
                        "st_uid",
                        "st_gid",
                        "st_size",
                        "st_ino",
                        "st_atime_ns",
                        "st_mtime_ns",
                        "st_ctime_ns",
                        "st_blocks",
                    )
                }
                for key in ("atime", "mtime", "ctime"):
                    attrs[f"st_{key}"] = attrs.pop(f"st_{key}_ns")
                cached = self.files.get(st.st_ino)
                if cached is not None:
                    attrs["st_size"] = cached.size
                    attrs["st_blocks"] = (cached.size + 511) // 512
                return attrs

        def readdir(self, path: str, fh: int) -> list[str]:
            with self._op():
                return [".", "..", *os.listdir(self._real(path))]

        def access(self, path: str, amode: int) -> int:
            with self._op():
                if not os.access(self._real(path), amode):
                    raise OSError(errno.EACCES, "access")
                return 0

        def statfs(self, path: str) -> dict[str, int]:
            with self._op():
                st = os.statvfs(self._real(path))
                return {
                    key: getattr(st, key)
                    for key in (
                        "f_bavail",
                        "f_bfree",
                        "f_blocks",
                        "f_bsize",
                        "f_favail",
                        "f_ffree",
                        "f_files",
                        "f_flag",
                        "f_frsize",
                        "f_namemax",
                    )
                }

        def chmod(self, path: str, mode: int) -> int:
            with self._op():
                os.chmod(self._real(path), mode)
                return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            with self._op():
                os.lchown(self._real(path), uid, gid)
                return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            with self._op():
                if times is None:
                    os.utime(self._real(path), follow_symlinks=False)
                else:
                    os.utime(self._real(path), ns=times, follow_symlinks=False)
                return 0

        def readlink(self, path: str) -> str:
            with self._op():
                return os.readlink(self._real(path))

        # -- namespace changes (logged until a directory fsync) ---------------------------------

        def mkdir(self, path: str, mode: int) -> int:
            with self._op():
                os.mkdir(self._real(path), mode)
                self.namespace_log.append(("created", path))
                return 0

        def symlink(self, target: str, source: str) -> int:
            with self._op():
                os.symlink(source, self._real(target))
                self.namespace_log.append(("created", target))
                return 0

        def link(self, target: str, source: str) -> int:
            with self._op():
                os.link(self._real(source), self._real(target))
                self.namespace_log.append(("created", target))
                return 0

        def unlink(self, path: str) -> int:
            with self._op():
                real = self._real(path)
                inode = os.lstat(real).st_ino
                self.namespace_log.append(("removed", path, self._to_trash(real)))
                self._forget_if_idle(inode)
                return 0

        def rmdir(self, path: str) -> int:
            with self._op():
                real = self._real(path)
                if os.listdir(real):
                    raise OSError(errno.ENOTEMPTY, "rmdir")
                self.namespace_log.append(("removed", path, self._to_trash(real)))
                return 0

        def rename(self, old: str, new: str) -> int:
            with self._op():
                real_old, real_new = self._real(old), self._real(new)
                os.lstat(real_old)
                replaced = None
                if os.path.lexists(real_new):
                    if os.path.isdir(real_new) and not os.path.islink(real_new) and os.listdir(real_new):
                        raise OSError(errno.ENOTEMPTY, "rename")
                    replaced = self._to_trash(real_new)
                os.rename(real_old, real_new)
                self.namespace_log.append(("renamed", old, new, replaced))
                return 0

        def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
            with self._op():
                self._commit_namespace()
                return 0

        def _commit_namespace(self) -> None:
            self._discard_trash()
            for inode in list(self.files):
                self._forget_if_idle(inode)

        def _discard_trash(self) -> None:
            """The committed changes stay: what they removed is gone for good."""
            for change in self.namespace_log:
                kept = change[2] if change[0] == "removed" else change[3] if change[0] == "renamed" else None
                if kept is not None:
                    if os.path.isdir(kept) and not os.path.islink(kept):
                        shutil.rmtree(kept)
                    else:
                        os.unlink(kept)
            self.namespace_log.clear()

        # -- files ------------------------------------------------------------------------------

        def create(self, path: str, mode: int, flags: int) -> int:
            with self._op():
                real = self._real(path)
                try:
                    fd = os.open(real, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, mode)
                except FileExistsError:
                    if flags & os.O_EXCL:
                        raise
                    return self._open(path, flags)
                os.close(fd)
                self.namespace_log.append(("created", path))
                inode = os.lstat(real).st_ino
                stale = self.files.pop(inode, None)  # cannot happen while we hold its descriptor
                assert stale is None
                self._file(inode, real)
                return self._handle(inode)

        def open(self, path: str, flags: int) -> int:
            with self._op():
                return self._open(path, flags)

        def _open(self, path: str, flags: int) -> int:
            real = self._real(path)
            inode = os.stat(real).st_ino
            cached = self._file(inode, real)
            if flags & os.O_TRUNC:
                cached.truncate(0)
            return self._handle(inode)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            with self._op():
                return self.files[self.handles[fh]].read(size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            with self._op():
                self.files[self.handles[fh]].write(data, offset)
                return len(data)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            with self._op():
                if fh is not None:
                    self.files[self.handles[fh]].truncate(length)
                    return 0
                real = self._real(path)
                inode = os.stat(real).st_ino
                self._file(inode, real).truncate(length)
                self._forget_if_idle(inode)
                return 0

        def flush(self, path: str, fh: int) -> int:
            return 0  # close(): nothing to do (and, after a cut, no error for a dead program's close)

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            with self._op():
                self.files[self.handles[fh]].sync()
                self.syncs += 1
                return 0

        def release(self, path: str, fh: int) -> int:
            with self._mutex:  # also after a cut: the kernel releases what the dead programs held
                inode = self.handles.pop(fh, None)
                if inode is not None and inode in self.files:
                    self.files[inode].handles -= 1
                    if not self.frozen:
                        self._forget_if_idle(inode)
                return 0

        # -- the power cut ----------------------------------------------------------------------

        def power_cut(self, *, torn: bool = False, writeback: float = 0.0, seed: int = 0) -> dict[str, int]:
            """Lose everything not synced, at once; afterwards every operation fails with EIO.

            `torn`: the most recently written dirty page of each file reaches disk as a random prefix.
            `writeback`: the share of other dirty pages (and of the oldest uncommitted namespace
            changes) the kernel had written before the power went.
            """
            rng = random.Random(seed)
            with self._mutex:
                self.frozen = True
                figures = {"pages_lost": 0, "pages_written_back": 0, "torn_bytes": 0}
                for cached in self.files.values():
                    lost, written, torn_bytes = cached.lose(rng, torn=torn, writeback=writeback)
                    figures["pages_lost"] += lost
                    figures["pages_written_back"] += written
                    figures["torn_bytes"] += torn_bytes
                kept = 0
                if writeback:
                    kept = sum(1 for _ in self.namespace_log if rng.random() < writeback)
                committed, undone = self.namespace_log[:kept], self.namespace_log[kept:]
                self.namespace_log = committed
                self._discard_trash()
                for change in reversed(undone):
                    self._undo(change)
                figures["namespace_undone"] = len(undone)
                figures["namespace_kept"] = kept
                for cached in self.files.values():
                    os.close(cached.fd)
                self.files.clear()
                return figures

        def _undo(self, change: tuple[Any, ...]) -> None:
            kind = change[0]
            if kind == "created":
                real = self._real(change[1])
                if os.path.isdir(real) and not os.path.islink(real):
                    shutil.rmtree(real)
                else:
                    os.unlink(real)
            elif kind == "removed":
                os.rename(change[2], self._real(change[1]))
            elif kind == "renamed":
                _, old, new, replaced = change
                os.rename(self._real(new), self._real(old))
                if replaced is not None:
                    os.rename(replaced, self._real(new))

        def stats(self) -> dict[str, int]:
            with self._mutex:
                return {
                    "files": len(self.files),
                    "dirty_pages": sum(len(c.pages) for c in self.files.values()),
                    "namespace_pending": len(self.namespace_log),
                    "syncs": self.syncs,
                }

    return LazyFS()


# -- the child process ----------------------------------------------------------------------------


def _control(fs: Any) -> None:
    """Commands on standard input, one answer line each; end of input unmounts (SIGTERM to us)."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "cut":
            torn, writeback, seed = words[1] == "1", float(words[2]), int(words[3])
            figures = fs.power_cut(torn=torn, writeback=writeback, seed=seed)
        elif words[0] == "stats":
            figures = fs.stats()
        else:
            print(f"error unknown command {words[0]}", flush=True)
            continue
        print(words[0], " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    import mfusepy  # noqa: PLC0415 (see _operations_base)

    backing, mountpoint = Path(argv[0]), Path(argv[1])
    trash = backing.with_name(backing.name + ".trash")
    trash.mkdir(exist_ok=True)
    os.umask(0)  # the kernel has applied the caller's umask to every mode we are given
    fs = make_lazyfs(backing, trash)

    def init(path: str) -> None:
        threading.Thread(target=_control, args=(fs,), name="lazyfs-control", daemon=True).start()
        print("mounted", flush=True)

    fs.init = init
    mfusepy.FUSE(
        fs,
        str(mountpoint),
        foreground=True,
        nothreads=False,
        hard_remove=True,  # an unlinked open file is unlinked, not renamed to .fuse_hidden*
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="lazyfs",
    )
    return 0


# -- the parent's side ----------------------------------------------------------------------------


def require_fuse() -> None:
    """Skip (locally) or fail (under CI=true) where FUSE cannot be mounted here."""
    services.require("FUSE", os.path.exists("/dev/fuse") and os.geteuid() == 0, "needs /dev/fuse and root")
    services.need("fusermount3", "install the Debian package fuse3 (scripts/test does)")


class LazyMount:
    """A LazyFS child process mounting `backing` at `mountpoint`, driven from a test."""

    def __init__(self, backing: Path, mountpoint: Path, log_path: Path | None = None) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.log_path = log_path or backing.with_name(backing.name + ".lazyfs.log")
        self.process: subprocess.Popen[str] | None = None
        self.cuts = 0
        backing.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)

    def mount(self) -> LazyMount:
        assert self.process is None, "already mounted"
        repo_root = Path(__file__).resolve().parents[2]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")])),
        }
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.lazyfs", str(self.backing), str(self.mountpoint)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "mounted":
            self.process.kill()
            self.process.wait()
            self.process = None
            raise AssertionError(f"lazyfs did not mount: {line!r}; see {self.log_path}")
        return self

    def _ask(self, command: str) -> dict[str, int]:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        words = self.process.stdout.readline().split()
        assert words and words[0] == command.split(maxsplit=1)[0], f"lazyfs answered {words!r} to {command!r}"
        return {key: int(value) for key, value in (word.split("=") for word in words[1:])}

    def cut(self, *, torn: bool = False, writeback: float = 0.0, seed: int = 0) -> dict[str, int]:
        """The power cut: unsynced state dropped; from now on every operation fails (EIO)."""
        self.cuts += 1
        return self._ask(f"cut {int(torn)} {writeback} {seed}")

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def unmount(self) -> None:
        """Unmount (the kernel's page cache of the mount goes with it) and end the process."""
        if self.process is None:
            return
        process, self.process = self.process, None
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()  # the child SIGTERMs itself: libfuse unmounts and returns
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if os.path.ismount(self.mountpoint):
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.mountpoint)], check=False, capture_output=True
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT_SECS
        while os.path.ismount(self.mountpoint):
            assert time.monotonic() < deadline, f"{self.mountpoint} stays mounted"
            time.sleep(0.02)
        if process.stdout is not None:
            process.stdout.close()

    def remount(self) -> LazyMount:
        """After a cut: a new LazyFS over what the backing folder holds (the machine powered up)."""
        self.unmount()
        return self.mount()

    def __enter__(self) -> LazyMount:
        if self.process is None:
            self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
