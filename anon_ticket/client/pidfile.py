"""Keeping the PID: the buyer's only proof of payment, and a bearer secret until it is redeemed.

Written once, exclusively, readable by the owner only, and flushed to disk before the address to pay
is shown: if the file cannot be written, no one should pay. Read from a file or standard input only,
never from the command line, where `ps` and shell history would show it. Error messages never echo
the text that was read, since it may be a PID with one typo.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TextIO

from anon_ticket.client.errors import UsageError
from anon_ticket.core.domain import PaymentId
from anon_ticket.errors import InvalidPid
from anon_ticket.process import durable

PID_FILE_MODE = 0o600
MAX_PID_TEXT = 4096  # a PID file holds 65 characters; anything far bigger is the wrong file


def write_new_pid_file(path: Path, pid: PaymentId) -> None:
    """Create `path` (never overwrite: an existing file may hold an unredeemed PID) and make it durable."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, PID_FILE_MODE)
    except FileExistsError as exc:
        raise UsageError(
            f"{path} already exists; refusing to overwrite it (it may hold an unredeemed PID)"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), PID_FILE_MODE)  # the umask only removes bits; make it exact
            handle.write(pid.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    durable.sync_directory(path.parent)


def read_pid_file(path: Path) -> PaymentId:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PID_TEXT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read PID file {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} does not hold a PID (it is not text)") from exc
    return parse_pid_text(text, f"{path}")


def read_pid_stream(stream: TextIO) -> PaymentId:
    try:
        text = stream.read(MAX_PID_TEXT + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("cannot read a PID from standard input") from exc
    return parse_pid_text(text, "standard input")


def parse_pid_text(text: str, source: str) -> PaymentId:
    """One PID, surrounding whitespace (the file's newline) ignored; the text itself is never echoed."""
    if len(text) > MAX_PID_TEXT:
        raise UsageError(f"{source} is far too long to hold a PID")
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{source} is empty; expected a PID (64 hex digits)")
    try:
        return PaymentId.parse(stripped)
    except InvalidPid as exc:
        raise UsageError(f"{source} does not hold a PID: expected exactly 64 hex digits") from exc


def readable_by_others(path: Path) -> bool:
    """True when group or others may read the file, so the command line can warn (as ssh does)."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False
