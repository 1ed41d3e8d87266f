"""A small, strict client of monero-wallet-rpc's JSON-RPC.

Every call has a deadline on the whole exchange and a cap on the size of the answer (see
`transport`, docs/PROTOCOL.md §9): a wallet that is refreshing, hung, dripping bytes or flooding
cannot hold the poller. Failures come out as two kinds: `WalletUnreachable` (no answer in time, HTTP
errors, an answer too big, anything that is not JSON-RPC) and `WalletRpcError` (the wallet answered
with an error, e.g. -13 when no wallet is open). Messages are cut to `MAX_ERROR_CHARS`: they are
shown in /api/v1/status and logged, and a wallet controls their text.
"""

from __future__ import annotations

import json
from typing import Any

from anon_ticket.config import DEFAULT_MAX_RESPONSE_BYTES
from anon_ticket.errors import WalletRpcError, WalletUnreachable
from anon_ticket.wallet.transport import WalletHttp

NO_WALLET_OPEN = -13
MAX_ERROR_CHARS = 500
# `open_wallet` loads and decrypts the wallet file before it answers: measured here (monero 0.18, the
# small regtest wallet) about 2 s of CPU, 3-9 s on a loaded 2-core machine and over 10 s under heavier
# load; a real wallet with years of transfers takes longer. The per-call deadline is sized for quick
# queries, so this call waits at least this long. A stop still abandons it at once (`abort`).
OPEN_WALLET_TIMEOUT_SECS = 120.0


def cut(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` at most `limit` characters long, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WalletRpc:
    """Not thread-safe (one connection): owned by the wallet poller's thread, except `abort()`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._http = WalletHttp(
            url, timeout=timeout, max_response_bytes=max_response_bytes, user=user, password=password
        )
        self._next_id = 0

    def __repr__(self) -> str:
        return f"WalletRpc({self.url!r}, timeout={self.timeout:g})"

    def close(self) -> None:
        self._http.close()

    def abort(self) -> None:
        """From any thread: abandon the call in flight and refuse every later one (daemon stop)."""
        self._http.abort()

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """`timeout`: this call's deadline instead of the client's (see `open_wallet`)."""
        self._next_id += 1
        payload = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        raw = self._http.post(json.dumps(payload).encode("utf-8"), method, timeout)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise WalletUnreachable(f"{method}: the answer is not JSON") from exc
        finally:
            del raw
        if not isinstance(body, dict):
            raise WalletUnreachable(f"{method}: the answer is not a JSON-RPC object")
        error = body.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise WalletRpcError(cut(f"{method}: {message}"), code if isinstance(code, int) else None)
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
        """Open `filename` in a wallet-rpc that has none open (-13), waiting as long as loading takes.

        Given up at the ordinary deadline, the open would still complete in wallet-rpc, unseen: the
        daemon would report a failure that did not happen and back off longer before its next poll.
        """
        self.call(
            "open_wallet",
            {"filename": filename, "password": password},
            timeout=max(self.timeout, OPEN_WALLET_TIMEOUT_SECS),
        )
