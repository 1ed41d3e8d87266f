"""The buyer's file of private tokens (docs/PROTOCOL.md §12): one base64url Token per line, mode 0600.

Each token is a bearer credential until it is spent, so the file is private and every change is
durable before the command reports it: a token is appended and fsynced before the next request, and
`take` removes the first line by writing the rest to a temporary file in the same folder, fsyncing
it and renaming it over the original (never a half-written file). `take` holds an exclusive lock on
the file while it works, and checks after locking that the name still points at the file it locked,
so two `take`s running at once never hand out the same token.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import IO

from anon_ticket.client.errors import UsageError
from anon_ticket.process import durable

TOKEN_FILE_MODE = 0o600
MAX_TOKEN_FILE_BYTES = 64 * 1024 * 1024  # about 130,000 tokens: anything larger is the wrong file


class NoTokenLeft(UsageError):
    """`take` found no unused token in the file."""

    code = "no_token_left"


def _check_private(path: Path, fd: int) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"{path} can be read by others; `chmod 600 {path}` first (its tokens may have leaked)"
        )


def append_token(path: Path, encoded: str) -> None:
    """One token on its own line at the end of `path`, on disk before returning.

    The file is created with mode 0600 if missing, refused if others can read it or if it is a
    symbolic link. Each append takes the same lock as `take` and re-opens a file that a `take`
    replaced meanwhile, so a token is never appended to a file that is no longer there.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    while True:
        try:
            fd = os.open(path, flags, TOKEN_FILE_MODE)
        except OSError as exc:
            raise UsageError(f"cannot open {path} for appending: {exc.strerror}") from exc
        with os.fdopen(fd, "a", encoding="ascii") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if not _still_named(path, handle):
                continue
            _check_private(path, handle.fileno())
            handle.write(encoded + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        durable.sync_directory(path.parent)
        return


def _still_named(path: Path, handle: IO[str]) -> bool:
    """Whether `path` still names the file `handle` locked (a `take` may have replaced it)."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def take_first(path: Path) -> str:
    """Remove and return the first token of `path`; `NoTokenLeft` when it has none."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise UsageError(f"{path} does not exist") from None
        except OSError as exc:
            raise UsageError(f"cannot open {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "r+", encoding="ascii") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if not _still_named(path, handle):
                continue  # another take replaced the file while we waited: lock the new one
            _check_private(path, handle.fileno())
            return _take_locked(path, handle)


def _take_locked(path: Path, handle: IO[str]) -> str:
    try:
        text = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a token file (not ASCII)") from None
    if len(text) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(f"{path} is too large to be a token file")
    lines = [line.strip() for line in text.splitlines()]
    tokens = [line for line in lines if line]
    if not tokens:
        raise NoTokenLeft(f"{path} has no unused token left; fetch more with `client tokens --count N`")
    first, rest = tokens[0], tokens[1:]
    temporary = path.with_name(f".{path.name}.take-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, TOKEN_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            os.fchmod(out.fileno(), TOKEN_FILE_MODE)
            out.write("".join(token + "\n" for token in rest))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    durable.sync_directory(path.parent)
    return first
