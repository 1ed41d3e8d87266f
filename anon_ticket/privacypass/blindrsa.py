"""The RSA arithmetic of RSA blind signatures (RFC 9474 §4): BlindSign on the issuer's side, Blind and
the unblinding step of Finalize on the client's.

Why by hand: no well-kept Python library exposes RSASP1, the raw private-key operation on a message
that is not ours to pad; `cryptography` signs only messages it encodes itself. So this is the one
hand-written step, kept small and defended:

- every modular exponentiation is `gmpy2.powmod_sec` (GMP's `mpz_powm_sec`, constant time in the
  exponent and the base);
- the private operation runs on a *blinded* input: a fresh random r per call, (m·r^e)^d·r^-1, so its
  timing does not depend on the attacker's chosen m; the inverse of r is itself computed on a blinded
  value (see `_blinded_inverse`);
- CRT with p and q (twice as fast), and the result is checked with the public exponent before it is
  returned (RFC 9474 §4.3: a fault in the computation would otherwise hand out a value that leaks a
  factor of n);
- RFC 9474 Appendix A's vectors and RFC 9578's type-2 vectors reproduce bit for bit
  (tests/privacypass/test_vectors.py).
"""

from __future__ import annotations

import secrets
from typing import NoReturn

import gmpy2
from cryptography.hazmat.primitives.asymmetric import rsa

from anon_ticket.errors import PrivateTokenMalformed, PrivateTokenSigningFailed


class PrivateCrt:
    """The private values BlindSign needs (n, e, p, q, d mod p-1, d mod q-1, q^-1 mod p).

    Its repr names nothing, and it refuses to be pickled or copied, so the numbers cannot leak into a
    log line, a traceback's locals printout or a file by accident.
    """

    __slots__ = ("_dp", "_dq", "_e", "_n", "_p", "_q", "_qinv", "_size")

    def __init__(self, numbers: rsa.RSAPrivateNumbers) -> None:
        public = numbers.public_numbers
        self._n = public.n
        self._e = public.e
        self._p = numbers.p
        self._q = numbers.q
        self._dp = numbers.dmp1
        self._dq = numbers.dmq1
        self._qinv = numbers.iqmp
        self._size = (public.n.bit_length() + 7) // 8

    @property
    def modulus_bytes(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return "<RSA private key: hidden>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an RSA private key is never pickled or copied")


def _random_unit(n: int) -> int:
    """A uniform r in [2, n) (rejection sampling); coprime to n except with negligible probability,
    which the caller's inversion catches."""
    while True:
        r = secrets.randbelow(n)
        if r > 1:
            return r


def _blinded_inverse(r: int, n: int) -> int:
    """r^-1 mod n without running the (variable-time) extended Euclid on r itself: invert r·u for a
    random u, then multiply by u, so the inversion only ever sees a uniformly random value.
    ZeroDivisionError when r·u shares a factor with n (probability ~2^-1023): draw another r."""
    u = _random_unit(n)
    return int(gmpy2.invert(r * u % n, n)) * u % n


def blind_sign(key: PrivateCrt, blinded_msg: bytes) -> bytes:
    """RFC 9474 BlindSign: s = m^d mod n for the blinded message m, checked with e before it is returned.

    `PrivateTokenMalformed` when m is not in (0, n) or not of the modulus' length;
    `PrivateTokenSigningFailed` when the result does not verify (never returned)."""
    if len(blinded_msg) != key.modulus_bytes:
        raise PrivateTokenMalformed(f"the blinded message must be {key.modulus_bytes} bytes")
    n, e = key._n, key._e
    m = int.from_bytes(blinded_msg, "big")
    if not 0 < m < n:
        raise PrivateTokenMalformed("the blinded message is not a number between 0 and the modulus")
    r, r_inv = new_blind(n)
    blinded = m * int(gmpy2.powmod_sec(r, e, n)) % n
    s_p = int(gmpy2.powmod_sec(blinded % key._p, key._dp, key._p))
    s_q = int(gmpy2.powmod_sec(blinded % key._q, key._dq, key._q))
    h = key._qinv * (s_p - s_q) % key._p
    s = (s_q + h * key._q) * r_inv % n
    if int(gmpy2.powmod_sec(s, e, n)) != m:
        raise PrivateTokenSigningFailed(
            "the blind signature failed its check with the public key; it was not sent"
        )
    return s.to_bytes(key.modulus_bytes, "big")


def blind(public: rsa.RSAPublicNumbers, encoded_msg: bytes, r: int) -> bytes:
    """RFC 9474 Blind, steps 7-9: z = m·r^e mod n for the encoded message m and blind r."""
    n = public.n
    m = int.from_bytes(encoded_msg, "big")
    if not 0 <= m < n or not 0 < r < n:
        raise ValueError("the encoded message and the blind must be below the modulus")
    z = m * int(gmpy2.powmod_sec(r, public.e, n)) % n
    return z.to_bytes((n.bit_length() + 7) // 8, "big")


def new_blind(n: int) -> tuple[int, int]:
    """A fresh blind r, uniform in [2, n), and its inverse mod n (RFC 9474 Blind, steps 4-6)."""
    while True:
        r = _random_unit(n)
        try:
            return r, _blinded_inverse(r, n)
        except ZeroDivisionError:  # pragma: no cover - probability ~2^-1023
            continue


def unblind(public: rsa.RSAPublicNumbers, blind_sig: bytes, inv: int) -> bytes:
    """RFC 9474 Finalize, steps 2-4: s = z·inv mod n. The caller verifies s before using it."""
    n = public.n
    size = (n.bit_length() + 7) // 8
    if len(blind_sig) != size:
        raise PrivateTokenMalformed(f"the blind signature must be {size} bytes")
    z = int.from_bytes(blind_sig, "big")
    if not 0 < z < n:
        raise PrivateTokenMalformed("the blind signature is not a number between 0 and the modulus")
    return (z * inv % n).to_bytes(size, "big")
