"""`--env-file FILE`: the operator's environment file, read by hand the way systemd's EnvironmentFile= does.

The daemon is configured by environment variables only. Under systemd the unit's EnvironmentFile=
supplies them; outside it (a first try, `migrate`, `backup`, `token` in a shell) the same file is
loaded with `python -m anon_ticket --env-file /etc/anon_ticket/env COMMAND`. Variables already set
in the environment win over the file, so a one-off `LOG_LEVEL=DEBUG` still works.

The format is systemd's subset that the shipped example uses: `NAME=value` lines, blank lines and
lines starting with `#` or `;` ignored, a value optionally wrapped in one pair of single or double
quotes. Anything else is an error naming the line, never a silent guess.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path

from anon_ticket.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse(text: str, source: str) -> dict[str, str]:
    """The variables in an environment file's text; ConfigError naming every bad line."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, equals, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not equals or not _NAME.match(name):
            problems.append(f"{source} line {number}: expected NAME=value, got {line[:40]!r}")
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[name] = value
    if problems:
        raise ConfigError(problems)
    return found


def load(path: Path, environ: MutableMapping[str, str]) -> None:
    """Add the file's variables to `environ`, keeping any already set; ConfigError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"--env-file {path}: cannot read it: {exc}"]) from exc
    for name, value in parse(text, str(path)).items():
        environ.setdefault(name, value)
