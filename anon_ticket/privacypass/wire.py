"""The bytes Privacy Pass token type 2 puts on the wire (RFC 9577 §2, RFC 9578 §6), and base64url.

Every decoder here is strict: exact lengths, the one token type we issue, no trailing bytes, and a
`PrivateTokenMalformed` that says what is wrong. Nothing else escapes a decoder, whatever the input
(tests/privacypass/test_wire.py feeds them arbitrary bytes).

base64url: RFC 9577 and RFC 9578 use the RFC 4648 §5 alphabet, and the reference implementation
(`@cloudflare/privacypass-ts`, through the `rfc4648` package) writes the padded form and *refuses* the
unpadded one. So we write padded, and read both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from anon_ticket.errors import PrivateTokenMalformed

TOKEN_TYPE = 2
# Nk: the authenticator and blinded message length, the RSA-2048 modulus in bytes (RFC 9578 §6).
NK = 256
# Nid: the token key id, SHA-256 of the token key (RFC 9578 §6.5).
NID = 32
NONCE_LENGTH = 32
DIGEST_LENGTH = 32
TOKEN_REQUEST_LENGTH = 2 + 1 + NK
TOKEN_LENGTH = 2 + NONCE_LENGTH + DIGEST_LENGTH + NID + NK
REDEMPTION_CONTEXT_LENGTHS = (0, 32)
AUTH_SCHEME = "PrivateToken"
# An Authorization value carrying one type-2 token is ~490 characters; anything much longer is refused
# before any parsing work.
MAX_AUTHORIZATION_LENGTH = 1024

_B64URL = re.compile(r"[A-Za-z0-9_-]*(={0,2})")
_TYPE = TOKEN_TYPE.to_bytes(2, "big")


def b64url_encode(data: bytes) -> str:
    """RFC 4648 §5 base64url, padded with `=` (what privacypass-ts writes and requires)."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """base64url with or without its `=` padding; anything else (another alphabet, wrong padding,
    non-zero spare bits, so that one value has one spelling) raises `PrivateTokenMalformed`."""
    if not isinstance(text, str):
        raise PrivateTokenMalformed("base64url input must be text")
    match = _B64URL.fullmatch(text)
    if match is None:
        raise PrivateTokenMalformed("not base64url (only A-Z a-z 0-9 - _ and trailing = padding)")
    padding = match.group(1)
    body = text[: len(text) - len(padding)]
    if len(body) % 4 == 1:
        raise PrivateTokenMalformed("base64url of impossible length")
    if padding and len(padding) != -len(body) % 4:
        raise PrivateTokenMalformed("base64url with wrong padding")
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the checks above leave nothing to fail
        raise PrivateTokenMalformed("not base64url") from None
    if base64.urlsafe_b64encode(data).decode("ascii").rstrip("=") != body:
        raise PrivateTokenMalformed("base64url with non-zero spare bits")
    return data


class _Reader:
    """Cursor over one structure's bytes; every read is bounds-checked."""

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise PrivateTokenMalformed(f"{what} must be bytes")
        self.data = bytes(data)
        self.offset = 0
        self.what = what

    def take(self, length: int, field: str) -> bytes:
        end = self.offset + length
        if end > len(self.data):
            raise PrivateTokenMalformed(f"{self.what} ends inside {field}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def token_type(self) -> None:
        token_type = self.uint(2, "token_type")
        if token_type != TOKEN_TYPE:
            raise PrivateTokenMalformed(
                f"{self.what} has token type {token_type}; only type {TOKEN_TYPE} (Blind RSA) is issued here"
            )

    def end(self) -> None:
        if self.offset != len(self.data):
            raise PrivateTokenMalformed(f"{self.what} has {len(self.data) - self.offset} bytes too many")


def _ascii(raw: bytes, field: str) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise PrivateTokenMalformed(f"TokenChallenge {field} is not ASCII") from None
    if not text.isprintable():
        raise PrivateTokenMalformed(f"TokenChallenge {field} holds control characters")
    return text


@dataclass(frozen=True)
class TokenChallenge:
    """What a token is bound to (RFC 9577 §2.1): the issuer, an optional redemption context, and the
    origins that accept it. Always token type 2."""

    issuer_name: str
    redemption_context: bytes
    origin_info: tuple[str, ...]

    def __post_init__(self) -> None:
        name = self.issuer_name.encode("ascii", "replace")
        if not 1 <= len(name) <= 0xFFFF or _ascii(name, "issuer_name") != self.issuer_name:
            raise PrivateTokenMalformed("TokenChallenge issuer_name must be 1 to 65535 ASCII characters")
        if len(self.redemption_context) not in REDEMPTION_CONTEXT_LENGTHS:
            raise PrivateTokenMalformed("TokenChallenge redemption_context must be empty or 32 bytes")
        for origin in self.origin_info:
            if (
                not origin
                or "," in origin
                or _ascii(origin.encode("ascii", "replace"), "origin_info") != origin
            ):
                raise PrivateTokenMalformed(
                    "TokenChallenge origin names must be non-empty ASCII without commas"
                )
        if len(",".join(self.origin_info)) > 0xFFFF:
            raise PrivateTokenMalformed("TokenChallenge origin_info is over 65535 bytes")

    def encode(self) -> bytes:
        name = self.issuer_name.encode("ascii")
        origins = ",".join(self.origin_info).encode("ascii")
        return b"".join(
            (
                _TYPE,
                len(name).to_bytes(2, "big"),
                name,
                len(self.redemption_context).to_bytes(1, "big"),
                self.redemption_context,
                len(origins).to_bytes(2, "big"),
                origins,
            )
        )

    def digest(self) -> bytes:
        """SHA-256 of the encoding: the `challenge_digest` every token for this challenge carries."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> TokenChallenge:
        reader = _Reader(data, "TokenChallenge")
        reader.token_type()
        name = _ascii(reader.take(reader.uint(2, "issuer_name length"), "issuer_name"), "issuer_name")
        context = reader.take(reader.uint(1, "redemption_context length"), "redemption_context")
        origins = _ascii(reader.take(reader.uint(2, "origin_info length"), "origin_info"), "origin_info")
        reader.end()
        return cls(name, context, tuple(origins.split(",")) if origins else ())


@dataclass(frozen=True)
class TokenRequest:
    """The client's request (RFC 9578 §6.1): the last byte of the key id and the blinded message."""

    truncated_key_id: int
    blinded_msg: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.truncated_key_id <= 0xFF:
            raise PrivateTokenMalformed("TokenRequest truncated_token_key_id must be one byte")
        if len(self.blinded_msg) != NK:
            raise PrivateTokenMalformed(f"TokenRequest blinded_msg must be {NK} bytes")

    def encode(self) -> bytes:
        return _TYPE + bytes((self.truncated_key_id,)) + self.blinded_msg

    @classmethod
    def decode(cls, data: bytes) -> TokenRequest:
        reader = _Reader(data, "TokenRequest")
        if len(reader.data) != TOKEN_REQUEST_LENGTH:
            # The type is checked first when present, so a request for another token type says so.
            if len(reader.data) >= 2:
                reader.token_type()
            raise PrivateTokenMalformed(
                f"TokenRequest is {len(reader.data)} bytes; type {TOKEN_TYPE} takes {TOKEN_REQUEST_LENGTH}"
            )
        reader.token_type()
        key_id = reader.uint(1, "truncated_token_key_id")
        return cls(key_id, reader.take(NK, "blinded_msg"))


@dataclass(frozen=True)
class Token:
    """A finalised token (RFC 9577 §2.2): what the client presents, once, to an origin."""

    nonce: bytes
    challenge_digest: bytes
    token_key_id: bytes
    authenticator: bytes

    def __post_init__(self) -> None:
        for field, value, length in (
            ("nonce", self.nonce, NONCE_LENGTH),
            ("challenge_digest", self.challenge_digest, DIGEST_LENGTH),
            ("token_key_id", self.token_key_id, NID),
            ("authenticator", self.authenticator, NK),
        ):
            if not isinstance(value, bytes) or len(value) != length:
                raise PrivateTokenMalformed(f"Token {field} must be {length} bytes")

    def authenticator_input(self) -> bytes:
        """The message the authenticator signs: token_type, nonce, challenge_digest, token_key_id."""
        return _TYPE + self.nonce + self.challenge_digest + self.token_key_id

    def encode(self) -> bytes:
        return self.authenticator_input() + self.authenticator

    @classmethod
    def decode(cls, data: bytes) -> Token:
        reader = _Reader(data, "Token")
        reader.token_type()
        if len(reader.data) != TOKEN_LENGTH:
            raise PrivateTokenMalformed(
                f"Token is {len(reader.data)} bytes; type {TOKEN_TYPE} takes {TOKEN_LENGTH}"
            )
        token = cls(
            reader.take(NONCE_LENGTH, "nonce"),
            reader.take(DIGEST_LENGTH, "challenge_digest"),
            reader.take(NID, "token_key_id"),
            reader.take(NK, "authenticator"),
        )
        reader.end()
        return token


def www_authenticate(challenge: TokenChallenge, token_key: bytes, max_age: int | None = None) -> str:
    """The `WWW-Authenticate` value of RFC 9577 §2.1 asking for a token of `challenge` under
    `token_key` (the SPKI the issuer directory publishes): `PrivateToken challenge="…", token-key="…"`."""
    encoded_challenge, encoded_key = b64url_encode(challenge.encode()), b64url_encode(token_key)
    value = f'{AUTH_SCHEME} challenge="{encoded_challenge}", token-key="{encoded_key}"'
    if max_age is not None:
        if max_age < 0:
            raise ValueError("max-age must not be negative")
        value += f", max-age={max_age}"
    return value


def authorization(token: Token) -> str:
    """The `Authorization` value presenting `token` (RFC 9577 §2.2): `PrivateToken token="…"`."""
    return f'{AUTH_SCHEME} token="{b64url_encode(token.encode())}"'


# RFC 9110 §11.4 credentials with one auth-param: scheme, 1*SP, name BWS "=" BWS (token / quoted-string).
# The value is base64url, so a quoted-string never needs a quoted-pair; unquoted, the `=` padding is not
# a tchar, but privacypass-ts writes it unquoted (`token=AAAA==`) and so it is accepted.
_AUTHORIZATION = re.compile(
    r"[ \t]*(?P<scheme>[A-Za-z]+) +(?P<name>[A-Za-z-]+)[ \t]*=[ \t]*"
    r'(?:"(?P<quoted>[A-Za-z0-9_=-]*)"|(?P<bare>[A-Za-z0-9_=-]+))[ \t]*'
)


def parse_authorization(value: str) -> Token:
    """The token of an `Authorization: PrivateToken token="…"` value (RFC 9577 §2.2), strictly: one
    credential, one `token` parameter, base64url of exactly one type-2 Token. Bounded in length before
    any parsing. Raises `PrivateTokenMalformed` saying what is wrong."""
    if not isinstance(value, str):
        raise PrivateTokenMalformed("the Authorization header must be text")
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise PrivateTokenMalformed(f"the Authorization header is over {MAX_AUTHORIZATION_LENGTH} characters")
    match = _AUTHORIZATION.fullmatch(value)
    if match is None:
        raise PrivateTokenMalformed('the Authorization header is not `PrivateToken token="<base64url>"`')
    if match.group("scheme").lower() != AUTH_SCHEME.lower():
        raise PrivateTokenMalformed(f"the Authorization scheme is not {AUTH_SCHEME}")
    if match.group("name").lower() != "token":
        raise PrivateTokenMalformed("the PrivateToken credential takes one parameter, `token`")
    encoded = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
    return Token.decode(b64url_decode(encoded))
