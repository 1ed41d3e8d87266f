"""`python -m anon_ticket demo`: the whole purchase on one machine, in one command.

Starts a private regtest chain (monerod `--regtest --offline`, a merchant wallet whose view-only copy
the shop watches, a payer wallet with coins) and the daemon, all on loopback in one temporary folder;
prints the buyer's page first, then the admin panel and its sign-in; mines a block every few seconds
so confirmations come; and on SIGINT or SIGTERM stops every process it started (by pid) and removes
the folder. Each child also gets SIGTERM from the kernel if the demo itself is killed outright.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import TextIO, TypeAlias

from anon_ticket.demo import state
from anon_ticket.demo.chain import RegtestChain, missing_binaries
from anon_ticket.demo.shop import DemoShop
from anon_ticket.errors import DemoError

INSTALL_HINT = (
    "the demo runs a private Monero chain with monerod and monero-wallet-rpc, which are not installed: "
    "install the Debian package `monero` (sudo apt-get install monero), or run scripts/demo as root, "
    "which installs it"
)


Handlers: TypeAlias = dict[int, Callable[[int, FrameType | None], object] | int | None]


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived: leave whatever the demo is doing and clean up (a BaseException,
    like KeyboardInterrupt, so that no `except Exception` on the way swallows it)."""


def run(
    *,
    block_secs: float,
    confirmations: int,
    price: Decimal,
    out: TextIO = sys.stdout,
    environ: Mapping[str, str] = os.environ,
) -> int:
    missing = missing_binaries()
    if missing:
        raise DemoError(f"{', '.join(missing)} not found on PATH; {INSTALL_HINT}")
    try:
        running = state.read(environ)
    except DemoError:
        pass  # none runs: the usual case
    else:
        raise DemoError(
            f"a demo already runs (pid {running.pid}, {running.public_url}/): use that one, or stop it first"
        )
    stopping = threading.Event()
    previous = _on_stop_signals(stopping)
    folder = Path(tempfile.mkdtemp(prefix="anon_ticket-demo-"))  # mode 0700
    chain: RegtestChain | None = None
    shop: DemoShop | None = None
    started = time.monotonic()
    try:
        _say(out, f"starting a private regtest chain and the shop in {folder} (under a minute) …")
        shops: list[DemoShop] = []

        def open_shop(started_chain: RegtestChain) -> None:
            # Once the view-only wallet exists: the daemon starts while the chain mines its coins.
            shops.append(DemoShop(folder, started_chain, price=price, confirmations=confirmations))
            shops[0].spawn()

        try:
            chain = RegtestChain.start(
                folder / "chain", view_only_merchant=True, die_with_parent=True, on_wallets=open_shop
            )
        finally:
            shop = shops[0] if shops else None
        assert shop is not None
        shop.wait_selling()
        state.write(
            environ,
            state.DemoState(os.getpid(), str(folder), chain.payer.url, shop.public_url, block_secs),
        )
        took = time.monotonic() - started
        _welcome(out, shop, price, confirmations, block_secs, took, chain.timings.get("ready", took))
        return _mine_until_stopped(chain, shop, block_secs, stopping, out)
    except _Stop:
        return 0
    finally:
        _ignore_stop_signals()
        _say(out, "stopping the demo …")
        state.remove(environ, os.getpid())
        if shop is not None:
            shop.stop()
        if chain is not None:
            chain.stop()
        shutil.rmtree(folder, ignore_errors=True)
        _say(out, f"stopped; {folder} removed")
        _restore(previous)


def _welcome(
    out: TextIO,
    shop: DemoShop,
    price: Decimal,
    confirmations: int,
    block_secs: float,
    took: float,
    chain_took: float,
) -> None:
    _say(
        out,
        f"""
The shop is open after {took:.0f} s (the chain took {chain_took:.0f} s). It all runs on this machine;
no coin here is real.

  Buyer's page:  {shop.public_url}/
  Admin panel:   {shop.internal_url}/admin/
                 sign in with the internal API token {shop.token()}
                 (the file {shop.token_file})

Make a PID on the buyer's page, save it, and pay the address it shows ({price} XMR) from the demo's
own wallet with

  scripts/demo pay ADDRESS {price}        (or: python -m anon_ticket demo pay ADDRESS {price})

A block is mined every {block_secs:g} s; the token appears after {confirmations} confirmations.
Ctrl-C stops every process and removes the folder.""",
    )


def _mine_until_stopped(
    chain: RegtestChain, shop: DemoShop, block_secs: float, stopping: threading.Event, out: TextIO
) -> int:
    while not stopping.wait(block_secs):
        if not shop.running():
            _say(out, f"the daemon stopped unexpectedly; its log:\n{shop.tail()}")
            return 1
        try:
            chain.mine(1)
        except Exception as exc:  # monerod gone or wedged: the demo cannot go on
            _say(out, f"mining failed ({exc}); see {chain.workdir}/monerod.log")
            return 1
    return 0


def _on_stop_signals(stopping: threading.Event) -> Handlers:
    """SIGINT/SIGTERM: while starting, abandon the start at once; once serving, end the mining loop."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            raise _Stop

    previous: Handlers = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)
    return previous


def _ignore_stop_signals() -> None:
    """A second Ctrl-C must not cut the clean-up short and leave processes behind."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def _restore(previous: Handlers) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)
