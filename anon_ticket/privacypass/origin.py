"""Checking a token as an origin does (RFC 9578 §6.4): our key, our challenge, a valid RSA-PSS signature.

The signature check is `cryptography`'s RSASSA-PSS verify (SHA-384, MGF1-SHA-384, 48-byte salt):
a finalised token is an ordinary RSA-PSS signature over the token's authenticator input. Refusing a
second use of the nonce is the caller's job (the spend endpoint).
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.pss import SALT_LENGTH
from anon_ticket.privacypass.wire import Token, TokenChallenge

PSS_PADDING = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=SALT_LENGTH)


def verify_signature(public_key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48) of `message` under `public_key`."""
    try:
        public_key.verify(signature, message, PSS_PADDING, hashes.SHA384())
    except InvalidSignature:
        return False
    return True


def verify_token(key: IssuerKey, token: Token, challenge: TokenChallenge) -> bool:
    """Whether `token` is a type-2 token of `key` for `challenge`. False, never an exception, for a
    token of another key or challenge or with a bad signature. (The token type is checked when the
    bytes are decoded: a `Token` is always type 2.)"""
    if not hmac.compare_digest(token.token_key_id, key.key_id):
        return False
    if not hmac.compare_digest(token.challenge_digest, challenge.digest()):
        return False
    return verify_signature(key.public_key, token.authenticator, token.authenticator_input())
