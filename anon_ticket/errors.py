"""Every error anon_ticket raises on purpose, in one flat list.

Each class carries the public wire code and HTTP status it maps to, so the HTTP layer never needs a
table of its own (the idea comes from Mopidy-MPD). Classes that never reach a client keep the default
`internal_error`/500 and exist so callers can catch exactly what they mean.
"""

from __future__ import annotations


class AnonTicketError(Exception):
    """Root of the taxonomy; its `code` and `status` are what a client would see."""

    code = "internal_error"
    status = 500

    def extra(self) -> dict[str, object]:
        """Fields the error body carries besides `error` and `message`."""
        return {}

    def headers(self) -> list[tuple[str, str]]:
        """HTTP headers the answer carries (Allow, Retry-After)."""
        return []

    def public_message(self) -> str:
        """The `message` a client sees: the text, except for server-side failures, whose text may
        name files, SQL or a database's error and is for the operator's log only."""
        return str(self) if self.status < 500 else "internal error"


class InvalidRequest(AnonTicketError):
    """The body is not a JSON object, or a required key is missing or of the wrong shape."""

    code = "invalid_request"
    status = 400


class InvalidPid(AnonTicketError):
    """Text that is not exactly 64 hex digits was offered as a PID."""

    code = "invalid_pid"
    status = 400


class InvalidToken(AnonTicketError):
    """Text that is not exactly 64 hex digits was offered as a service token."""

    code = "invalid_token"
    status = 400


class InvalidHex(AnonTicketError):
    """A txid, payment id or address fragment from the wallet was not the hex we expect."""

    code = "invalid_hex"
    status = 400


class UnsupportedMediaType(AnonTicketError):
    """The request body is not declared as UTF-8 JSON."""

    code = "unsupported_media_type"
    status = 415


class PayloadTooLarge(AnonTicketError):
    """The request body is over the listener's limit."""

    code = "payload_too_large"
    status = 413


class Unauthorized(AnonTicketError):
    """The internal API's bearer token is missing or wrong."""

    code = "unauthorized"
    status = 401

    def headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", 'Bearer realm="anon_ticket"')]  # RFC 6750 §3


class NotFound(AnonTicketError):
    """No such path on this listener."""

    code = "not_found"
    status = 404


class MethodNotAllowed(AnonTicketError):
    """A known path was asked with a method it does not serve; `allow` lists those it does."""

    code = "method_not_allowed"
    status = 405

    def __init__(self, allow: tuple[str, ...]) -> None:
        super().__init__("use " + ", ".join(allow))
        self.allow = allow

    def headers(self) -> list[tuple[str, str]]:
        return [("Allow", ", ".join(self.allow))]


class PaymentNotFound(AnonTicketError):
    """Nothing visible is known for this PID (or the PID does not rebuild the stored token)."""

    code = "payment_not_found"
    status = 404


class TokenNotFound(AnonTicketError):
    """No token with this digest was ever issued."""

    code = "token_not_found"
    status = 404


class AllowanceExhausted(AnonTicketError):
    """A new blinded message for a service token whose Privacy Pass allowance is used up (§12)."""

    code = "allowance_exhausted"
    status = 402

    def __init__(self, allowance: int, issued: int) -> None:
        super().__init__("this service token's private token allowance is used up; paying more raises it")
        self.allowance = allowance
        self.issued = issued

    def extra(self) -> dict[str, object]:
        return {"allowance": self.allowance, "issued": self.issued}


class TokenSpent(AnonTicketError):
    """A private token offered for a spend has been spent before."""

    code = "token_spent"
    status = 409


class RateLimited(AnonTicketError):
    """Abuse protection refused the request; retry after `retry_after` seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many requests; retry later")
        self.retry_after = retry_after

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", str(self.retry_after))]


# The kinds of component a 503 may name (docs/PROTOCOL.md §4): nothing more specific reaches a client.
# "internal" is a defect in the request's own code, answered 503 all the same (a client retries).
COMPONENTS = ("storage", "wallet", "actor", "internal")


def _generic_unavailable(component: str) -> str:
    if component == "internal":
        return "internal error, retry later"
    return f"{component} unavailable, retry later"


class Unavailable(AnonTicketError):
    """A component (actor, storage, wallet) is down or did not answer in time.

    `str()` is the detail for the operator's log; a client only ever sees `public_message()`, which
    names the kind of component and nothing else.
    """

    code = "unavailable"
    status = 503

    def __init__(
        self, message: str = "temporarily unavailable", retry_after: int = 5, *, component: str = "actor"
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.component = component if component in COMPONENTS else "actor"

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", str(self.retry_after))]

    def public_message(self) -> str:
        return _generic_unavailable(self.component)


class ConfigError(AnonTicketError):
    """The environment holds bad values; `problems` names every one of them at once."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class StorageError(AnonTicketError):
    """The database cannot be used as it is (version, backend, disk full, I/O); clients see a 503.

    The text names files and carries the database's own error: it is for the operator (logs, the
    command line), never for a client, who sees only `public_message()`.
    """

    code = "unavailable"
    status = 503
    component = "storage"

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "5")]

    def public_message(self) -> str:
        return _generic_unavailable(self.component)


class NoFreeConnection(StorageError):
    """Every connection of the node's PostgreSQL pool stayed in use for as long as a request waits."""


class SchemaTooNew(AnonTicketError):
    """The database was migrated by a newer anon_ticket than this one."""

    code = "schema_too_new"


class AddressInUse(AnonTicketError):
    """A listener cannot bind its configured address (another process holds it, or no permission)."""

    code = "address_in_use"


class DatabaseLocked(AnonTicketError):
    """Another daemon already serves this database."""

    code = "database_locked"


class WalletMismatch(AnonTicketError):
    """The database is bound to another wallet's primary address."""

    code = "wallet_mismatch"


class WalletRpcError(AnonTicketError):
    """monero-wallet-rpc answered with a JSON-RPC error; `rpc_code` is its number."""

    code = "wallet_rpc_error"

    def __init__(self, message: str, rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


class ChainRpcError(AnonTicketError):
    """monerod or monero-wallet-rpc of the demo's private regtest chain answered a JSON-RPC error."""

    code = "chain_rpc_error"

    def __init__(self, method: str, rpc_code: int | None, message: str) -> None:
        super().__init__(f"{method}: {rpc_code} {message}")
        self.method = method
        self.rpc_code = rpc_code
        self.message = message


class DemoError(AnonTicketError):
    """The demo cannot start or be reached (no monerod, no running demo, a folder not ours)."""

    code = "demo_error"


class WalletUnreachable(AnonTicketError):
    """monero-wallet-rpc could not be reached, timed out, or answered something that is not JSON-RPC."""

    code = "wallet_unreachable"


class WalletFault(AnonTicketError):
    """The wallet reports a height far below what the database has seen, or below the scan floor.

    A restored or resyncing wallet, not a reorg (docs/PROTOCOL.md §9): its poll is not applied.
    """

    code = "wallet_fault"

    def __init__(self, message: str, wallet_height: int) -> None:
        super().__init__(message)
        self.wallet_height = wallet_height


class CursorMoved(AnonTicketError):
    """The scan cursor changed under a batch (an operator rescan); the batch was not applied."""

    code = "cursor_moved"


class RescanRefused(AnonTicketError):
    """An operator's rescan that would skip blocks or raise the highest height (docs/PROTOCOL.md §5)."""

    code = "rescan_refused"
    status = 400


class TokenRevoked(AnonTicketError):
    """The token of this payment was revoked; `reason` is `revoked` or `payment_reorged`."""

    code = "token_revoked"
    status = 410

    def __init__(self, reason: str) -> None:
        super().__init__(
            "the token was revoked by the operator"
            if reason == "revoked"
            else "the payment was reversed by a chain reorganisation"
        )
        self.reason = reason

    def extra(self) -> dict[str, object]:
        return {"reason": self.reason}


class InsufficientPayment(AnonTicketError):
    """Everything visible has counted and the total is below the minimum."""

    code = "insufficient_payment"
    status = 402

    def __init__(self, amount: int, min_payment_amount: int) -> None:
        super().__init__("the payment is below the minimum amount")
        self.amount = amount
        self.min_payment_amount = min_payment_amount

    def extra(self) -> dict[str, object]:
        return {"amount": self.amount, "min_payment_amount": self.min_payment_amount}


class BuyerPageError(AnonTicketError):
    """The packaged buyer's page cannot be loaded (a file missing from the install): found at start."""


class PrivateTokenMalformed(AnonTicketError):
    """Privacy Pass wire bytes (TokenRequest, TokenChallenge, Token, base64url, header) of the wrong shape."""

    code = "invalid_request"
    status = 400


class PrivateTokenInvalid(AnonTicketError):
    """A Privacy Pass token offered for a spend does not decode, or fails our key, challenge or signature."""

    code = "invalid_token"
    status = 400


class PrivateTokenKeyError(AnonTicketError):
    """The issuer key file cannot be used (unreadable, readable by others, not an RSA-2048 key); names the
    path, never the key."""

    code = "config_error"


class PrivateTokenSigningFailed(AnonTicketError):
    """Our blind signature failed its check with the public key (a fault in the computation): never sent."""


class PrivateTokenIssuerAnswer(AnonTicketError):
    """The issuer's answer does not finalise into a token that verifies with its published key."""

    code = "invalid_issuer_answer"
