"""The token key's public form: a SubjectPublicKeyInfo naming RSASSA-PSS with SHA-384, MGF1-SHA-384
and a 48-byte salt (RFC 9578 §6.5), and its SHA-256, the key id.

`cryptography` writes and reads an RSA public key under the rsaEncryption identifier only. The two
forms differ in the AlgorithmIdentifier alone; the BIT STRING (the PKCS#1 RSAPublicKey) is the same.
So we write the fixed RSASSA-PSS identifier ourselves, exactly the DER the reference implementation
produces (privacypass-ts `util.convertEncToRSASSAPSS`, and RFC 9578's test vectors' `pkS`: the hash
AlgorithmIdentifiers carry no NULL parameters), and let `cryptography` parse the RSAPublicKey inside.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from anon_ticket.errors import PrivateTokenMalformed

KEY_BITS = 2048

# AlgorithmIdentifier { id-RSASSA-PSS, RSASSA-PSS-params { hashAlgorithm [0] sha384,
#   maskGenAlgorithm [1] { id-mgf1, sha384 }, saltLength [2] 48 } } (RFC 4055 §3.1, DER).
RSASSA_PSS_SHA384_ALGORITHM = bytes.fromhex(
    "303d06092a864886f70d01010a3030a00d300b0609608648016503040202"
    "a11a301806092a864886f70d010108300b0609608648016503040202a203020130"
)
# AlgorithmIdentifier { rsaEncryption, NULL }: what `cryptography` writes and reads.
_RSA_ENCRYPTION_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_SEQUENCE = 0x30
_BIT_STRING = 0x03


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


def _spki(algorithm: bytes, rsa_public_key_der: bytes) -> bytes:
    return _der(_SEQUENCE, algorithm + _der(_BIT_STRING, b"\x00" + rsa_public_key_der))


def rsassa_pss_spki(public_key: rsa.RSAPublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of `public_key` with the RSASSA-PSS identifier of RFC 9578 §6.5."""
    pkcs1 = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return _spki(RSASSA_PSS_SHA384_ALGORITHM, pkcs1)


def key_id(spki: bytes) -> bytes:
    """The token key id: SHA-256 of the SPKI (RFC 9578 §6.5)."""
    return hashlib.sha256(spki).digest()


def _tlv(data: bytes, offset: int, tag: int) -> tuple[int, int]:
    """(start, end) of the content of the DER element of `tag` at `offset`; `PrivateTokenMalformed`
    if there is none (the caller checks canonical form by re-encoding)."""
    if data[offset : offset + 1] != bytes((tag,)) or offset + 2 > len(data):
        raise PrivateTokenMalformed("the token key is not a DER SubjectPublicKeyInfo")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if not 1 <= size <= 3:
            raise PrivateTokenMalformed("the token key is not a DER SubjectPublicKeyInfo")
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    if start + length > len(data):
        raise PrivateTokenMalformed("the token key is truncated")
    return start, start + length


def public_key_from_spki(spki: bytes) -> rsa.RSAPublicKey:
    """The RSA-2048 public key of a token key in exactly the RFC 9578 §6.5 form; anything else (another
    identifier or parameters, another size, non-canonical DER, trailing bytes) is `PrivateTokenMalformed`."""
    if not isinstance(spki, bytes):
        raise PrivateTokenMalformed("the token key must be bytes")
    start, end = _tlv(spki, 0, _SEQUENCE)
    if not spki.startswith(RSASSA_PSS_SHA384_ALGORITHM, start):
        raise PrivateTokenMalformed(
            "the token key is not an RSASSA-PSS (SHA-384, salt 48) SubjectPublicKeyInfo"
        )
    bits_start, bits_end = _tlv(spki, start + len(RSASSA_PSS_SHA384_ALGORITHM), _BIT_STRING)
    if spki[bits_start : bits_start + 1] != b"\x00":
        raise PrivateTokenMalformed("the token key's BIT STRING is not whole bytes")
    try:
        public_key = serialization.load_der_public_key(
            _spki(_RSA_ENCRYPTION_ALGORITHM, spki[bits_start + 1 : bits_end])
        )
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateTokenMalformed("the token key does not hold an RSA public key") from None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != KEY_BITS:
        raise PrivateTokenMalformed(f"the token key is not an RSA-{KEY_BITS} key")
    # Re-encoding catches every other difference: lengths, trailing bytes, non-minimal integers.
    if end != len(spki) or rsassa_pss_spki(public_key) != spki:
        raise PrivateTokenMalformed("the token key is not in canonical DER form")
    return public_key
