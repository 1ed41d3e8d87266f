"""The gateway's side of Privacy Pass (docs/PROTOCOL.md §12, §13): a token spent once is a session.

The verification and the durable, once-across-nodes spend are the issuer service's
(`anon_ticket/service/private_tokens.py`); this module turns its results into the gateway's reasons
and builds the RFC 9577 challenge that every 401 carries first.
"""

from __future__ import annotations

from anon_ticket.access.decision import Reason
from anon_ticket.errors import AnonTicketError
from anon_ticket.privacypass.wire import AUTH_SCHEME, Token
from anon_ticket.service.private_tokens import PrivateTokens, SpendResult

_REFUSALS = {
    SpendResult.SPENT: None,
    SpendResult.ALREADY_SPENT: Reason.TOKEN_SPENT,
    SpendResult.INVALID: Reason.INVALID_TOKEN,
}


class PrivateTokenSpender:
    """Callable from any request thread: `spender(token)` is None when spent now, else the reason."""

    def __init__(self, issuer: PrivateTokens) -> None:
        self._issuer = issuer

    def __call__(self, token: Token) -> Reason | None:
        try:
            return _REFUSALS[self._issuer.spend_token(token)]
        except AnonTicketError:  # the spend could not be made durable (storage): fail closed
            return Reason.UNAVAILABLE

    @property
    def challenge(self) -> str:
        """`WWW-Authenticate: PrivateToken challenge="…", token-key="…"` (RFC 9577 §2.1), the value."""
        issuer = self._issuer
        return f'{AUTH_SCHEME} challenge="{issuer.encoded_challenge}", token-key="{issuer.token_key}"'
