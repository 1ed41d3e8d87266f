"""The operator's rescan (docs/PROTOCOL.md §5, §7): what may be asked, and when it is refused.

One set of rules for both ways a rescan is made — written directly by `rescan` when no daemon holds
the database, or by the daemon's storage writer for `POST /api/v1/rescan` — and checked by the store
inside the transaction that writes it, so nothing can move the cursor in between.

A rescan only moves the scan cursor back: forward would skip every block between the cursor and the
new height, payments never seen. `reset_highest` lowers the highest wallet height the database has
seen (the wallet-fault reference of §9) to the chain height the operator states; it only ever lowers
it, and never below the rescan height (the chain cannot be below where reading starts again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anon_ticket.errors import InvalidRequest

# Heights are INTEGER columns on PostgreSQL: anything above this could not be stored.
MAX_HEIGHT = 2**31 - 1
_KEYS = frozenset({"from", "reset_highest"})


@dataclass(frozen=True, slots=True)
class RescanRequest:
    from_height: int
    reset_highest: int | None = None


def _height(value: Any, name: str) -> int:
    # bool is an int in Python, and JSON's true must not read as height 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HEIGHT:
        raise InvalidRequest(f"{name} must be an integer from 0 to {MAX_HEIGHT}")
    return value


def parse_request(body: dict[str, Any]) -> RescanRequest:
    """`{"from": H}` or `{"from": H, "reset_highest": W}`; 400 `invalid_request` for anything else.

    Unknown keys are refused rather than ignored: a misspelt `reset_highest` must not quietly do a
    plain rescan.
    """
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidRequest(f"unknown key {unknown[0]!r}; a rescan takes only 'from' and 'reset_highest'")
    if "from" not in body:
        raise InvalidRequest("'from' (the height to read again from) is required")
    reset = body.get("reset_highest")
    return RescanRequest(
        _height(body["from"], "'from'"), None if reset is None else _height(reset, "'reset_highest'")
    )


def refusal(request: RescanRequest, cursor: int | None, highest: int | None) -> str | None:
    """Why this rescan must not be made against the stored cursor and highest height, or None."""
    height, reset = request.from_height, request.reset_highest
    if cursor is not None and height > cursor:
        return f"--from {height} is ahead of the scan cursor ({cursor}); rescan only moves it back"
    if reset is None:
        return None
    if highest is None:
        return "no wallet height has been recorded yet: there is no highest height to lower"
    if reset > highest:
        return f"--reset-highest {reset} is above the highest height seen ({highest}); it only lowers it"
    if reset < height:
        return (
            f"--reset-highest {reset} is below --from {height}: the chain's height cannot be below "
            "the height reading starts again from"
        )
    return None
