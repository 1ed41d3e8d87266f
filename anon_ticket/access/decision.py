"""What the gateway answers a proxy (docs/PROTOCOL.md §13): only 200, 401 or 403, with a reason.

Pure values and rules, no I/O: which credential a request carries (`credential_of`), and what a
service token's record means for access now (`judge_record`). nginx's `auth_request` turns any other
status into a 500 for the client, so every outcome here, an unavailable database included, is one
of the three.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from anon_ticket.core.domain import ServiceToken
from anon_ticket.core.payments import TokenStatus
from anon_ticket.errors import InvalidToken, PrivateTokenMalformed
from anon_ticket.privacypass.wire import (
    AUTH_SCHEME,
    MAX_AUTHORIZATION_LENGTH,
    Token,
    b64url_decode,
    parse_authorization,
)
from anon_ticket.storage.protocols import ClaimRecord


class Reason(enum.StrEnum):
    """Why a request may not pass; in `X-Access-Reason` and the JSON body's `error`.

    (The values are wire codes, not secrets: ruff's S105 sees "token" in their names.)
    """

    NO_CREDENTIAL = "no_credential"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    ACCESS_EXPIRED = "access_expired"
    TOKEN_SPENT = "token_spent"  # noqa: S105
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    # Not a judgement of the client: the database (or the Privacy Pass service) cannot answer now.
    # Fail closed with 401 (a 503 would reach the client as nginx's 500) and Retry-After.
    UNAVAILABLE = "unavailable"


STATUS_OF = {
    Reason.NO_CREDENTIAL: 401,
    Reason.UNKNOWN_TOKEN: 401,
    Reason.INVALID_TOKEN: 401,
    Reason.UNAVAILABLE: 401,
    Reason.TOKEN_REVOKED: 403,
    Reason.ACCESS_EXPIRED: 403,
    Reason.TOKEN_SPENT: 403,
}
MESSAGES = {
    Reason.NO_CREDENTIAL: "no usable credential: present a service token, a Privacy Pass token or a session",
    Reason.UNKNOWN_TOKEN: "no service token with this value was issued",
    Reason.TOKEN_REVOKED: "this service token has been revoked",
    Reason.ACCESS_EXPIRED: "the time paid for with this service token is over; pay the same address again",
    Reason.TOKEN_SPENT: "this Privacy Pass token has already been spent",
    Reason.INVALID_TOKEN: "this Privacy Pass token does not verify",
    Reason.UNAVAILABLE: "access cannot be checked right now; try again shortly",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """200 (`reason` None) or a refusal; `until` is the end of the paid time, when a policy applies."""

    reason: Reason | None = None
    until: int | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is None

    @property
    def status(self) -> int:
        return 200 if self.reason is None else STATUS_OF[self.reason]


ALLOWED = Decision()


@dataclass(frozen=True, slots=True, repr=False)
class Bearer:
    """`Authorization: Bearer <service token>`; None when the value cannot be a service token."""

    token: ServiceToken | None


@dataclass(frozen=True, slots=True, repr=False)
class PrivateToken:
    """`Authorization: PrivateToken token="…"` (RFC 9577 §2.2); None when it holds no type-2 Token."""

    token: Token | None


Credential = Bearer | PrivateToken


def credential_of(authorization: str) -> Credential | None:
    """The credential in an Authorization header, or None for none (or a scheme we do not take).

    Schemes are case-insensitive (RFC 9110 §11.1), separated from their value by spaces.
    """
    scheme, _, rest = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        try:
            return Bearer(ServiceToken.parse(rest.strip(" \t")))
        except InvalidToken:
            return Bearer(None)
    if scheme == AUTH_SCHEME.lower():
        try:
            return PrivateToken(parse_authorization(authorization))
        except PrivateTokenMalformed:
            return PrivateToken(None)
    return None


def private_token_value(text: str) -> Token | None:
    """A Privacy Pass token pasted into the sign-in form (base64url, surrounding spaces ignored)."""
    value = text.strip()
    if not value or len(value) > MAX_AUTHORIZATION_LENGTH:
        return None
    try:
        return Token.decode(b64url_decode(value))
    except PrivateTokenMalformed:
        return None


def judge_record(record: ClaimRecord | None, policy: bool, now: float) -> Decision:
    """A service token's record, judged now: unknown 401; revoked (by the operator or a reorg) or
    past the end of its paid time 403; else 200, with the end when `policy` (an access policy is
    configured) and the claim has one (a claim made before the policy has none: good until revoked).
    """
    if record is None:
        return Decision(Reason.UNKNOWN_TOKEN)
    if record.status is not TokenStatus.ACTIVE:
        return Decision(Reason.TOKEN_REVOKED)
    if not policy or record.access_until is None:
        return ALLOWED
    if now >= record.access_until:
        return Decision(Reason.ACCESS_EXPIRED, record.access_until)
    return Decision(None, record.access_until)
