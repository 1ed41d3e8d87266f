"""The wallet: reachable, view-only, synced with its daemon, and the one the database is bound to.

**View-only, without the spend key.** monero-wallet-rpc's `describe_transfer` (src/wallet/
wallet_rpc_server.cpp, 0.18) checks, in this order: no wallet open (-13), restricted RPC (-7), a
hardware wallet (-1 "command not supported by HW wallet"), a watch-only wallet (-29
WALLET_RPC_ERROR_CODE_WATCH_ONLY), and only then whether a transaction set was given (-1 "no txset
provided"). Called with no transaction set at all it therefore answers with an error whichever kind
of wallet it is, and never returns anything: -29 means view-only; "no txset provided" means the
wallet holds a spend key. No key is ever asked for (`query_key spend_key` would return the key of a
wallet that can spend), so none can reach a log, an error or this process's memory.

**Synced.** monero-wallet-rpc does not tell its daemon's height, so the wallet's `get_height` is
compared with monerod's `get_block_count` at `--monerod URL` (the daemon the wallet uses; by default
monerod's own default, 127.0.0.1:18081). Without an answer there, the comparison is skipped, saying so.
"""

from __future__ import annotations

import json
import urllib.parse

import requests

from anon_ticket.commands.check.report import Finding, ok, problem, skipped, warning
from anon_ticket.config import Config
from anon_ticket.errors import WalletRpcError, WalletUnreachable
from anon_ticket.wallet.rpc import NO_WALLET_OPEN, WalletRpc

WATCH_ONLY = -29
DENIED = -7
NO_TXSET = "no txset provided"
HW_WALLET = "HW wallet"
# A wallet refreshes every 20 s by default and a block comes every 2 minutes: one or two blocks behind
# is a wallet between refreshes, more is a wallet that is not keeping up.
BEHIND_TOLERATED = 2
CHECK_TIMEOUT_SECS = 10.0
VIEW_ONLY_FIX = (
    "serve a view-only copy instead: monero-wallet-cli --generate-from-view-key (the primary address "
    "and the secret view key), open that one in monero-wallet-rpc, and keep the spend key off this "
    "machine (docs/OPERATIONS.md, 'The view-only wallet')"
)


def check(config: Config, bound_address: str | None, monerod_url: str) -> list[Finding]:
    wallet = WalletRpc(
        config.monero_rpc_url,
        timeout=min(config.monero_rpc_timeout_secs, CHECK_TIMEOUT_SECS),
        max_response_bytes=config.monero_rpc_max_response_bytes,
        user=config.monero_rpc_user,
        password=config.monero_rpc_password.reveal() if config.monero_rpc_password else None,
    )
    try:
        return _check(wallet, config, bound_address, monerod_url)
    finally:
        wallet.close()


def _check(wallet: WalletRpc, config: Config, bound_address: str | None, monerod_url: str) -> list[Finding]:
    where = config.monero_rpc_url
    try:
        address = _primary_address(wallet, config)
    except WalletUnreachable as exc:
        return [
            problem(
                "wallet",
                f"monero-wallet-rpc does not answer at {where} ({exc})",
                "start monero-wallet-rpc (docs/OPERATIONS.md) and check MONERO_RPC_URL, MONERO_RPC_USER "
                "and MONERO_RPC_PASSWORD",
            )
        ]
    except WalletRpcError as exc:
        fix = (
            "open the view-only wallet: monero-wallet-rpc --wallet-file FILE, or set MONERO_WALLET_FILE"
            if exc.rpc_code == NO_WALLET_OPEN
            else "see monero-wallet-rpc's log"
        )
        return [problem("wallet", f"monero-wallet-rpc at {where} answers an error: {exc}", fix)]
    findings = [ok("wallet", f"monero-wallet-rpc answers at {where}, primary address {_short(address)}")]
    findings.append(_view_only(wallet))
    findings.append(_synced(wallet, monerod_url))
    findings.append(_bound(address, bound_address))
    return findings


def _primary_address(wallet: WalletRpc, config: Config) -> str:
    """The wallet's address; opens MONERO_WALLET_FILE first if none is open, as the daemon does."""
    try:
        return wallet.primary_address()
    except WalletRpcError as exc:
        if exc.rpc_code != NO_WALLET_OPEN or config.monero_wallet_file is None:
            raise
    password = config.monero_wallet_password.reveal() if config.monero_wallet_password else ""
    wallet.open_wallet(config.monero_wallet_file, password)
    return wallet.primary_address()


def _view_only(wallet: WalletRpc) -> Finding:  # noqa: PLR0911 (one verdict per answer)
    subject = "wallet view-only"
    try:
        wallet.call("describe_transfer", {})
    except WalletRpcError as exc:
        text = str(exc)
        if exc.rpc_code == WATCH_ONLY:
            return ok(subject, "view-only: it refuses to sign (watch-only), it cannot spend")
        if NO_TXSET in text:
            return problem(
                subject, "not view-only: this wallet holds its spend key and can spend", VIEW_ONLY_FIX
            )
        if HW_WALLET in text:
            return problem(subject, "not view-only: a hardware wallet, which can spend", VIEW_ONLY_FIX)
        if exc.rpc_code == DENIED:
            return problem(
                subject,
                "cannot tell: monero-wallet-rpc runs with --restricted-rpc",
                "check the wallet file with monero-wallet-cli (`wallet_info` says 'Watch only'), "
                "or run check against it without --restricted-rpc",
            )
        return problem(subject, f"cannot tell ({text})", "see monero-wallet-rpc's log")
    except WalletUnreachable as exc:
        return problem(subject, f"cannot tell: {exc}", "see monero-wallet-rpc's log")
    return problem(subject, "cannot tell: describe_transfer answered without an error", VIEW_ONLY_FIX)


def _synced(wallet: WalletRpc, monerod_url: str) -> Finding:
    subject = "wallet synced"
    try:
        wallet_height = wallet.get_height()
    except (WalletRpcError, WalletUnreachable) as exc:
        return problem(subject, f"no height: {exc}", "see monero-wallet-rpc's log")
    daemon_height = _daemon_height(monerod_url)
    if daemon_height is None:
        return skipped(
            subject,
            f"wallet at height {wallet_height}; no monerod answers at {monerod_url} to compare with "
            "(give --monerod URL, the daemon monero-wallet-rpc's --daemon-address names)",
        )
    behind = daemon_height - wallet_height
    if behind > BEHIND_TOLERATED:
        return problem(
            subject,
            f"{behind} blocks behind its daemon (wallet {wallet_height}, monerod {daemon_height}): payments "
            "after its height are not seen yet",
            "let it catch up (it refreshes by itself; watch its get_height grow); if it does not move, "
            "check monero-wallet-rpc's --daemon-address and that monerod is synced",
        )
    if behind < 0:
        return warning(
            subject,
            f"the wallet ({wallet_height}) is ahead of monerod at {monerod_url} ({daemon_height})",
            "give --monerod the daemon this wallet uses",
        )
    return ok(subject, f"height {wallet_height}, monerod {daemon_height}")


def _daemon_height(monerod_url: str) -> int | None:
    url = (
        monerod_url
        if urllib.parse.urlsplit(monerod_url).path.endswith("json_rpc")
        else (monerod_url.rstrip("/") + "/json_rpc")
    )
    try:
        with requests.Session() as session:
            session.trust_env = False
            answer = session.post(
                url,
                json={"jsonrpc": "2.0", "id": "0", "method": "get_block_count"},
                timeout=CHECK_TIMEOUT_SECS,
            )
            count = answer.json()["result"]["count"]
    except (requests.RequestException, json.JSONDecodeError, KeyError, TypeError):
        return None
    return int(count) if isinstance(count, int) else None


def _bound(address: str, bound_address: str | None) -> Finding:
    subject = "wallet bound"
    if bound_address is None:
        return ok(
            subject, "the database is not bound yet: the daemon binds it to this wallet at its first poll"
        )
    if bound_address == address:
        return ok(subject, "the database is bound to this wallet's address")
    return problem(
        subject,
        f"the database is bound to {_short(bound_address)}, the wallet is {_short(address)}: the daemon "
        "would refuse to poll it",
        "point MONERO_RPC_URL (or MONERO_WALLET_FILE) at this shop's own view-only wallet, or use a new "
        "database for a new wallet",
    )


def _short(address: str) -> str:
    return f"{address[:8]}…{address[-6:]}" if len(address) > 20 else address
