"""Monero base58 against the vectors of cryptonote's own unit tests (tests/unit_tests/base58.cpp)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.client import base58

VECTORS = [
    ("", ""),
    ("00", "11"),
    ("39", "1z"),
    ("ff", "5Q"),
    ("0000", "111"),
    ("0039", "11z"),
    ("0100", "15R"),
    ("ffff", "LUv"),
    ("000000", "11111"),
    ("000039", "1111z"),
    ("010000", "11LUw"),
    ("ffffff", "2UzHL"),
    ("00000039", "11111z"),
    ("ffffffff", "7YXq9G"),
    ("0000000039", "111111z"),
    ("ffffffffff", "VtB5VXc"),
    ("000000000039", "11111111z"),
    ("ffffffffffff", "3CUsUpv9t"),
    ("00000000000039", "111111111z"),
    ("ffffffffffffff", "Ahg1opVcGW"),
    ("0000000000000039", "1111111111z"),
    ("ffffffffffffffff", "jpXCZedGfVQ"),
    ("0000000000000000", "11111111111"),
    ("0000000000000001", "11111111112"),
    ("0000000000000008", "11111111119"),
    ("0000000000000009", "1111111111A"),
    ("000000000000003a", "11111111121"),
    ("00ffffffffffffff", "1Ahg1opVcGW"),
    ("06156013762879f7", "22222222222"),
    ("05e022ba374b2a00", "1z111111111"),
    ("06156013762879f7ffffffffff", "22222222222VtB5VXc"),
    ("00000000000000000000000000000000", "1111111111111111111111"),
]


@pytest.mark.parametrize(("hex_data", "text"), VECTORS)
def test_vectors_encode_and_decode(hex_data: str, text: str) -> None:
    assert base58.encode(bytes.fromhex(hex_data)) == text
    assert base58.decode(text) == bytes.fromhex(hex_data)


@pytest.mark.parametrize(
    "text",
    [
        "1",  # a 1-character final block is impossible
        "1111",  # 4
        "11111111",  # 8
        "111111111111",  # 11 + 1
        "5R",  # 256 does not fit 1 byte
        "zz",
        "LUw",  # 65536 does not fit 2 bytes
        "jpXCZedGfVR",  # 2^64 does not fit 8 bytes
        "zzzzzzzzzzz",
        "0111111111",  # 0, O, I and l are not in the alphabet
        "O1",
        "I1",
        "l1",
        "1 ",
        "１１",  # fullwidth digits
    ],
)
def test_rejects_non_canonical_or_foreign_text(text: str) -> None:
    with pytest.raises(base58.Base58Error):
        base58.decode(text)


@given(st.binary(max_size=100))
def test_round_trip_and_length(data: bytes) -> None:
    text = base58.encode(data)
    full, rest = divmod(len(data), 8)
    assert len(text) == 11 * full + base58.ENCODED_BLOCK_CHARS[rest]
    assert base58.decode(text) == data
