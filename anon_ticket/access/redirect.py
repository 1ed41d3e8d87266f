"""Where a sign-in sends the browser (docs/PROTOCOL.md §13): a path of this site, never elsewhere.

`next` comes from the client, so it is the classic open redirect. Only a plain absolute path is
kept: it starts with one `/`, holds printable ASCII only (no control characters, no spaces, no
backslashes, which browsers read as `/`), and stays a path once percent-decoded once or twice (so
`/%2F%2Fevil.example` and `/%5Cevil.example` are refused too). Everything else goes to `/`.
"""

from __future__ import annotations

import re
import urllib.parse

HOME = "/"
MAX_NEXT_CHARS = 2048
_PRINTABLE = re.compile(r"^[\x21-\x7e]*$")


def safe_next(candidate: str | None) -> str:
    if not candidate or len(candidate) > MAX_NEXT_CHARS:
        return HOME
    if not _PRINTABLE.match(candidate):
        return HOME
    seen = candidate
    for _ in range(3):  # the value itself, then decoded once and twice
        if not _plain_path(seen):
            return HOME
        seen = urllib.parse.unquote(seen)
    return candidate


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        return False
    parts = urllib.parse.urlsplit(text)
    return not parts.scheme and not parts.netloc
