"""The identifiers of docs/PROTOCOL.md §2: binary inside, hex only at the boundaries.

No constructor accepts text: `parse()` is the one way in from the outside and raises a domain error
for anything but the exact form. Secret values (the PID, the service token) hide themselves from
`repr()` so that a stray log line or traceback cannot leak them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from anon_ticket.errors import AnonTicketError, InvalidHex, InvalidPid, InvalidToken

PAYMENT_ID_DOMAIN = b"anon-ticket/payment-id/v1"
PAYMENT_ID_SCHEME = "sha3-256/anon-ticket/payment-id/v1"
PID_BYTES = 32
CHAIN_PAYMENT_ID_BYTES = 8
TXID_BYTES = 32
TOKEN_BYTES = 32

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_hex(text: object, nbytes: int, error: type[AnonTicketError], what: str) -> bytes:
    """Decode exactly `2 * nbytes` ASCII hex digits; anything else raises `error`.

    `bytes.fromhex` alone is too lenient for a wire format: it skips whitespace, and `str.isdigit`-style
    checks accept Unicode digits. We check the alphabet ourselves first.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be a string of {2 * nbytes} hex digits")
    if len(text) != 2 * nbytes or not _HEX_DIGITS.issuperset(text):
        raise error(f"{what} must be exactly {2 * nbytes} hex digits")
    return bytes.fromhex(text)


def _require_length(raw: bytes, nbytes: int, what: str) -> None:
    if not isinstance(raw, bytes) or len(raw) != nbytes:
        raise TypeError(f"{what} takes exactly {nbytes} raw bytes")


def _sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


@dataclass(frozen=True, slots=True)
class TxId:
    """A Monero transaction id: 32 bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        _require_length(self.raw, TXID_BYTES, "TxId")

    @classmethod
    def parse(cls, text: object) -> TxId:
        return cls(parse_hex(text, TXID_BYTES, InvalidHex, "txid"))

    def hex(self) -> str:
        return self.raw.hex()


@dataclass(frozen=True, slots=True)
class ChainPaymentId:
    """The 8-byte payment id that goes on chain inside an integrated address."""

    raw: bytes

    def __post_init__(self) -> None:
        _require_length(self.raw, CHAIN_PAYMENT_ID_BYTES, "ChainPaymentId")

    @classmethod
    def parse(cls, text: object) -> ChainPaymentId:
        return cls(parse_hex(text, CHAIN_PAYMENT_ID_BYTES, InvalidHex, "payment id"))

    def hex(self) -> str:
        return self.raw.hex()


@dataclass(frozen=True, slots=True)
class TokenDigest:
    """SHA3-256 of a service token's raw bytes: what storage keeps instead of the token."""

    raw: bytes

    def __post_init__(self) -> None:
        _require_length(self.raw, 32, "TokenDigest")

    def log_prefix(self) -> str:
        """Enough of the digest to correlate log lines, never enough to act on."""
        return self.raw[:6].hex()


@dataclass(frozen=True, slots=True, repr=False)
class ServiceToken:
    """The bearer token a buyer receives: SHA3-256(pid | claim txid)."""

    raw: bytes

    def __post_init__(self) -> None:
        _require_length(self.raw, TOKEN_BYTES, "ServiceToken")

    @classmethod
    def parse(cls, text: object) -> ServiceToken:
        return cls(parse_hex(text, TOKEN_BYTES, InvalidToken, "token"))

    def hex(self) -> str:
        return self.raw.hex()

    def digest(self) -> TokenDigest:
        return TokenDigest(_sha3(self.raw))

    def __repr__(self) -> str:
        return f"ServiceToken(digest={self.digest().log_prefix()}…)"


@dataclass(frozen=True, slots=True, repr=False)
class PaymentId:
    """The buyer's secret PID: 32 bytes that only the buyer knows until redeem.

    Only `chain_payment_id()` (an 8-byte digest) ever leaves the buyer's machine before redeem, and
    only digests of what it derives are ever stored.
    """

    raw: bytes

    def __post_init__(self) -> None:
        _require_length(self.raw, PID_BYTES, "PaymentId")

    @classmethod
    def parse(cls, text: object) -> PaymentId:
        """Accept exactly 64 hex digits in either case; nothing else (no 0x, no whitespace)."""
        return cls(parse_hex(text, PID_BYTES, InvalidPid, "pid"))

    @classmethod
    def generate(cls) -> PaymentId:
        return cls(secrets.token_bytes(PID_BYTES))

    def hex(self) -> str:
        return self.raw.hex()

    def chain_payment_id(self) -> ChainPaymentId:
        return ChainPaymentId(_sha3(PAYMENT_ID_DOMAIN + self.raw)[:CHAIN_PAYMENT_ID_BYTES])

    def service_token(self, claim_txid: TxId) -> ServiceToken:
        return ServiceToken(_sha3(self.raw + b"|" + claim_txid.raw))

    def __repr__(self) -> str:
        return "PaymentId(<secret>)"
