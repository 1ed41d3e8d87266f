"""The buyer's side of issuance (RFC 9578 §6.1, §6.3): a TokenRequest to send, then the token.

`prepare` picks a random nonce, encodes the token's authenticator input with EMSA-PSS (random 48-byte
salt, anon_ticket/privacypass/pss.py) and blinds it with a random r; the issuer sees only the blinded
number. `PendingToken.finalize` unblinds the issuer's answer and verifies the signature with
`cryptography` before it makes a token of it, so a wrong answer (or a wrong encoding of ours) never
becomes a token that an origin would refuse.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from anon_ticket.errors import PrivateTokenIssuerAnswer, PrivateTokenMalformed
from anon_ticket.privacypass import blindrsa
from anon_ticket.privacypass.origin import verify_signature
from anon_ticket.privacypass.pss import SALT_LENGTH, emsa_pss_encode
from anon_ticket.privacypass.spki import key_id, public_key_from_spki
from anon_ticket.privacypass.wire import NONCE_LENGTH, Token, TokenChallenge, TokenRequest

_TYPE = (2).to_bytes(2, "big")


@dataclass(frozen=True, repr=False)
class PendingToken:
    """What the client keeps between request and answer. The nonce and the blind's inverse are what
    make the token unlinkable, so its repr shows neither (only the key id); plain bytes and ints, so it
    can be pickled for a client that keeps requests across a restart."""

    token_key: bytes
    nonce: bytes
    challenge_digest: bytes
    token_key_id: bytes
    blind_inverse: int

    def __repr__(self) -> str:
        return f"PendingToken(token_key_id={self.token_key_id.hex()})"

    def authenticator_input(self) -> bytes:
        return _TYPE + self.nonce + self.challenge_digest + self.token_key_id

    def finalize(self, blind_signature: bytes) -> Token:
        """The token for the issuer's `blind_signature` (the TokenResponse body): unblinded, then
        verified with the token key. `PrivateTokenIssuerAnswer` if it does not verify (or is not
        256 bytes). Any bytes may arrive here, so `blind_signature` is checked for type as well."""
        if not isinstance(blind_signature, bytes):
            raise PrivateTokenIssuerAnswer("the issuer's answer is not bytes")
        public = public_key_from_spki(self.token_key)
        try:
            signature = blindrsa.unblind(public.public_numbers(), blind_signature, self.blind_inverse)
        except PrivateTokenMalformed as exc:  # the answer's length or range: the issuer's fault
            raise PrivateTokenIssuerAnswer(f"the issuer's answer is not a blind signature: {exc}") from None
        if not verify_signature(public, signature, self.authenticator_input()):
            raise PrivateTokenIssuerAnswer("the issuer's blind signature does not verify with its token key")
        return Token(self.nonce, self.challenge_digest, self.token_key_id, signature)


def prepare(spki: bytes, challenge: TokenChallenge) -> tuple[TokenRequest, PendingToken]:
    """A TokenRequest for one token of `challenge` under the token key `spki`, and what `finalize`
    needs. `PrivateTokenMalformed` if `spki` is not an RFC 9578 §6.5 RSA-2048 token key."""
    public = public_key_from_spki(spki)
    r, _ = blindrsa.new_blind(public.public_numbers().n)
    return prepare_with(
        spki, challenge, secrets.token_bytes(NONCE_LENGTH), secrets.token_bytes(SALT_LENGTH), r
    )


def prepare_with(
    spki: bytes, challenge: TokenChallenge, nonce: bytes, salt: bytes, r: int
) -> tuple[TokenRequest, PendingToken]:
    """`prepare` with its random choices given: the nonce, the PSS salt and the blind r. For test
    vectors; real requests go through `prepare`, which draws all three fresh."""
    public = public_key_from_spki(spki).public_numbers()
    if len(nonce) != NONCE_LENGTH or len(salt) != SALT_LENGTH:
        raise ValueError(f"the nonce must be {NONCE_LENGTH} bytes and the salt {SALT_LENGTH}")
    pending = PendingToken(
        token_key=spki,
        nonce=nonce,
        challenge_digest=challenge.digest(),
        token_key_id=key_id(spki),
        blind_inverse=int(pow(r, -1, public.n)),
    )
    encoded = emsa_pss_encode(pending.authenticator_input(), public.n.bit_length() - 1, salt)
    request = TokenRequest(pending.token_key_id[-1], blindrsa.blind(public, encoded, r))
    return request, pending
