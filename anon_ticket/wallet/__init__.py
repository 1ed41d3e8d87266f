"""Talking to monero-wallet-rpc: the JSON-RPC client (`rpc`), one bounded exchange (`transport`), and
turning a `get_transfers` answer into the changes a poll applies (`ingest`). No thread or database
here: the wallet poller actor drives it.
"""
