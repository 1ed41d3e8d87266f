"""The `demo` command line: `demo [--block-secs S] [--confirmations N] [--price XMR]` and
`demo pay ADDRESS XMR`. Exit codes: 0 done (or stopped by Ctrl-C), 1 the demo failed or cannot run
(monerod missing, no demo running, a payment refused), 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal

import requests

from anon_ticket.demo import pay, run
from anon_ticket.errors import ChainRpcError, DemoError

EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anon_ticket demo",
        description="Run the whole shop on a private Monero regtest chain on this machine (monerod "
        "--regtest --offline, monero-wallet-rpc, the daemon; loopback only, in a temporary folder): "
        "prints the buyer's page and the admin panel, mines a block every few seconds. Ctrl-C stops "
        "everything and removes the folder. Needs the Debian package `monero`.",
        epilog="exit codes: 0 stopped by Ctrl-C/SIGTERM or payment sent, 1 failed, 2 usage",
    )
    parser.add_argument(
        "--block-secs", type=float, default=3.0, metavar="S", help="seconds between mined blocks (3)"
    )
    parser.add_argument(
        "--confirmations", type=int, default=3, metavar="N", help="confirmations a payment needs (3)"
    )
    parser.add_argument("--price", default="0.1", metavar="XMR", help="the least a buyer pays (0.1 XMR)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    paying = commands.add_parser(
        "pay",
        help="pay from the running demo's wallet",
        description="Pay XMR to ADDRESS (the integrated address the buyer's page shows) from the running "
        "demo's payer wallet; exits 0 once the transfer is sent.",
    )
    paying.add_argument("address", metavar="ADDRESS")
    paying.add_argument("xmr", metavar="XMR")
    return parser


def main(argv: Sequence[str]) -> int:
    options = _parser().parse_args(list(argv))
    try:
        if options.command == "pay":
            pay.pay(options.address, options.xmr)
            return 0
        if not options.block_secs > 0 or options.confirmations < 1:
            print(
                "anon_ticket demo: --block-secs must be above 0, --confirmations at least 1",
                file=sys.stderr,
            )
            return 2
        price = Decimal(pay.atomic_units(options.price)) / pay.ATOMIC_PER_XMR
        return run.run(block_secs=options.block_secs, confirmations=options.confirmations, price=price)
    except DemoError as exc:
        print(f"anon_ticket demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (RuntimeError, TimeoutError, OSError, ChainRpcError, requests.RequestException) as exc:
        # A process of the chain or the daemon died or did not answer in time; everything the demo
        # started is already stopped and its folder removed (run's `finally`).
        print(f"anon_ticket demo: could not start: {exc}", file=sys.stderr)
        return EXIT_FAILED
