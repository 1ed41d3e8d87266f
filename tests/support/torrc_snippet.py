"""The onion-service lines of `conf/torrc.snippet`, made runnable inside a test's own directories.

Operators paste `conf/torrc.snippet` into their torrc (docs/OPERATIONS.md). The Tor tests run exactly
its active lines in a real tor on a private network, with only the two paths moved into the test's
work directory: `HiddenServiceDir` and the Unix socket of `HiddenServicePort`. A line that tor as
shipped rejects, or one that breaks the buyer's flow, then fails the suite instead of a deployment.

Optional lines are written in the snippet as comments (`#HiddenServiceExportCircuitID haproxy`);
`onion_service_lines(..., enable=("HiddenServiceExportCircuitID",))` switches one on, as an operator
would by removing the `#` (an option that is on already stays as it is).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SNIPPET = Path(__file__).resolve().parents[2] / "conf" / "torrc.snippet"
_OPTION = re.compile(r"(?P<keyword>[A-Za-z][A-Za-z0-9_]*)(?:[ \t]+(?P<value>.*))?")
_UNIX_TARGET = re.compile(r"^(?P<virtual>\d+)[ \t]+unix:(?P<path>\S+)$")


class SnippetError(Exception):
    """`conf/torrc.snippet` does not have the shape the tests (and the operations guide) rely on."""


@dataclass(frozen=True)
class OnionServiceConfig:
    """The torrc lines of one onion service, and the virtual port buyers connect to."""

    lines: tuple[str, ...]
    virtual_port: int


def _options(text: str, *, commented: bool) -> list[tuple[str, str]]:
    """(keyword, value) of the active lines, or of the commented-out option lines with `commented`."""
    found: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if commented:
            if not line.startswith("#"):
                continue
            line = line[1:].strip()
        elif not line or line.startswith("#"):
            continue
        match = _OPTION.fullmatch(line)
        if match is None:
            if commented:
                continue  # prose
            raise SnippetError(f"not a torrc option line: {raw!r}")
        found.append((match["keyword"], (match["value"] or "").strip()))
    return found


def onion_service_lines(
    text: str, hs_dir: Path, socket_path: Path, *, enable: Sequence[str] = ()
) -> OnionServiceConfig:
    """The snippet's onion service, publishing the Unix socket `socket_path` from `hs_dir`.

    Every active line must be an onion-service option (the snippet goes into an existing torrc, and
    the tests can only vouch for what they run); exactly one `HiddenServiceDir` comes first and one
    `HiddenServicePort` points at a Unix socket. `enable` names commented-out options to switch on.
    """
    options = _options(text, commented=False)
    foreign = [keyword for keyword, _ in options if not keyword.startswith("HiddenService")]
    if foreign:
        raise SnippetError(f"only onion-service options belong in the snippet, not {foreign}")
    if [keyword for keyword, _ in options].count("HiddenServiceDir") != 1 or (
        options[0][0] != "HiddenServiceDir"
    ):
        raise SnippetError("the snippet must start with exactly one HiddenServiceDir")
    unix_ports = [
        match
        for keyword, value in options
        if keyword == "HiddenServicePort" and (match := _UNIX_TARGET.match(value)) is not None
    ]
    if len(unix_ports) != 1:
        raise SnippetError("the snippet must publish exactly one Unix socket (HiddenServicePort N unix:PATH)")
    lines = []
    for keyword, value in options:
        if keyword == "HiddenServiceDir":
            lines.append(f"{keyword} {hs_dir}")
        elif keyword == "HiddenServicePort" and _UNIX_TARGET.match(value):
            lines.append(f"{keyword} {unix_ports[0]['virtual']} unix:{socket_path}")
        else:
            lines.append(f"{keyword} {value}")
    optional = dict(_options(text, commented=True))
    active = {keyword for keyword, _ in options}
    for keyword in enable:
        if keyword in active:
            continue  # on already
        if keyword not in optional:
            raise SnippetError(f"the snippet has no commented-out {keyword} line to switch on")
        lines.append(f"{keyword} {optional[keyword]}")
    return OnionServiceConfig(tuple(lines), int(unix_ports[0]["virtual"]))


def exports_circuit_ids(text: str) -> bool:
    """Whether the snippet, as documented, has tor send PROXY lines (the daemon then needs
    PROXY_PROTOCOL=tor: docs/PROTOCOL.md §8)."""
    return ("HiddenServiceExportCircuitID", "haproxy") in _options(text, commented=False)


def read_snippet(path: Path = SNIPPET) -> str:
    return path.read_text(encoding="utf-8")
