"""`python -m anon_ticket demo pay ADDRESS XMR`: pay from the running demo's payer wallet.

So that someone trying the buyer's page needs no Monero wallet of their own. It finds the demo by its
state file (`anon_ticket.demo.state`) and asks the payer's monero-wallet-rpc for one `transfer`; it
exits once the transfer is sent (in the pool), and the demo's mining confirms it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TextIO

import requests

from anon_ticket.demo import state
from anon_ticket.demo.chain import json_rpc
from anon_ticket.errors import ChainRpcError, DemoError

ATOMIC_PER_XMR = 10**12


def atomic_units(xmr: str) -> int:
    """'0.1' → 100000000000; `DemoError` for anything that is not a positive amount of XMR."""
    try:
        amount = Decimal(xmr)
    except InvalidOperation:
        raise DemoError(f"{xmr!r} is not an amount of XMR (e.g. 0.1)") from None
    atomic = amount * ATOMIC_PER_XMR
    if not amount.is_finite() or amount <= 0 or atomic != atomic.to_integral_value():
        raise DemoError(f"{xmr!r} is not an amount of XMR above 0 with at most 12 decimals")
    return int(atomic)


def pay(address: str, xmr: str, *, out: TextIO = sys.stdout, environ: Mapping[str, str] = os.environ) -> str:
    """Send `xmr` to `address` from the demo's payer; the txid."""
    amount = atomic_units(xmr)
    demo = state.read(environ)
    try:
        result = json_rpc(
            demo.payer_url,
            "transfer",
            {"destinations": [{"amount": amount, "address": address}], "priority": 0},
            timeout=60.0,
        )
    except ChainRpcError as exc:
        raise DemoError(f"the demo's wallet refused the payment: {exc.message}") from None
    except requests.RequestException as exc:
        raise DemoError(f"the demo's wallet cannot be reached ({exc}); is the demo still running?") from None
    txid = str(result.get("tx_hash", ""))
    print(
        f"sent {Decimal(amount) / ATOMIC_PER_XMR} XMR to {address[:12]}… in transaction {txid};"
        f" a block is mined every {demo.block_secs:g} s, watch {demo.public_url}/",
        file=out,
        flush=True,
    )
    return txid
