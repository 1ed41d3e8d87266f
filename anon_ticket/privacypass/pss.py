"""EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with MGF1 (§B.2.1): the step of RSA-PSS signing that comes
before the private-key operation.

Why by hand: a blind signature needs the encoded message *before* the RSA operation (the client
blinds it, RFC 9474 §4.2), and `cryptography` only signs whole messages; it has no call that returns
the encoding. It is checked three ways: the RFC 9474 vectors (`encoded_msg`), RFC 8017's PSS vectors,
and every token the client finalises is verified with `cryptography`'s RSA-PSS verify
(anon_ticket/privacypass/client.py), so a wrong encoding can never produce a token.
"""

from __future__ import annotations

import hashlib

# RFC 9578 token type 2 = RSABSSA-SHA384-PSS-Deterministic: SHA-384, MGF1-SHA-384, 48-byte salt.
HASH = "sha384"
SALT_LENGTH = 48


class EncodingError(ValueError):
    """The modulus is too short for this hash and salt (RFC 8017 §9.1.1 step 3): a programming error."""


def mgf1(seed: bytes, length: int, hash_name: str = HASH) -> bytes:
    """MGF1 mask of `length` bytes from `seed` (RFC 8017 §B.2.1)."""
    digest_size = hashlib.new(hash_name).digest_size
    blocks = (length + digest_size - 1) // digest_size
    mask = b"".join(
        hashlib.new(hash_name, seed + counter.to_bytes(4, "big")).digest() for counter in range(blocks)
    )
    return mask[:length]


def emsa_pss_encode(message: bytes, em_bits: int, salt: bytes, hash_name: str = HASH) -> bytes:
    """The encoded message EM of `em_bits` bits (modulus bits - 1) for `message` with `salt`."""
    digest = hashlib.new(hash_name)
    h_len = digest.digest_size
    em_len = (em_bits + 7) // 8
    if em_len < h_len + len(salt) + 2:
        raise EncodingError("encoding error: the modulus is too short for this hash and salt")
    m_hash = hashlib.new(hash_name, message).digest()
    h = hashlib.new(hash_name, b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - len(salt) - h_len - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, mgf1(h, em_len - h_len - 1, hash_name), strict=True))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"
