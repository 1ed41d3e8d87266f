"""The Privacy Pass issuer's use cases (docs/PROTOCOL.md §12), without HTTP: the published directory and
challenge, issuance against a service token's allowance, and spends.

Issuance reads the claim and its count from the calling thread's own connection first, so that an
unknown, revoked or exhausted service token costs no signature and no write; the storage writer then
decides again inside its transaction (the decision that counts, on any number of nodes), and the
signature is sent only after that decision is durable. A spend verifies the token here (CPU only) and
records its nonce's digest through the writer, durably, before answering.

Nothing here logs per request, and the statsd counters are bare names: no value of an issuance (service
token, blinded message, its digest) and no value of a spend (nonce, key id) ever leaves this module
except into the database's two separate halves.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from anon_ticket.actors.abuse_metrics import Event
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.storage_writer import ask_writer, request_issue, request_spend
from anon_ticket.core.abuse import PerKeyLimiter
from anon_ticket.core.domain import ServiceToken
from anon_ticket.core.payments import TokenStatus, evaluate
from anon_ticket.errors import (
    AllowanceExhausted,
    InvalidToken,
    PrivateTokenMalformed,
    RateLimited,
    TokenRevoked,
    Unauthorized,
)
from anon_ticket.privacypass import issuer, origin
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import (
    TOKEN_TYPE,
    Token,
    TokenChallenge,
    TokenRequest,
    b64url_decode,
    b64url_encode,
)
from anon_ticket.storage.backend_rules import allowance
from anon_ticket.storage.protocols import (
    ClaimRecord,
    IssueOutcome,
    IssueRequest,
    IssueVerdict,
    SpendRequest,
    Store,
)

DIRECTORY_PATH = "/.well-known/private-token-issuer-directory"
ISSUE_PATH = "/api/v1/private-token/issue"
SPEND_PATH = "/api/v1/private-token/spend"
DIRECTORY_TYPE = "application/private-token-issuer-directory"
REQUEST_TYPE = "application/private-token-request"
RESPONSE_TYPE = "application/private-token-response"
SECONDS_PER_DAY = 86_400
# A Token is 2 + 32 + 32 + 32 + 256 bytes: 472 characters of base64url; anything much longer is not one.
MAX_TOKEN_CHARS = 1024


class SpendResult(Enum):
    """What a spend did (docs/PROTOCOL.md §12): the access gateway and the spend endpoint both map it."""

    SPENT = "spent"  # valid, and its first use: now recorded, durably
    ALREADY_SPENT = "already_spent"  # valid, but used before
    INVALID = "invalid"  # does not decode, another key or challenge, or a bad signature


@dataclass(frozen=True, slots=True)
class PrivateTokenSettings:
    tokens_per_payment: int
    min_payment_amount: int
    min_confirmations: int
    writer_timeout_secs: float
    # Issuance requests per service token per minute (a buyer fetching 100 tokens needs 100).
    issue_per_minute: int = 1200
    tracked_tokens: int = 100_000


def request_digest(request: TokenRequest) -> bytes:
    """What issuance remembers of a blinded message: its SHA-256 (a retry is recognised, never linked)."""
    return hashlib.sha256(request.blinded_msg).digest()


def nonce_digest(token: Token) -> bytes:
    """What a spend remembers of a token: SHA-256 of its nonce."""
    return hashlib.sha256(token.nonce).digest()


def revoked_reason(claim: ClaimRecord) -> str:
    """The §4 `reason` of a refused token: `payment_reorged` for a reorg, else `revoked`."""
    return "payment_reorged" if claim.status is TokenStatus.REORGED else "revoked"


def bearer_service_token(header: str) -> ServiceToken:
    """The service token of `Authorization: Bearer <64 hex>` (scheme in any case); 401 otherwise."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("issuance needs Authorization: Bearer <service token>")
    try:
        return ServiceToken.parse(credentials.strip())
    except InvalidToken:
        raise Unauthorized("issuance needs Authorization: Bearer <service token>") from None


class PrivateTokens:
    """Callable from any request thread; holds the key (never printed) and no per-request state."""

    def __init__(
        self,
        actors: ActorLocator,
        reader: Callable[[], Store],
        key: IssuerKey,
        challenge: TokenChallenge,
        not_before: int,
        settings: PrivateTokenSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._actors = actors
        self._reader = reader
        self._key = key
        self._challenge = challenge
        self._not_before = not_before
        self._settings = settings
        self._clock = clock
        self._per_token = PerKeyLimiter(settings.issue_per_minute, 60.0, settings.tracked_tokens)
        self.token_key = b64url_encode(key.spki)
        self.encoded_challenge = b64url_encode(challenge.encode())

    def __repr__(self) -> str:
        return "PrivateTokens(<issuer key>)"

    # -- what is published ----------------------------------------------------------------------

    def directory(self) -> dict[str, Any]:
        """The RFC 9578 §4 issuer directory: one key at a time."""
        return {
            "issuer-request-uri": ISSUE_PATH,
            "token-keys": [
                {"token-type": TOKEN_TYPE, "token-key": self.token_key, "not-before": self._not_before}
            ],
        }

    def info(self) -> dict[str, str]:
        """`private_token` of `/api/v1/info`: what a client needs to fetch tokens ahead of use."""
        return {
            "challenge": self.encoded_challenge,
            "token_key": self.token_key,
            "issuer_request_uri": ISSUE_PATH,
        }

    # -- issuance -------------------------------------------------------------------------------

    def issue(self, authorization: str, body: bytes) -> bytes:
        """The blind signature for one TokenRequest, after its allowance unit is durable.

        Raises the §12 errors: Unauthorized, RateLimited, PrivateTokenMalformed (400), TokenRevoked,
        AllowanceExhausted, Unavailable.
        """
        service_token = bearer_service_token(authorization)
        digest = service_token.digest().raw
        request = TokenRequest.decode(body)
        if request.truncated_key_id != self._key.truncated_key_id:
            raise PrivateTokenMalformed("the TokenRequest is not for this issuer's key")
        blinded = request_digest(request)
        claim = self._reader().claim_by_digest(digest)
        if claim is None:
            raise Unauthorized("no claim has this service token")
        # Counted only for a token that has a claim: the limiter's table is bounded (oldest windows
        # go first), so were made-up tokens counted too, a flood of them would push a paying
        # buyer's window out and give that buyer a fresh minute of RSA signatures at once.
        retry_after = self._per_token.hit(digest[:16])
        if retry_after:
            raise RateLimited(retry_after)
        self._precheck(claim, blinded)
        signature = issuer.blind_sign(self._key, request)
        outcome = self._record(digest, blinded)
        if outcome.verdict is IssueVerdict.GRANTED:
            self._actors.tell("abuse_metrics", Event("private_token.issued"))
        elif outcome.verdict is IssueVerdict.REPEATED:
            self._actors.tell("abuse_metrics", Event("private_token.issue_repeated"))
        else:
            self._refuse(outcome, claim)
        return signature

    def _precheck(self, claim: ClaimRecord, blinded: bytes) -> None:
        """What the reader already shows: revoked, or exhausted for a new message (no signature spent)."""
        if claim.status is not TokenStatus.ACTIVE:
            raise TokenRevoked(revoked_reason(claim))
        store = self._reader()
        issued, known = store.issued_count(claim.payment_id, blinded)
        if known:
            return
        granted = self.allowance_of(store, claim)
        if issued >= granted:
            self._actors.tell("abuse_metrics", Event("private_token.issue_refused"))
            raise AllowanceExhausted(granted, issued)

    def _record(self, token_digest: bytes, blinded: bytes) -> IssueOutcome:
        settings = self._settings
        ask = IssueRequest(
            token_digest=token_digest,
            request_digest=blinded,
            day=int(self._clock()) // SECONDS_PER_DAY,
            tokens_per_payment=settings.tokens_per_payment,
            min_amount=settings.min_payment_amount,
            min_confirmations=settings.min_confirmations,
        )
        return ask_writer(self._actors, request_issue, ask, settings.writer_timeout_secs)

    def _refuse(self, outcome: IssueOutcome, claim: ClaimRecord) -> None:
        """The writer's refusal (it saw a change the reader had not: a revocation, a racing issuance)."""
        if outcome.verdict is IssueVerdict.EXHAUSTED:
            self._actors.tell("abuse_metrics", Event("private_token.issue_refused"))
            raise AllowanceExhausted(outcome.allowance, outcome.issued)
        if outcome.verdict is IssueVerdict.REVOKED:
            raise TokenRevoked(revoked_reason(self._reader().claim_for(claim.payment_id) or claim))
        raise Unauthorized("no claim has this service token")

    def allowance_of(self, store: Store, claim: ClaimRecord) -> int:
        """The §12 allowance of a claim, from the amount its payment has counted now."""
        seen = store.snapshot(claim.payment_id)
        view = evaluate(seen.transfers, seen.wallet_height, self._settings.min_confirmations, claimed=True)
        return allowance(
            view.counted_total, self._settings.tokens_per_payment, self._settings.min_payment_amount
        )

    # -- spends ---------------------------------------------------------------------------------

    def spend(self, token_b64: str) -> SpendResult:
        """Verify a base64url Token and record its first use (for the spend endpoint and the access
        gateway). Only a storage failure raises (`Unavailable`); every refusal is a value."""
        if not isinstance(token_b64, str) or len(token_b64) > MAX_TOKEN_CHARS:
            return self._invalid()
        try:
            token = Token.decode(b64url_decode(token_b64))
        except PrivateTokenMalformed:
            return self._invalid()
        return self.spend_token(token)

    def spend_token(self, token: Token) -> SpendResult:
        """As `spend`, for a token already decoded (an `Authorization: PrivateToken` header)."""
        if not origin.verify_token(self._key, token, self._challenge):
            return self._invalid()
        ask = SpendRequest(self._key.key_id, nonce_digest(token), int(self._clock()) // SECONDS_PER_DAY)
        if ask_writer(self._actors, request_spend, ask, self._settings.writer_timeout_secs):
            self._actors.tell("abuse_metrics", Event("private_token.spent"))
            return SpendResult.SPENT
        self._actors.tell("abuse_metrics", Event("private_token.spend_refused"))
        return SpendResult.ALREADY_SPENT

    def _invalid(self) -> SpendResult:
        self._actors.tell("abuse_metrics", Event("private_token.spend_invalid"))
        return SpendResult.INVALID

    # -- the operator's token record ------------------------------------------------------------

    def record_of(self, store: Store, claim: ClaimRecord) -> dict[str, int]:
        """`private_tokens` of the internal token record: the allowance now, and how many were issued."""
        issued, _ = store.issued_count(claim.payment_id)
        return {"allowance": self.allowance_of(store, claim), "issued": issued}
