"""`client redeem`: trade the PID for the service token, waiting as long as the buyer allows.

The server's /api/v1/info is checked once first: a server that derives payment ids another way could
never have seen our payment, and telling it our PID would gain nothing and expose the secret.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from pathlib import Path

from anon_ticket.client.answers import Claimed
from anon_ticket.client.api import ClientSession
from anon_ticket.client.console import Console
from anon_ticket.client.errors import ExitCode, RedemptionRefused, UsageError
from anon_ticket.client.pidfile import parse_pid_text, read_pid_file, read_pid_stream, readable_by_others
from anon_ticket.client.text import format_xmr
from anon_ticket.client.transport import proxy_warnings
from anon_ticket.client.waiting import Waiting
from anon_ticket.core.domain import PaymentId


class ProgressPrinter:
    """Shows each new situation once on stderr; the same answer again only changes the next delay."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._last: str | None = None

    def __call__(self, step: Waiting) -> None:
        if step.situation != self._last:
            self._last = step.situation
            self._console.note(step.describe())


def run(args: argparse.Namespace, console: Console) -> int:
    session = ClientSession(args.server, args.proxy)  # a bad URL or proxy fails before the PID is read
    with session:
        pid = _read_pid(args.pid_file, console)
        for warning in proxy_warnings(args.proxy):
            console.warn(warning)
        deadline = time.monotonic() + args.timeout
        progress = ProgressPrinter(console)
        session.wait_for_info(deadline, progress, poll_interval=args.poll_interval)
        try:
            claimed = session.redeem_until(pid, deadline, progress, poll_interval=args.poll_interval)
        except RedemptionRefused as exc:
            if args.json:
                console.result(json.dumps(_refusal_fields(exc)))
            raise
    _show(claimed, args.json, console)
    return ExitCode.OK


def _refusal_fields(exc: RedemptionRefused) -> dict[str, object]:
    answer = exc.answer
    fields: dict[str, object] = {"status": answer.status, "error": answer.error, "message": answer.message}
    optional = {
        "reason": answer.reason,
        "amount": answer.amount,
        "min_payment_amount": answer.min_payment_amount,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    return fields


def _read_pid(path: Path | None, console: Console) -> PaymentId:
    if path is not None and str(path) != "-":
        pid = read_pid_file(path)
        if readable_by_others(path):
            console.warn(f"{path} is accessible to other users; `chmod 600 {path}` keeps the PID yours")
        return pid
    if console.stdin is None or console.stdin.closed:
        raise UsageError("no --pid-file and standard input is closed")
    if console.stdin.isatty():
        # Interactive: read without echo so the PID does not stay on screen or in a terminal log.
        return parse_pid_text(getpass.getpass("PID (input hidden): ", stream=console.stderr), "the input")
    return read_pid_stream(console.stdin)


def _show(claimed: Claimed, as_json: bool, console: Console) -> None:
    if as_json:
        console.result(
            json.dumps(
                {
                    "token": claimed.token.hex(),
                    "status": claimed.status,
                    "amount": claimed.amount,
                    "claimed_at": claimed.claimed_at,
                }
            )
        )
        return
    console.result(claimed.token.hex())
    amount = "" if claimed.amount is None else f" for {format_xmr(claimed.amount)} XMR"
    when = "" if claimed.claimed_at is None else f" at {claimed.claimed_at}"
    first = "claimed" if claimed.status == "claimed" else "already claimed"
    console.note(f"{first}{when}{amount}; keep the token private, it is your access")
