"""The internal API's bearer token: from INTERNAL_API_TOKEN, or generated once beside the database.

The generated file appears whole or not at all: the token is written and fsynced to a private
temporary file, which is then hard-linked to its name (exclusive, like O_EXCL: two starts cannot
race to two tokens). An empty file can only be left by an older version that crashed between
creating and writing it; it holds no secret, so it is replaced the same way, with a warning.

Reading it (here and in `token` commands) never follows a symbolic link (O_NOFOLLOW: whoever can
write the folder could otherwise point it at any file), and refuses a file that the group or others
can read, saying how to fix it, instead of using a token that may have leaked. Only its path is ever
logged.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from pathlib import Path

from anon_ticket.config import Config, Secret
from anon_ticket.errors import ConfigError
from anon_ticket.process import durable

log = logging.getLogger(__name__)

TOKEN_FILE_NAME = "internal_api_token"  # noqa: S105 (a file name, not a secret)
MIN_TOKEN_CHARS = 16
MAX_FILE_BYTES = 4096


def _unusable(path: Path, problem: str) -> ConfigError:
    """The token file cannot be used as it is; the message says why and what to do."""
    return ConfigError([f"{path}: {problem}"])


def token_path(config: Config) -> Path:
    return config.database_url.beside(TOKEN_FILE_NAME)


def read_token_file(path: Path) -> str:
    """The token in `path`, read safely; "" for an empty file. `FileNotFoundError` if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _unusable(
                path, "is a symbolic link; it is never followed: put the token file itself there"
            ) from None
        if exc.errno == errno.ENOENT:
            raise
        raise _unusable(path, f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _unusable(path, "is not a regular file")
        if info.st_mode & 0o077:
            raise _unusable(
                path,
                f"can be read by others (mode {stat.S_IMODE(info.st_mode):04o}); the token may have "
                f"leaked: run `chmod 600 {path}` and consider a new token (delete the file and restart)",
            )
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise _unusable(path, "is too large to be a token file")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _unusable(path, "does not hold an ASCII token") from None


def load_or_create(config: Config) -> Secret:
    if config.internal_api_token is not None:
        return config.internal_api_token
    path = token_path(config)
    try:
        value = read_token_file(path)
    except FileNotFoundError:
        if _create(path):
            log.info("internal API token: generated %s (mode 0600)", path)
        return _reused(path)
    if not value:
        log.warning("internal API token: %s is empty (left by a crash); writing a new token", path)
        _create(path, replace_empty=True)
        return _reused(path)
    if len(value) < MIN_TOKEN_CHARS:
        raise _unusable(path, f"holds a token shorter than {MIN_TOKEN_CHARS} characters")
    log.info("internal API token: reusing %s", path)
    return Secret(value)


def _reused(path: Path) -> Secret:
    value = read_token_file(path)
    if len(value) < MIN_TOKEN_CHARS:
        raise _unusable(path, f"holds a token shorter than {MIN_TOKEN_CHARS} characters")
    return Secret(value)


def _create(path: Path, *, replace_empty: bool = False) -> bool:
    """Write a new token to `path` whole; False if another process created it first."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace_empty:
            # Under the daemon lock; the empty file held nothing, and rename replaces it atomically.
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        durable.sync_directory(path.parent)
