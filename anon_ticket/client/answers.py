"""What the public API may answer (docs/PROTOCOL.md §4), as typed values, and nothing else.

Parsing is strict where money or secrets depend on it (the token, the payment-id scheme, the address)
and lenient where a field only feeds a progress line (amounts and confirmations of a pending payment):
a server bug in a progress field must not cost the buyer a token they are owed.
"""

from __future__ import annotations

from dataclasses import dataclass

from anon_ticket.client.errors import ServerBusy, ServerError
from anon_ticket.client.text import clean, format_xmr
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import InvalidToken

CLAIM_STATUSES = frozenset({"claimed", "already_claimed"})


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """`GET /api/v1/info`: where to pay, how much, and how the server derives payment ids."""

    primary_address: str
    min_payment_amount: int
    required_confirmations: int
    payment_id_scheme: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """200: the token. `status` is "claimed" the first time, "already_claimed" on a replay."""

    token: ServiceToken
    status: str
    amount: int | None
    claimed_at: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    """202: money is visible but not yet counted; worth waiting for."""

    amount: int | None
    confirmations: int | None
    required_confirmations: int | None

    def describe(self) -> str:
        amount = "an unknown amount" if self.amount is None else f"{format_xmr(self.amount)} XMR"
        have = "?" if self.confirmations is None else str(self.confirmations)
        need = "?" if self.required_confirmations is None else str(self.required_confirmations)
        return f"payment pending: {amount} seen, {have}/{need} confirmations"


@dataclass(frozen=True, slots=True)
class NotSeen:
    """404 payment_not_found: nothing visible yet (the transfer may still be on its way)."""

    def describe(self) -> str:
        return "payment not seen yet"


@dataclass(frozen=True, slots=True)
class Refused:
    """402 or 410: waiting will not help; the buyer has to act (pay more) or give up (revoked)."""

    status: int
    error: str
    message: str
    reason: str | None = None
    amount: int | None = None
    min_payment_amount: int | None = None

    def describe(self) -> str:
        if self.status == 402:
            received = "?" if self.amount is None else format_xmr(self.amount)
            needed = "?" if self.min_payment_amount is None else format_xmr(self.min_payment_amount)
            return (
                f"insufficient payment: {received} XMR counted of {needed} XMR required; pay the "
                "difference to the same integrated address, then redeem again"
            )
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.error}{reason}: {self.message}"


RedeemAnswer = Claimed | Pending | NotSeen | Refused


def _count(value: object) -> int | None:
    """A non-negative JSON integer, or None (JSON booleans are Python ints: refuse them)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: object) -> str | None:
    return clean(value) if isinstance(value, str) else None


def _object(status: int, body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise ServerError(f"the server answered {status} without a JSON object")
    return body


def _error_code(body: object) -> str:
    code = _text(body.get("error")) if isinstance(body, dict) else None
    return code or "?"


def busy_or_none(status: int, body: object, retry_after: int | None) -> None:
    """429 and 503 mean "come back later" whatever the body says (a proxy's HTML page included)."""
    if status in (429, 503):
        raise ServerBusy(f"server busy ({status} {_error_code(body)})", status, retry_after)


def unexpected(status: int, body: object) -> ServerError:
    message = _text(body.get("message")) if isinstance(body, dict) else None
    detail = f": {message}" if message else ""
    return ServerError(f"unexpected answer {status} {_error_code(body)}{detail}")


def parse_info(status: int, body: object, retry_after: int | None) -> ServerInfo:
    busy_or_none(status, body, retry_after)
    if status != 200:
        raise unexpected(status, body)
    fields = _object(status, body)
    address = fields.get("primary_address")
    minimum = _count(fields.get("min_payment_amount"))
    confirmations = _count(fields.get("required_confirmations"))
    scheme = fields.get("payment_id_scheme")
    if (
        not isinstance(address, str)
        or minimum is None
        or confirmations is None
        or not isinstance(scheme, str)
    ):
        raise ServerError(
            "the server's /api/v1/info lacks primary_address, min_payment_amount, "
            "required_confirmations or payment_id_scheme"
        )
    return ServerInfo(address, minimum, confirmations, scheme)


def parse_redeem(status: int, body: object, retry_after: int | None) -> RedeemAnswer:
    busy_or_none(status, body, retry_after)
    if status == 200:
        return _claimed(_object(status, body))
    if status == 202:
        fields = _object(status, body)
        return Pending(
            _count(fields.get("amount")),
            _count(fields.get("confirmations")),
            _count(fields.get("required_confirmations")),
        )
    if status == 404 and _error_code(body) == "payment_not_found":
        return NotSeen()
    if status in (402, 410):
        fields = _object(status, body)
        return Refused(
            status,
            _error_code(fields),
            _text(fields.get("message")) or "",
            reason=_text(fields.get("reason")),
            amount=_count(fields.get("amount")),
            min_payment_amount=_count(fields.get("min_payment_amount")),
        )
    raise unexpected(status, body)


def _claimed(fields: dict[str, object]) -> Claimed:
    status = fields.get("status")
    if status not in CLAIM_STATUSES:
        raise ServerError("the server answered 200 without status claimed or already_claimed")
    try:
        token = ServiceToken.parse(fields.get("token"))
    except InvalidToken as exc:
        raise ServerError("the server answered 200 without a well-formed token") from exc
    assert isinstance(status, str)
    return Claimed(token, status, _count(fields.get("amount")), _text(fields.get("claimed_at")))
