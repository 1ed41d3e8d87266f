"""Monero's base58: not Bitcoin's.

Monero cuts the data into 8-byte blocks and encodes each one on its own into a fixed number of
characters (11 for a full block, fewer for the last, shorter block), so an address has a fixed length
and leading zero bytes are not special. Decoding is strict: a block whose value does not fit its byte
count, a length no block can have, or a character outside the alphabet is an error, so every byte
string has exactly one text form.
"""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
FULL_BLOCK_BYTES = 8
FULL_BLOCK_CHARS = 11
# Characters used by a block of 0..8 bytes (cryptonote's encoded_block_sizes).
ENCODED_BLOCK_CHARS = (0, 2, 3, 5, 6, 7, 9, 10, 11)

_DIGIT = {char: value for value, char in enumerate(ALPHABET)}
_BLOCK_BYTES_FOR_CHARS = {chars: nbytes for nbytes, chars in enumerate(ENCODED_BLOCK_CHARS)}


class Base58Error(ValueError):
    """The text is not Monero base58."""


def encode(data: bytes) -> str:
    return "".join(
        _encode_block(data[start : start + FULL_BLOCK_BYTES])
        for start in range(0, len(data), FULL_BLOCK_BYTES)
    )


def decode(text: str) -> bytes:
    return b"".join(
        _decode_block(text[start : start + FULL_BLOCK_CHARS])
        for start in range(0, len(text), FULL_BLOCK_CHARS)
    )


def _encode_block(block: bytes) -> str:
    value = int.from_bytes(block, "big")
    chars = []
    for _ in range(ENCODED_BLOCK_CHARS[len(block)]):
        value, digit = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _decode_block(chunk: str) -> bytes:
    nbytes = _BLOCK_BYTES_FOR_CHARS.get(len(chunk))
    if nbytes is None:
        raise Base58Error(f"a final block of {len(chunk)} characters is impossible")
    value = 0
    for char in chunk:
        digit = _DIGIT.get(char)
        if digit is None:
            raise Base58Error(f"{char!r} is not a base58 character")
        value = value * len(ALPHABET) + digit
    if value >> (8 * nbytes):
        raise Base58Error(f"block {chunk!r} overflows {nbytes} bytes")
    return value.to_bytes(nbytes, "big")
