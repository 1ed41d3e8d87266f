"""The daemon's secret files: the internal API token file and the Privacy Pass key file.

Only their metadata is read (`lstat`): never the secret itself. A file the group or others can read
may have leaked, so the fix is a new secret, not only a `chmod`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from anon_ticket.commands.check.report import Finding, ok, problem
from anon_ticket.config import Config
from anon_ticket.process.internal_token import token_path


def check(config: Config) -> list[Finding]:
    findings = []
    if config.internal_api_token is not None:
        findings.append(ok("token file", "INTERNAL_API_TOKEN is set: no token file is used"))
    else:
        findings.append(
            _secret_file(
                "token file",
                token_path(config),
                "the daemon generates it (mode 0600) at its first start",
                "remove it and restart the daemon for a new token (the old one may have been read), "
                "then keep it at mode 0600",
            )
        )
    if config.privacy_pass:
        findings.append(
            _secret_file(
                "Privacy Pass key",
                config.privacy_pass_key_path,
                "the daemon generates it (mode 0600) at its first start",
                "others may have read the key: replace it with a new one, and keep it at mode 0600",
            )
        )
    return findings


def _secret_file(subject: str, path: Path, absent: str, leaked_fix: str) -> Finding:  # noqa: PLR0911 (a verdict each)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return ok(subject, f"{path} does not exist yet: {absent}")
    except OSError as exc:
        return problem(
            subject, f"{path} cannot be examined: {exc.strerror}", "check the folder's permissions"
        )
    if stat.S_ISLNK(info.st_mode):
        return problem(
            subject,
            f"{path} is a symbolic link, which the daemon never follows",
            f"put the file itself at {path}",
        )
    if not stat.S_ISREG(info.st_mode):
        return problem(subject, f"{path} is not a regular file", "remove it; the daemon makes the file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return problem(
            subject,
            f"{path} is readable or writable by others (mode {mode:04o})",
            f"chmod 600 {path}; {leaked_fix}",
        )
    if info.st_uid != os.geteuid():
        return problem(
            subject,
            f"{path} belongs to uid {info.st_uid}, not to this user ({os.geteuid()})",
            f"run check as the daemon's user, or chown <daemon user> {path}",
        )
    return ok(subject, f"{path} (mode {mode:04o})")
