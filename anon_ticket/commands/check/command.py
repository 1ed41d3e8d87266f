"""`python -m anon_ticket [--env-file FILE] check [--torrc FILE] [--monerod URL]`.

Reads the configuration `serve` reads, runs every check and prints one line each: `ok`, `warning`
(holds, worth a look), `skipped` (could not be checked here, says why) or `problem` with its fix.
Exit codes: 0 no problem, 1 at least one problem (a bad configuration is one), 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from anon_ticket.commands.check import database, files, limits, listeners, torrc, wallet
from anon_ticket.commands.check.report import Finding, Verdict, problem
from anon_ticket.config import Config
from anon_ticket.errors import ConfigError

EXIT_PROBLEM = 1
DEFAULT_MONEROD = "http://127.0.0.1:18081"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anon_ticket check",
        description="Check this deployment with the configuration the daemon reads (environment, "
        "--env-file): the database (reachable, migrated, bound wallet), the wallet (reachable, "
        "view-only, synced, the database's), the token and key files' modes, the descriptor limit, "
        "both listeners, and PROXY_PROTOCOL against the torrc. One line per check; nothing is written.",
        epilog="exit codes: 0 everything holds, 1 at least one problem, 2 usage",
    )
    parser.add_argument(
        "--torrc", type=Path, metavar="FILE", help="tor's configuration to compare with PROXY_PROTOCOL"
    )
    parser.add_argument(
        "--monerod",
        default=DEFAULT_MONEROD,
        metavar="URL",
        help="monerod's RPC, the daemon the wallet uses, to compare heights with "
        f"(default {DEFAULT_MONEROD})",
    )
    return parser


def run(config: Config, torrc_path: Path | None, monerod_url: str) -> list[Finding]:
    findings: list[Finding] = []
    stored = database.check(config)
    findings += stored.findings
    findings += wallet.check(config, stored.wallet_address, monerod_url)
    findings += files.check(config)
    findings.append(limits.check(config))
    findings += listeners.check(config)
    findings.append(torrc.check(config.proxy_protocol, torrc_path))
    return findings


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    options = _parser().parse_args(list(argv))
    try:
        config = Config.from_environ(os.environ)
    except ConfigError as exc:
        findings = [problem("configuration", text, "correct the variable") for text in exc.problems]
    else:
        findings = run(config, options.torrc, options.monerod)
    for finding in findings:
        print(finding.line(), file=out, flush=True)
    problems = sum(finding.verdict is Verdict.PROBLEM for finding in findings)
    print(
        f"{problems} problem{'s' if problems != 1 else ''}" if problems else "everything holds",
        file=out,
    )
    return EXIT_PROBLEM if problems else 0
