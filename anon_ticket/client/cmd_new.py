"""`client new`: a fresh PID and, when the server or its address is known, what to pay and where.

Order matters for the buyer's money: everything that can fail (the server's info, the address, the
amount, the PID file) is settled before an address to pay is shown, and the PID is on disk before.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from anon_ticket.client.address import PrimaryAddress
from anon_ticket.client.api import ClientSession
from anon_ticket.client.console import Console
from anon_ticket.client.errors import ExitCode, InvalidAddress, ServerError, UsageError
from anon_ticket.client.pidfile import write_new_pid_file
from anon_ticket.client.text import format_xmr
from anon_ticket.client.transport import proxy_warnings
from anon_ticket.core.domain import PaymentId


@dataclass(frozen=True, slots=True, repr=False)
class NewPayment:
    """A PID and what paying for it takes; `pid_file` is set when the PID went to a file instead."""

    pid: PaymentId
    primary: PrimaryAddress | None
    amount: int | None
    pid_file: Path | None

    @property
    def integrated_address(self) -> str | None:
        return None if self.primary is None else self.primary.integrated(self.pid.chain_payment_id())

    def as_json(self) -> dict[str, object]:
        """The `--json` object; `pid` only when it was not written to a file (one copy is enough)."""
        fields: dict[str, object] = {}
        if self.pid_file is None:
            fields["pid"] = self.pid.hex()
        fields["payment_id"] = self.pid.chain_payment_id().hex()
        fields["integrated_address"] = self.integrated_address
        fields["amount"] = self.amount
        fields["pid_file"] = None if self.pid_file is None else str(self.pid_file)
        return fields


def run(args: argparse.Namespace, console: Console) -> int:
    out: Path | None = args.out
    if out is not None and os.path.lexists(out):
        raise UsageError(f"{out} already exists; refusing to overwrite it (it may hold an unredeemed PID)")
    primary, minimum = _where_to_pay(args, console)
    if args.amount is not None and primary is None:
        raise UsageError("--amount needs --address or --server")
    if args.amount is not None and minimum is not None and args.amount < minimum:
        raise UsageError(f"--amount {args.amount} is below the server's minimum of {minimum} atomic units")
    pid = PaymentId.generate()
    if out is not None:
        write_new_pid_file(out, pid)
    payment = NewPayment(pid, primary, args.amount if args.amount is not None else minimum, out)
    _show(payment, args, console)
    return ExitCode.OK


def _where_to_pay(args: argparse.Namespace, console: Console) -> tuple[PrimaryAddress | None, int | None]:
    if args.server is None:
        if args.proxy is not None:
            raise UsageError("--proxy only applies with --server")
        return (None if args.address is None else PrimaryAddress.parse(args.address.strip())), None
    with ClientSession(args.server, args.proxy) as session:  # validates URL and proxy first
        for warning in proxy_warnings(args.proxy):
            console.warn(warning)
        info = session.fetch_info()
    try:
        primary = PrimaryAddress.parse(info.primary_address)
    except InvalidAddress as exc:
        raise ServerError(f"the server's primary address is unusable: {exc}") from exc
    return primary, info.min_payment_amount


def _show(payment: NewPayment, args: argparse.Namespace, console: Console) -> None:
    if args.json:
        console.result(json.dumps(payment.as_json()))
    else:
        for label, value in _lines(payment):
            console.result(f"{label + ':':<20}{value}")
    if payment.pid_file is None:
        console.warn(
            "the PID above is your only proof of payment and works like cash until redeemed: store it "
            "where only you can read it (or use --out FILE), and never share it"
        )
    if payment.primary is not None:
        source = (
            f"--pid-file {payment.pid_file}" if payment.pid_file is not None else "the PID on standard input"
        )
        console.note(
            "pay the amount (or more) to the integrated address, then redeem with "
            f"`client redeem --server URL` and {source}"
        )


def _lines(payment: NewPayment) -> list[tuple[str, str]]:
    lines = (
        [("pid", payment.pid.hex())] if payment.pid_file is None else [("pid file", str(payment.pid_file))]
    )
    lines.append(("payment id", payment.pid.chain_payment_id().hex()))
    if payment.primary is not None:
        lines.append(("network", payment.primary.network.label))
        lines.append(("integrated address", str(payment.integrated_address)))
    if payment.amount is not None:
        lines.append(("amount", f"{payment.amount} atomic units ({format_xmr(payment.amount)} XMR)"))
    return lines
