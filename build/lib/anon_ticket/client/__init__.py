"""The buyer's client: make a PID and its integrated address offline, then redeem it for a token.

Usable as a library (`ClientSession`, `PrimaryAddress`, `integrated_address`) and as the
`client new` / `client redeem` commands (`anon_ticket.client.cli.main`). Nothing here runs at import.
"""

from anon_ticket.client.address import Network, PrimaryAddress, integrated_address
from anon_ticket.client.answers import Claimed, NotSeen, Pending, RedeemAnswer, Refused, ServerInfo
from anon_ticket.client.api import ClientSession
from anon_ticket.client.waiting import Waiting

__all__ = [
    "Claimed",
    "ClientSession",
    "Network",
    "NotSeen",
    "Pending",
    "PrimaryAddress",
    "RedeemAnswer",
    "Refused",
    "ServerInfo",
    "Waiting",
    "integrated_address",
]
