"""The Privacy Pass wire formats (docs/PROTOCOL.md §12): exact encodings, strict decoders.

Whatever bytes or text arrive, a decoder answers a value or `PrivateTokenMalformed`, never another
exception; every value round-trips.
"""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.errors import PrivateTokenMalformed
from anon_ticket.privacypass.wire import (
    TOKEN_LENGTH,
    TOKEN_REQUEST_LENGTH,
    Token,
    TokenChallenge,
    TokenRequest,
    authorization,
    b64url_decode,
    b64url_encode,
    parse_authorization,
    www_authenticate,
)

ascii_names = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
origin_names = ascii_names.filter(lambda name: "," not in name)
challenges = st.builds(
    TokenChallenge,
    issuer_name=ascii_names,
    redemption_context=st.one_of(st.just(b""), st.binary(min_size=32, max_size=32)),
    origin_info=st.lists(origin_names, max_size=4).map(tuple),
)
requests = st.builds(TokenRequest, st.integers(0, 255), st.binary(min_size=256, max_size=256))
tokens = st.builds(
    Token,
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=256, max_size=256),
)


@given(st.binary(max_size=600))
def test_decoding_arbitrary_bytes_raises_only_malformed(data: bytes) -> None:
    for decode in (TokenChallenge.decode, TokenRequest.decode, Token.decode):
        with contextlib.suppress(PrivateTokenMalformed):
            decode(data)


@given(st.binary(max_size=300).map(lambda tail: b"\x00\x02" + tail))
def test_decoding_type_2_prefixed_bytes_raises_only_malformed(data: bytes) -> None:
    for decode in (TokenChallenge.decode, TokenRequest.decode, Token.decode):
        with contextlib.suppress(PrivateTokenMalformed):
            decode(data)


@given(st.text(max_size=600))
def test_parsing_arbitrary_text_raises_only_malformed(text: str) -> None:
    for parse in (b64url_decode, parse_authorization):
        with contextlib.suppress(PrivateTokenMalformed):
            parse(text)


@given(challenges)
def test_challenge_round_trips(challenge: TokenChallenge) -> None:
    assert TokenChallenge.decode(challenge.encode()) == challenge


@given(requests)
def test_request_round_trips(request: TokenRequest) -> None:
    assert len(request.encode()) == TOKEN_REQUEST_LENGTH
    assert TokenRequest.decode(request.encode()) == request


@given(tokens)
def test_token_round_trips_also_through_the_authorization_header(token: Token) -> None:
    assert len(token.encode()) == TOKEN_LENGTH
    assert Token.decode(token.encode()) == token
    assert parse_authorization(authorization(token)) == token


@given(st.binary(max_size=400))
def test_base64url_round_trips_padded_and_unpadded(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).decode()
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.rstrip("=")) == data


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("AQID+A==", "alphabet"),
        ("AQID/A", "alphabet"),
        ("AQIDBA=", "padding"),
        ("AQIDBA===", "alphabet"),
        ("AQIDB", "length"),
        ("AQIDBB", "spare bits"),
        ("AQ ID", "alphabet"),
        ("AQ\nID", "alphabet"),
        ("=", "padding"),
    ],
)
def test_base64url_refuses(text: str, why: str) -> None:
    with pytest.raises(PrivateTokenMalformed):
        b64url_decode(text)


def test_challenge_layout_is_rfc_9577() -> None:
    challenge = TokenChallenge("anon_ticket", b"", ("a.onion", "b.example"))
    assert challenge.encode() == (
        b"\x00\x02" + b"\x00\x0banon_ticket" + b"\x00" + b"\x00\x11a.onion,b.example"
    )
    assert TokenChallenge.decode(b"\x00\x02\x00\x01x\x00\x00\x00") == TokenChallenge("x", b"", ())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x00\x01x\x00\x00\x00", "token type 1"),
        (b"\x00\x02\x00\x01x\x00\x00\x00\x00", "1 bytes too many"),
        (b"\x00\x02\x00\x05x", "ends inside issuer_name"),
        (b"\x00\x02\x00\x00\x00\x00\x00", "issuer_name"),
        (b"\x00\x02\x00\x01x\x05abcde\x00\x00", "redemption_context"),
        (b"\x00\x02\x00\x01\xff\x00\x00\x00", "not ASCII"),
        (b"\x00\x02\x00\x01x\x00\x00\x02a,", "origin"),
    ],
)
def test_challenge_decode_says_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(PrivateTokenMalformed, match=message):
        TokenChallenge.decode(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01" + bytes(257), "token type 1"),
        (b"\x00\x02" + bytes(256), "258 bytes; type 2 takes 259"),
        (b"\x00\x02" + bytes(258), "260 bytes"),
        (b"\x00", "1 bytes"),
        (b"", "0 bytes"),
    ],
)
def test_request_decode_says_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(PrivateTokenMalformed, match=message):
        TokenRequest.decode(data)


def test_token_decode_says_what_is_wrong() -> None:
    with pytest.raises(PrivateTokenMalformed, match="token type 3"):
        Token.decode(b"\x00\x03" + bytes(352))
    with pytest.raises(PrivateTokenMalformed, match="353 bytes"):
        Token.decode(b"\x00\x02" + bytes(351))


TOKEN = Token(bytes(range(32)), bytes(32), b"\x01" * 32, b"\x02" * 256)
ENCODED = b64url_encode(TOKEN.encode())


@pytest.mark.parametrize(
    "value",
    [
        f'PrivateToken token="{ENCODED}"',
        f"PrivateToken token={ENCODED}",  # privacypass-ts writes it unquoted
        f'privatetoken TOKEN = "{ENCODED}"',
        f'  PrivateToken token="{ENCODED.rstrip("=")}"  ',
    ],
)
def test_authorization_accepts(value: str) -> None:
    assert parse_authorization(value) == TOKEN


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f'Bearer token="{ENCODED}"', "scheme"),
        (f'PrivateToken nonce="{ENCODED}"', "one parameter"),
        (f'PrivateToken token="{ENCODED}", token="{ENCODED}"', "not `PrivateToken"),
        (f'PrivateToken token="{ENCODED}", extensions="AAA="', "not `PrivateToken"),
        (f'PrivateToken token="{ENCODED[:-8]}"', "Token is"),
        ('PrivateToken token=""', "Token"),
        (f'PrivateToken token="{ENCODED}" ' + " " * 1100, "over 1024"),
        ("PrivateToken", "not `PrivateToken"),
        (f'PrivateToken token="{ENCODED.replace("A", "+")}"', "not `PrivateToken"),
    ],
)
def test_authorization_refuses(value: str, message: str) -> None:
    with pytest.raises(PrivateTokenMalformed, match=message):
        parse_authorization(value)


def test_www_authenticate_names_challenge_and_key() -> None:
    challenge = TokenChallenge("anon_ticket", b"", ())
    value = www_authenticate(challenge, b"\x30\x01", max_age=60)
    assert value == (
        f'PrivateToken challenge="{b64url_encode(challenge.encode())}", token-key="MAE=", max-age=60'
    )


def test_the_worked_example_of_the_protocol_document() -> None:
    """docs/PROTOCOL.md §12 gives this challenge's bytes."""
    challenge = TokenChallenge("anon_ticket", b"", ())
    assert challenge.encode().hex() == "0002000b616e6f6e5f7469636b6574000000"
