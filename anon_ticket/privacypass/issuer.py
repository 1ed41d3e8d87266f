"""The issuer's one computation (RFC 9578 §6.2): a TokenRequest in, the 256-byte blind signature out.

Whether this buyer may have another signature, and remembering that it had one, is the service
layer's job; this only checks that the request is for our key and signs it (anon_ticket/privacypass/
blindrsa.py says how, and why by hand).
"""

from __future__ import annotations

from anon_ticket.errors import PrivateTokenMalformed
from anon_ticket.privacypass import blindrsa
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import TokenRequest


def blind_sign(key: IssuerKey, request: TokenRequest) -> bytes:
    """The TokenResponse for `request`: the blind signature, verified with the public key before it is
    returned. The same request always gets the same bytes (RSA signing is deterministic), so a retried
    request can be answered again at no risk.

    `PrivateTokenMalformed` for another key's request or a blinded message out of range;
    `PrivateTokenSigningFailed` if the computation was faulty (the value is never returned)."""
    if request.truncated_key_id != key.truncated_key_id:
        raise PrivateTokenMalformed(
            f"the TokenRequest is for key id ..{request.truncated_key_id:02x}; this issuer's key is"
            f" ..{key.truncated_key_id:02x}"
        )
    return blindrsa.blind_sign(key.crt, request.blinded_msg)
