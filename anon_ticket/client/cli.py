"""`client new`, `client redeem` (docs/PROTOCOL.md §7) and `client tokens` (docs/PROTOCOL.md §12):
argument parsing and exit codes, nothing else.

`main()` takes its streams as arguments so that `python -m anon_ticket client …`, tests and other
programs can all call it; it returns the exit code instead of exiting.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from anon_ticket.client import cmd_new, cmd_redeem, cmd_tokens
from anon_ticket.client.console import Console
from anon_ticket.client.errors import ClientError, ExitCode
from anon_ticket.client.waiting import DEFAULT_POLL_INTERVAL

PROG = "python -m anon_ticket client"
DEFAULT_TIMEOUT = 3600.0
_LOOKS_LIKE_PID = re.compile(r"[0-9a-fA-F]{64}")

EXIT_CODES = """\
exit codes:
  0  done (redeem: token printed)
  2  usage: bad option, bad address, unreadable PID file or PID text, --out file already exists;
     tokens --take: no token left in the file
  3  timed out: the server still said "not seen yet", "pending" or "rate limited" at --timeout
  4  refused: 402 insufficient payment (pay the rest, redeem again) or 410 token revoked;
     tokens: allowance used up, service token revoked or unknown
  5  server or network error: unreachable or 503 until --timeout, an answer off the contract,
     or a server whose payment_id_scheme differs from this client's
"""

NEW_HELP = """\
Generate a secret PID on this machine and, given --address or --server, the integrated address
to pay and the amount. Nothing is sent anywhere with --address; with --server only
GET /api/v1/info is asked (it reveals nothing about the PID).

stdout: "label: value" lines, or one JSON object with --json: payment_id, integrated_address
(null without an address), amount (atomic units, null if unknown), pid_file (null without --out),
and pid only when it was not written to a file.
"""

REDEEM_HELP = """\
Read the PID from --pid-file or standard input (never from the command line, where `ps` and shell
history show it), check the server's /api/v1/info, then POST /api/v1/redeem until a token comes
back or --timeout passes. 404 (not seen yet) and 202 (pending) keep waiting with growing intervals;
429/503 wait as long as Retry-After says (at most 300 s); network failures are retried. Retrying is
safe: a claimed PID returns the same token.

stdout: the token alone on one line, or with --json one object: token, status (claimed or
already_claimed), amount, claimed_at. With --json a refusal (exit 4) also prints the server's
error object. Progress and errors go to stderr.
"""


TOKENS_HELP = """\
Fetch: read the service token from --token-file or standard input (never from the command line),
read the server's published challenge and token key from /api/v1/info, then fetch --count single-use
private tokens (Privacy Pass, docs/PROTOCOL.md §12), appending each, base64url, one per line, to
--out FILE (created with mode 0600) as soon as it is finalised. A request that failed on the way is
sent again unchanged, which the server answers for free. stdout: the number of tokens appended.

Take: --take FILE prints `Authorization: PrivateToken token="…"` for the first token in FILE and
removes it from the file (atomically: two takes never get the same token). Each token works once.
"""


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100000, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds ≥ 0, not {text!r}")
    return value


def _interval(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds > 0")
    return value


def _atomic(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer of atomic units (1 XMR = 10^12), not {text!r}"
        )
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The buyer's side of anon_ticket.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    new = commands.add_parser(
        "new",
        help="generate a PID and say what to pay",
        description=NEW_HELP,
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    where = new.add_mutually_exclusive_group()
    where.add_argument(
        "--address", metavar="ADDR", help="the seller's primary Monero address (fully offline)"
    )
    where.add_argument("--server", metavar="URL", help="read the address and minimum from URL/api/v1/info")
    new.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="write the PID to FILE, created with mode 0600; refused if FILE exists",
    )
    new.add_argument(
        "--amount",
        metavar="ATOMIC",
        type=_atomic,
        help="amount to pay in atomic units (default: the server's min_payment_amount)",
    )
    new.add_argument(
        "--proxy", metavar="URL", help="proxy for --server, e.g. socks5h://127.0.0.1:9050 for Tor"
    )
    new.add_argument("--json", action="store_true", help="print one JSON object")
    new.set_defaults(run=cmd_new.run)

    redeem = commands.add_parser(
        "redeem",
        help="trade the PID for the service token",
        description=REDEEM_HELP,
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    redeem.add_argument("--server", metavar="URL", required=True, help="the server's base URL")
    redeem.add_argument(
        "--pid-file", metavar="FILE", type=Path, help="read the PID from FILE (default: stdin)"
    )
    redeem.add_argument(
        "--timeout",
        metavar="SECS",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"give up waiting after SECS seconds (default {DEFAULT_TIMEOUT:.0f})",
    )
    redeem.add_argument(
        "--poll-interval",
        metavar="SECS",
        type=_interval,
        default=DEFAULT_POLL_INTERVAL,
        help=f"first wait between tries; it grows while nothing changes "
        f"(default {DEFAULT_POLL_INTERVAL:.0f})",
    )
    redeem.add_argument("--proxy", metavar="URL", help="e.g. socks5h://127.0.0.1:9050 for Tor")
    redeem.add_argument("--json", action="store_true", help="print one JSON object")
    redeem.set_defaults(run=cmd_redeem.run)

    tokens = commands.add_parser(
        "tokens",
        help="trade the service token for single-use private tokens, or take one",
        description=TOKENS_HELP,
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    tokens.add_argument("--server", metavar="URL", help="the server's base URL")
    tokens.add_argument("--count", metavar="N", type=_count, help="how many tokens to fetch")
    tokens.add_argument("--out", metavar="FILE", type=Path, help="append the tokens to FILE (mode 0600)")
    tokens.add_argument(
        "--token-file", metavar="FILE", type=Path, help="read the service token from FILE (default: stdin)"
    )
    tokens.add_argument(
        "--take", metavar="FILE", type=Path, help="print the header for the next token in FILE and remove it"
    )
    tokens.add_argument(
        "--timeout",
        metavar="SECS",
        type=_seconds,
        default=cmd_tokens.DEFAULT_TIMEOUT,
        help=f"give up retrying after SECS seconds (default {cmd_tokens.DEFAULT_TIMEOUT:.0f})",
    )
    tokens.add_argument(
        "--poll-interval",
        metavar="SECS",
        type=_interval,
        default=DEFAULT_POLL_INTERVAL,
        help=argparse.SUPPRESS,
    )
    tokens.add_argument("--proxy", metavar="URL", help="e.g. socks5h://127.0.0.1:9050 for Tor")
    tokens.set_defaults(run=cmd_tokens.run)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one client command; returns its exit code (see EXIT_CODES)."""
    console = Console(
        sys.stdin if stdin is None else stdin,
        sys.stdout if stdout is None else stdout,
        sys.stderr if stderr is None else stderr,
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    if any(_LOOKS_LIKE_PID.fullmatch(part) for arg in arguments for part in (arg, arg.partition("=")[2])):
        console.note(
            "error: a PID or service token does not belong on the command line, where `ps` and shell "
            "history show it; use --pid-file / --token-file FILE or standard input"
        )
        return ExitCode.USAGE
    parser = build_parser()
    # argparse writes help and usage errors to sys.stdout/sys.stderr; point those at our streams.
    with contextlib.redirect_stdout(console.stdout), contextlib.redirect_stderr(console.stderr):
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    try:
        code: int = args.run(args, console)
    except ClientError as exc:
        suffix = "; giving up" if exc.transient else ""
        console.note(f"error: {exc}{suffix}")
        return exc.exit_code
    except KeyboardInterrupt:
        console.note("interrupted")
        return ExitCode.INTERRUPTED
    return code
