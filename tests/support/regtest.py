"""A private Monero regtest chain for end-to-end tests: the package's own (`anon_ticket/demo/chain.py`),
the one the demo runs, so the suite proves the chain a newcomer starts with `scripts/demo`.

    chain = RegtestChain.start(tmp_path)
    try:
        integrated = chain.merchant.make_integrated_address("0123456789abcdef")
        txid = chain.payer.transfer(integrated, 10**12)
        chain.mine(1)
        chain.sync_wallets()
    finally:
        chain.stop()
"""

from anon_ticket.demo.chain import (
    MONEROD,
    PREMINE_BLOCKS,
    START_TIMEOUT,
    WALLET_RPC,
    RegtestChain,
    WalletRpc,
    free_ports,
    json_rpc,
    missing_binaries,
)
from anon_ticket.errors import ChainRpcError as RpcCallError

__all__ = [
    "MONEROD",
    "PREMINE_BLOCKS",
    "START_TIMEOUT",
    "WALLET_RPC",
    "RegtestChain",
    "RpcCallError",
    "WalletRpc",
    "free_ports",
    "json_rpc",
    "missing_binaries",
]
