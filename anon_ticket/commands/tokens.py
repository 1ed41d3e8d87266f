"""`python -m anon_ticket token show|revoke`: the operator's token commands, over the internal API.

It talks to the running daemon rather than to the database, so a revocation goes through the same
durable path as `POST /api/v1/token/{token}/revoke` and the daemon's own view never disagrees with
the command's. No token is ever taken from the command line, where `ps` and the shell history show it:
the service token comes from standard input or `--token-file`; the internal API token from
INTERNAL_API_TOKEN, the generated `internal_api_token` file beside the database, or `--api-token-file`
(files read without following symbolic links, and refused when others can read them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from anon_ticket.commands.internal_client import (
    DEFAULT_TIMEOUT_SECS,
    EXIT_ERROR,
    EXIT_REFUSED,
    EXIT_USAGE,
    CommandError,
    Target,
    call,
    configured_target,
    refused,
)
from anon_ticket.commands.internal_client import api_token as internal_api_token
from anon_ticket.config import Config
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import ConfigError, InvalidToken

EXIT_OK = 0
EXIT_NOT_FOUND = 3
MAX_REASON_CHARS = 256
__all__ = ["EXIT_ERROR", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "main"]

_EPILOG = """\
The service token (64 hex digits) is read from standard input, or from --token-file FILE; never from
the command line, where `ps` and the shell history would show it (a trailing - is accepted and means
standard input, as before).

The internal API token comes from --api-token-file, else INTERNAL_API_TOKEN, else the file
internal_api_token beside the database (DATABASE_URL); never from the command line. The daemon is
reached at --url, --unix-socket, INTERNAL_UNIX_SOCKET, or http://INTERNAL_BIND_ADDRESS, in that order.

exit codes: 0 done, 2 usage or invalid token, 3 no such token, 4 the internal API refused the
credentials (401), 5 server or network error.
"""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help="the internal listener's base URL (default: http://INTERNAL_BIND_ADDRESS)"
    )
    common.add_argument(
        "--unix-socket",
        metavar="PATH",
        help="the internal listener's Unix socket (default: INTERNAL_UNIX_SOCKET)",
    )
    common.add_argument(
        "--api-token-file",
        metavar="FILE",
        type=Path,
        help="read the internal API token from FILE instead of INTERNAL_API_TOKEN or the generated file",
    )
    common.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECS, metavar="SECS", help="network timeout"
    )
    common.add_argument("--json", action="store_true", help="print the record as JSON")
    parser = argparse.ArgumentParser(
        prog="python -m anon_ticket token",
        description="Look up or revoke a service token through the daemon's internal API.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    show = commands.add_parser(
        "show",
        parents=[common],
        help="print a token's record",
        description="Print a service token's record: status, amount, issue and revocation times.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _token_arguments(show)
    revoke = commands.add_parser(
        "revoke",
        parents=[common],
        help="revoke a token for good",
        description="Revoke a service token. Durable once this command succeeds; revoking again keeps "
        "the first time and reason.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _token_arguments(revoke)
    revoke.add_argument("--reason", help=f"why (at most {MAX_REASON_CHARS} characters)")
    return parser


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", nargs="?", metavar="-", help="read the token from standard input (default)")
    parser.add_argument(
        "--token-file", metavar="FILE", type=Path, help="read the service token from FILE instead of stdin"
    )


def main(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run `token …` (argv is what follows `token`); returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        options = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        record = _run(options, os.environ if environ is None else environ, stdin or sys.stdin)
    except CommandError as exc:
        print(f"anon_ticket token: {exc}", file=err)
        return exc.exit_code
    if options.json:
        print(json.dumps(record, indent=2), file=out)
    else:
        print(_describe(record), file=out)
    return EXIT_OK


def _run(options: argparse.Namespace, environ: Mapping[str, str], stdin: IO[str]) -> dict[str, Any]:
    token = _read_token(options.token, options.token_file, stdin)
    reason: str | None = getattr(options, "reason", None)
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise CommandError(f"--reason must be at most {MAX_REASON_CHARS} characters", EXIT_USAGE)
    try:
        config = Config.from_environ(environ)
    except ConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    target = _target(options, config)
    api_token = internal_api_token(config, options.api_token_file)
    if options.command == "show":
        return _call(target, options.timeout, api_token, "GET", f"/api/v1/token/{token.hex()}", None)
    body = json.dumps({"reason": reason} if reason else {}).encode("utf-8")
    return _call(target, options.timeout, api_token, "POST", f"/api/v1/token/{token.hex()}/revoke", body)


def _read_token(argument: str | None, token_file: Path | None, stdin: IO[str]) -> ServiceToken:
    if argument not in (None, "-"):
        # Not echoed: it may well be the token itself.
        raise CommandError(
            "the token is never taken on the command line (ps shows it): pipe it on standard input "
            "or pass --token-file FILE",
            EXIT_USAGE,
        )
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read the token from {token_file}: {exc}", EXIT_USAGE) from None
    else:
        text = stdin.readline()
    try:
        return ServiceToken.parse(text.strip())
    except InvalidToken:
        raise CommandError("the token must be exactly 64 hex digits", EXIT_USAGE) from None


def _target(options: argparse.Namespace, config: Config) -> Target:
    if options.url:
        return Target(url=options.url)
    if options.unix_socket:
        return Target(unix_socket=options.unix_socket)
    return configured_target(config)


def _call(
    target: Target, timeout: float, token: str, method: str, path: str, body: bytes | None
) -> dict[str, Any]:
    status, answer = call(target, timeout, token, method, path, body)
    if status == 200:
        return answer
    if status == 404 and answer.get("error") == "token_not_found":
        message = f"token_not_found: {answer.get('message', '')} (HTTP 404)"
        raise CommandError(message, EXIT_NOT_FOUND)
    raise refused(status, answer)


def _describe(record: Mapping[str, Any]) -> str:
    amount = record.get("amount")
    shown_amount = (
        f"{amount} atomic units ({format(Decimal(amount) / Decimal(10) ** 12, 'f')} XMR)"
        if isinstance(amount, int)
        else str(amount)
    )
    rows = [
        ("token", record.get("token")),
        ("status", record.get("status")),
        ("amount", shown_amount),
        ("issued_at", record.get("issued_at")),
        ("revoked_at", record.get("revoked_at")),
        ("revoke_reason", record.get("revoke_reason")),
    ]
    return "\n".join(f"{name:<14} {'-' if value is None else value}" for name, value in rows)
