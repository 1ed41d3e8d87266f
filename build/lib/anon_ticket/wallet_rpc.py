"""A small, strict client of monero-wallet-rpc's JSON-RPC.

Every call has a timeout (a wallet that is refreshing blocks all callers). Failures come out as two
kinds: `WalletUnreachable` (no answer, a timeout, HTTP errors, anything that is not JSON-RPC) and
`WalletRpcError` (the wallet answered with an error, e.g. -13 when no wallet is open).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import HTTPDigestAuth

from anon_ticket.errors import WalletRpcError, WalletUnreachable

NO_WALLET_OPEN = -13


class WalletRpc:
    """Not thread-safe (one `requests.Session`): owned by the wallet poller's thread."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # a proxy meant for the buyer's Tor must never carry this
        if user is not None:
            self._session.auth = HTTPDigestAuth(user, password or "")
        self._next_id = 0

    def close(self) -> None:
        self._session.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        payload = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        try:
            response = self._session.post(self.url, json=payload, timeout=self.timeout)
        except requests.Timeout as exc:
            raise WalletUnreachable(f"{method}: no answer within {self.timeout:g} s") from exc
        except requests.RequestException as exc:
            raise WalletUnreachable(f"{method}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise WalletUnreachable(f"{method}: HTTP {response.status_code}")
        try:
            body = response.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise WalletUnreachable(f"{method}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise WalletUnreachable(f"{method}: the answer is not a JSON-RPC object")
        error = body.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise WalletRpcError(f"{method}: {message}", code if isinstance(code, int) else None)
        result = body.get("result")
        if not isinstance(result, dict):
            raise WalletUnreachable(f"{method}: the answer has no result object")
        return result

    def get_height(self) -> int:
        height = self.call("get_height").get("height")
        if not isinstance(height, int) or isinstance(height, bool) or not 0 <= height < 2**63:
            raise WalletUnreachable("get_height: no height in the answer")
        return height

    def primary_address(self) -> str:
        address = self.call("get_address", {"account_index": 0}).get("address")
        if not isinstance(address, str) or not address:
            raise WalletUnreachable("get_address: no address in the answer")
        return address

    def refresh(self) -> None:
        self.call("refresh")

    def get_transfers(self, min_height: int) -> dict[str, Any]:
        return self.call(
            "get_transfers",
            {
                "in": True,
                "pool": True,
                "filter_by_height": True,
                "min_height": min_height,
                "account_index": 0,
            },
        )

    def open_wallet(self, filename: str, password: str) -> None:
        self.call("open_wallet", {"filename": filename, "password": password})
