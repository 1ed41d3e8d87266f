"""Making a newly created file's directory entry durable, for the files we create once (tokens, PIDs)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """fsync the directory so a new entry in it survives a crash; best effort (not every filesystem
    allows it, and the file itself is already synced by its writer)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
