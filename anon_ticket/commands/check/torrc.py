"""`PROXY_PROTOCOL` against tor's configuration (`--torrc FILE`): both or neither.

With `HiddenServiceExportCircuitID haproxy` tor starts every connection with a PROXY line naming the
circuit; the daemon reads it only with `PROXY_PROTOCOL=tor`. One without the other refuses every
buyer (conf/torrc.snippet, docs/OPERATIONS.md).
"""

from __future__ import annotations

from pathlib import Path

from anon_ticket.commands.check.report import Finding, ok, problem, skipped

OPTION = "hiddenserviceexportcircuitid"


def exports_circuit_ids(text: str) -> bool:
    """Does some line, outside comments, say `HiddenServiceExportCircuitID haproxy`?"""
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].lower() == OPTION and words[1].lower() == "haproxy":
            return True
    return False


def check(proxy_protocol: str, torrc: Path | None) -> Finding:
    subject = "torrc"
    if torrc is None:
        return skipped(subject, "not checked (give --torrc /etc/tor/torrc to compare it with PROXY_PROTOCOL)")
    try:
        text = torrc.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return problem(
            subject,
            f"{torrc} cannot be read: {exc.strerror}",
            "run check as root or tor's user, or fix the path",
        )
    exports = exports_circuit_ids(text)
    if exports and proxy_protocol != "tor":
        return problem(
            subject,
            f"{torrc} exports circuit ids (HiddenServiceExportCircuitID haproxy) but PROXY_PROTOCOL is "
            f"{proxy_protocol}: every buyer's request starts with a PROXY line the daemon refuses",
            "set PROXY_PROTOCOL=tor (recommended: limits per circuit) or remove that line from the torrc",
        )
    if not exports and proxy_protocol == "tor":
        return problem(
            subject,
            f"PROXY_PROTOCOL=tor but {torrc} does not export circuit ids: the daemon waits for a PROXY "
            "line tor never sends and refuses every buyer",
            "add `HiddenServiceExportCircuitID haproxy` to the onion service's block (conf/torrc.snippet) "
            "and reload tor, or set PROXY_PROTOCOL=off",
        )
    state = "both on" if exports else "both off"
    return ok(subject, f"PROXY_PROTOCOL={proxy_protocol} and {torrc} agree ({state})")
