"""From a `get_transfers` answer to the changes one poll applies (docs/PROTOCOL.md §3), as pure functions.

The poller fetches, the storage writer applies; what counts as ours, which entry wins and what has
disappeared is decided here, where it can be tested with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from anon_ticket.core.domain import CHAIN_PAYMENT_ID_BYTES
from anon_ticket.core.payments import POOL_HEIGHT, Transfer, TransferFlag
from anon_ticket.errors import WalletUnreachable

_ZERO_PAYMENT_ID = "0" * (2 * CHAIN_PAYMENT_ID_BYTES)
_HEX = frozenset("0123456789abcdef")
MAX_STORED_INT = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT: larger is garbage, not a payment


@dataclass(frozen=True, slots=True)
class ReportedTransfer:
    """One wallet entry that is ours: incoming to account 0 with a non-zero 8-byte payment id."""

    payment_id: bytes
    transfer: Transfer


def scan_window(floor: int, cursor: int, wallet_height: int, rescan_depth: int) -> int:
    """The exclusive `min_height` of the next `get_transfers`.

    docs/PROTOCOL.md §3 gives `max(start, wallet_height − MONITOR_RESCAN_DEPTH)`. We also never skip above the
    cursor: after an outage longer than the rescan window the poll reaches back to where the last
    applied poll ended, so no block goes unscanned. `floor` (inclusive) is MONITOR_START_HEIGHT or the
    first height seen; heights below it are never asked for.
    """
    return max(floor - 1, min(cursor - 1, wallet_height - rescan_depth), 0)


def height_fault(wallet_height: int, floor: int | None, highest: int | None, rescan_depth: int) -> str | None:
    """Why a wallet at `wallet_height` must not be polled, or None (docs/PROTOCOL.md §9).

    More than `rescan_depth` blocks below the highest height this database has seen, or below the
    scan floor, the wallet was restored or is resyncing: it does not list what it has not scanned
    yet, and applying its answer would mark paid transfers as gone and revoke their tokens. Within
    `rescan_depth` it is a reorg and the poll is applied (transfers in blocks the wallet has not
    reached are not judged; see `plan_changes`). A fault lasts until the wallet is back within reach.
    """
    if highest is not None and wallet_height < highest - rescan_depth:
        return (
            f"wallet fault: the wallet's height {wallet_height} is {highest - wallet_height} blocks below "
            f"the highest height this database has seen ({highest}), more than MONITOR_RESCAN_DEPTH "
            f"({rescan_depth}): it was restored or is resyncing, not reorganised; nothing is applied "
            f"and nothing revoked until it reaches {highest - rescan_depth}"
        )
    if floor is not None and wallet_height < floor:
        return (
            f"wallet fault: the wallet's height {wallet_height} is below the scan floor {floor} "
            f"(MONITOR_START_HEIGHT or the first height scanned); nothing is applied until it reaches {floor}"
        )
    return None


def _bad(reason: str) -> WalletUnreachable:
    return WalletUnreachable(f"get_transfers answered garbage: {reason}")


def _int(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_STORED_INT:
        raise _bad(f"{key} is {value!r}")
    return value


def _entry(entry: object, kind: str) -> ReportedTransfer | None:
    if not isinstance(entry, dict):
        raise _bad("an entry is not an object")
    subaddr = entry.get("subaddr_index")
    if not isinstance(subaddr, dict) or not isinstance(subaddr.get("major"), int):
        raise _bad("subaddr_index is missing")
    payment_id = entry.get("payment_id")
    if not isinstance(payment_id, str):
        raise _bad("payment_id is not a string")
    payment_id = payment_id.lower()
    # Only account 0 and 8-byte ids can be ours; subaddress payments carry the all-zero id and
    # legacy 32-byte ids are refused by every current wallet anyway. Whatever is not ours is skipped
    # before its other fields are judged: a payer controls some of them (unlock_time is a uint64),
    # and one odd transaction to any address of the wallet must not stall every poll.
    if subaddr["major"] != 0 or len(payment_id) != 16 or payment_id == _ZERO_PAYMENT_ID:
        return None
    if not _HEX.issuperset(payment_id):
        raise _bad("payment_id is not hex")
    txid = entry.get("txid")
    if not isinstance(txid, str):
        raise _bad("txid is not a string")
    txid = txid.lower()
    if len(txid) != 64 or not _HEX.issuperset(txid):
        raise _bad(f"txid {txid[:70]!r} is not 64 hex digits")
    amount = _int(entry, "amount")
    unlock_time = entry.get("unlock_time")
    # Any non-negative integer, up to 2**64 - 1: only "zero or not" is kept.
    if not isinstance(unlock_time, int) or isinstance(unlock_time, bool) or unlock_time < 0:
        raise _bad(f"unlock_time is {unlock_time!r}")
    double_spend = entry.get("double_spend_seen", False)
    if not isinstance(double_spend, bool):
        raise _bad("double_spend_seen is not a boolean")
    height = _int(entry, "height") if kind == "in" else POOL_HEIGHT
    if kind == "in" and height == POOL_HEIGHT:
        raise _bad("an incoming entry has height 0")
    flags = TransferFlag(0)
    if unlock_time:
        flags |= TransferFlag.LOCKED
    if double_spend:
        flags |= TransferFlag.DOUBLE_SPEND
    return ReportedTransfer(bytes.fromhex(payment_id), Transfer(bytes.fromhex(txid), amount, height, flags))


def parse_transfers(result: object) -> list[ReportedTransfer]:
    """Our entries of a `get_transfers` result, `in` winning over `pool` for the same txid.

    Anything malformed rejects the whole answer (`WalletUnreachable`): applying half of a garbled
    answer could record a payment wrong, and the next poll asks again anyway.
    """
    if not isinstance(result, dict):
        raise _bad("the result is not an object")
    chosen: dict[tuple[bytes, bytes], ReportedTransfer] = {}
    for kind in ("in", "pool"):
        entries = result.get(kind, [])
        if not isinstance(entries, list):
            raise _bad(f"{kind} is not a list")
        for raw in entries:
            reported = _entry(raw, kind)
            if reported is None:
                continue
            key = (reported.payment_id, reported.transfer.txid)
            # Right after a reorg the wallet lists a tx under `in` and again under `pool` (amount 0):
            # `in` was read first and wins. A duplicate within one list keeps its first entry.
            chosen.setdefault(key, reported)
    return list(chosen.values())


@dataclass(frozen=True, slots=True)
class Plan:
    upserts: tuple[tuple[bytes, Transfer], ...]
    gone: tuple[tuple[bytes, bytes], ...]


def plan_changes(
    reported: Iterable[ReportedTransfer],
    unsettled: Iterable[tuple[bytes, Transfer]],
    min_height: int,
    wallet_height: int | None = None,
) -> Plan:
    """What to write: new or changed transfers, and stored ones that vanished from the window.

    A stored transfer disappears when it was in the pool or above `min_height` and the wallet no
    longer lists it under either `in` or `pool`. A transfer in a block at or above `wallet_height`
    is not judged: the wallet has not scanned that block (yet), as when it was restored and is
    resyncing, so its silence says nothing (docs/PROTOCOL.md §9). Once the wallet is past that block
    the transfer is judged like any other, so a real reorg is still noticed.
    """
    stored = {(payment_id, t.txid): t for payment_id, t in unsettled}
    upserts = []
    seen = set()
    for item in reported:
        key = (item.payment_id, item.transfer.txid)
        seen.add(key)
        known = stored.get(key)
        if known is None or known.as_reported() != item.transfer:
            upserts.append((item.payment_id, item.transfer))
    unscanned_from = wallet_height if wallet_height is not None else MAX_STORED_INT
    gone = [
        key
        for key, t in stored.items()
        if key not in seen
        and not t.flags & TransferFlag.GONE
        and (t.height == POOL_HEIGHT or min_height < t.height < unscanned_from)
    ]
    return Plan(tuple(upserts), tuple(gone))
