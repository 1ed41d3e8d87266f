"""`python -m anon_ticket [--env-file FILE] [COMMAND]`: serve, migrate, rescan, backup, client, token.

The commands are listed in docs/PROTOCOL.md §7 and docs/OPERATIONS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from anon_ticket import __version__
from anon_ticket.commands import envfile, internal_client
from anon_ticket.config import Config
from anon_ticket.core import rescan
from anon_ticket.errors import AnonTicketError, ConfigError, DatabaseLocked, RescanRefused
from anon_ticket.process import hardening, logs
from anon_ticket.storage.database import Database

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anon_ticket",
        description="Sell access to a service for Monero, with no accounts. Configured by environment "
        "variables only (see README.md); with no command, runs the daemon.",
    )
    parser.add_argument("--version", action="version", version=f"anon_ticket {__version__}")
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="read NAME=value lines from FILE (as systemd's EnvironmentFile=, e.g. /etc/anon_ticket/env) "
        "before the command; variables already set in the environment win. Give it before COMMAND.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve", help="run the daemon (the default)", description="Run the daemon until SIGTERM/SIGINT."
    )
    commands.add_parser(
        "migrate",
        help="apply the schema and print its version",
        description="Apply pending schema migrations in sql/ and print the schema version.",
    )
    rescan = commands.add_parser(
        "rescan",
        help="move the scan cursor back",
        description="Move the wallet scan cursor back to HEIGHT (inclusive), e.g. after restoring a "
        "wallet. With no daemon running it writes the database itself (holding the daemon lock); "
        "while a daemon runs it asks that daemon over its internal API (INTERNAL_UNIX_SOCKET or "
        "INTERNAL_BIND_ADDRESS, with INTERNAL_API_TOKEN or the generated token file), and the "
        "daemon's next poll starts there. The highest wallet height the database has seen is kept "
        "unless --reset-highest is given: a restored wallet still resyncing far below it is a wallet "
        "fault (nothing applied, nothing revoked) until it is back, then everything from HEIGHT is "
        "read again.",
        epilog="exit codes: 0 done, 1 the database cannot be used, 2 usage or refused (HEIGHT ahead "
        "of the cursor, a bad --reset-highest), 4 the daemon refused the API token (401), 5 the "
        "daemon holds the database but cannot be reached (nothing is written then).",
    )
    rescan.add_argument(
        "--from",
        dest="height",
        type=int,
        required=True,
        metavar="HEIGHT",
        help="the height to read again from (inclusive); at most the scan cursor",
    )
    rescan.add_argument(
        "--reset-highest",
        dest="reset_highest",
        type=int,
        metavar="CHAIN_HEIGHT",
        help="also lower the highest wallet height the database has seen to CHAIN_HEIGHT, the real "
        "chain's height (monerod's get_block_count): only to end a wallet fault left by a wallet "
        "that once reported a wrong, too high height (docs/OPERATIONS.md §13). At least HEIGHT.",
    )
    rescan.add_argument(
        "--timeout",
        type=float,
        default=internal_client.DEFAULT_TIMEOUT_SECS,
        metavar="SECS",
        help="network timeout when asking a running daemon",
    )
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database while the daemon serves",
        description="Write a consistent copy of the SQLite database to DEST (which must not exist), "
        "with SQLite's online backup API, while the daemon keeps serving. To restore, stop the daemon "
        "and put the copy where DATABASE_URL points. PostgreSQL: use pg_dump.",
    )
    backup.add_argument("dest", type=Path, metavar="DEST")
    commands.add_parser("client", help="the buyer's client (see: client --help)", add_help=False)
    commands.add_parser("token", help="look up or revoke a service token (see: token --help)", add_help=False)
    commands.add_parser("check", help="check this deployment (see: check --help)", add_help=False)
    commands.add_parser(
        "demo", help="the whole shop on a private regtest chain (see: demo --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 (one return per command)
    # Before anything else: no core dump may ever hold a PID or a token (daemon, token, client).
    hardening_problems = hardening.forbid_core_dumps()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _load_env_file(args)
    except ConfigError as exc:
        print(f"anon_ticket: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args and args[0] == "client":
        from anon_ticket.client.cli import main as client_main

        return client_main(args[1:])
    if args and args[0] == "check":
        from anon_ticket.commands.check.command import main as check_main

        return check_main(args[1:])
    if args and args[0] == "demo":
        from anon_ticket.demo.command import main as demo_main

        return demo_main(args[1:])
    if args and args[0] == "token":
        from anon_ticket.commands.tokens import main as token_main

        return token_main(args[1:])
    options = _parser().parse_args(args)
    try:
        config = Config.from_environ(os.environ)
    except ConfigError as exc:
        print(f"anon_ticket: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(config.log_level, config.log_format)
    for problem in hardening_problems:
        logging.getLogger("anon_ticket").warning("core dumps not fully disabled: %s", problem)
    command = options.command or "serve"
    try:
        if command == "serve":
            from anon_ticket.daemon import run

            return run(config)
        database = Database(config.database_url)
        if command == "migrate":
            print(database.migrate())
            return 0
        if command == "rescan":
            return _rescan(config, database, options)
        if command == "backup":
            return _backup(config, options.dest)
    except AnonTicketError as exc:
        logging.getLogger("anon_ticket").critical("%s", exc)
        return 1
    return EXIT_USAGE


def _load_env_file(args: list[str]) -> list[str]:
    """Apply a leading `--env-file FILE` (or `--env-file=FILE`) to os.environ; the rest of the args.

    Handled before any command, so that `client` and `token`, which parse their own arguments, see
    the file's variables too.
    """
    if args and args[0] == "--env-file":
        if len(args) < 2:
            raise ConfigError(["--env-file needs a FILE"])
        path, rest = args[1], args[2:]
    elif args and args[0].startswith("--env-file="):
        path, rest = args[0].partition("=")[2], args[1:]
    else:
        return args
    envfile.load(Path(path), os.environ)
    return rest


def _backup(config: Config, dest: Path) -> int:
    from anon_ticket.storage.backup import backup

    result = backup(config.database_url, dest)
    print(f"backup written to {result.path} ({result.size} bytes, schema version {result.schema_version})")
    return 0


def _rescan(config: Config, database: Database, options: argparse.Namespace) -> int:
    """Write directly while no daemon runs, else ask the daemon: never both (docs/OPERATIONS.md §11)."""
    for value, name in ((options.height, "--from"), (options.reset_highest, "--reset-highest")):
        if value is not None and not 0 <= value <= rescan.MAX_HEIGHT:
            print(f"anon_ticket: {name} must be from 0 to {rescan.MAX_HEIGHT}", file=sys.stderr)
            return EXIT_USAGE
    if not options.timeout > 0:
        print("anon_ticket: --timeout must be more than 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    request = rescan.RescanRequest(options.height, options.reset_highest)
    lock = database.offline_lock()
    try:
        lock.acquire()
    except DatabaseLocked:
        return _rescan_through_daemon(config, request, options.timeout)
    try:
        database.migrate()
        store = database.open_writer()
        try:
            state = store.rescan_from(request.from_height, request.reset_highest)
        except RescanRefused as exc:
            print(f"anon_ticket: {exc}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            store.close()
    finally:
        lock.release()
    print(_rescanned(state.scan_cursor, state.scan_floor, state.highest_height, request))
    return 0


def _rescan_through_daemon(config: Config, request: rescan.RescanRequest, timeout: float) -> int:
    """The daemon holds the database: its storage writer makes the rescan (`POST /api/v1/rescan`)."""
    target = internal_client.configured_target(config)
    print(f"anon_ticket: a daemon holds the database; asking it at {target.describe()}", file=sys.stderr)
    body = {"from": request.from_height}
    if request.reset_highest is not None:
        body["reset_highest"] = request.reset_highest
    try:
        token = internal_client.api_token(config)
        status, answer = internal_client.call(
            target, timeout, token, "POST", "/api/v1/rescan", json.dumps(body).encode("utf-8")
        )
        if status != 200:
            raise internal_client.refused(status, answer)
    except internal_client.CommandError as exc:
        print(f"anon_ticket: {exc}; nothing was written", file=sys.stderr)
        return exc.exit_code
    print(
        _rescanned(answer.get("scan_cursor"), answer.get("scan_floor"), answer.get("highest_height"), request)
    )
    return 0


def _rescanned(cursor: object, floor: object, highest: object, request: rescan.RescanRequest) -> str:
    """The one line both ways print, so scripts need not care which way the rescan went."""
    line = f"scan cursor moved to {cursor} (floor {floor})"
    if request.reset_highest is not None:
        line += f"; highest wallet height now {highest}"
    return line
