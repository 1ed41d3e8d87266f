"""`GET /api/v1/info` (docs/PROTOCOL.md §4): what a buyer needs to know before paying."""

from __future__ import annotations

from anon_ticket.actors.published import PublishedState
from anon_ticket.core.domain import PAYMENT_ID_SCHEME
from anon_ticket.errors import Unavailable


class PublicInfo:
    def __init__(self, published: PublishedState, min_payment_amount: int, min_confirmations: int) -> None:
        self._published = published
        self._min_payment_amount = min_payment_amount
        self._min_confirmations = min_confirmations

    def body(self) -> dict[str, object]:
        """The info body; Unavailable (503) until the wallet's address is known."""
        # Published by the wallet poller alone (the stored address at its start, then the wallet's).
        address = self._published.primary_address
        if address is None:
            raise Unavailable("the wallet's address is not known yet", component="wallet")
        return {
            "primary_address": address,
            "min_payment_amount": self._min_payment_amount,
            "required_confirmations": self._min_confirmations,
            "payment_id_scheme": PAYMENT_ID_SCHEME,
        }
