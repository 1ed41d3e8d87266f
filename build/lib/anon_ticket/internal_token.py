"""The internal API's bearer token: from INTERNAL_API_TOKEN, or generated once beside the database.

The generated file is created exclusively with mode 0600, so two starts cannot race to two tokens
and nobody else on the machine can read it. Only its path is ever logged.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from anon_ticket.config import Config, Secret
from anon_ticket.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_FILE_NAME = "internal_api_token"  # noqa: S105 (a file name, not a secret)


def token_path(config: Config) -> Path:
    return config.database_url.beside(TOKEN_FILE_NAME)


def load_or_create(config: Config) -> Secret:
    if config.internal_api_token is not None:
        return config.internal_api_token
    path = token_path(config)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 16:
            raise ConfigError([f"{path}: the stored internal API token is empty or too short"]) from None
        log.info("internal API token: reusing %s", path)
        return Secret(value)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    log.info("internal API token: generated %s (mode 0600)", path)
    return Secret(value)
