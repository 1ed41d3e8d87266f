"""What the buyer's client raises on purpose, each with the exit code the command line maps it to.

Like the daemon's errors (anon_ticket.errors), every class carries its outcome on the class, so the
command line needs no table of its own: `exit_code` follows docs/PROTOCOL.md §7 (`ExitCode`), and `transient`
marks the problems worth retrying until the buyer's deadline.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from anon_ticket.errors import AnonTicketError

if TYPE_CHECKING:
    from anon_ticket.client.answers import NotSeen, Pending, Refused


class ExitCode(enum.IntEnum):
    """docs/PROTOCOL.md §7's exit codes of `client redeem`; `client new` uses the same ones."""

    OK = 0
    USAGE = 2
    TIMED_OUT = 3
    REFUSED = 4
    SERVER = 5
    INTERRUPTED = 130  # the shell's convention for SIGINT


class ClientError(AnonTicketError):
    """Root of the client's errors; unknown ones count as server or network trouble."""

    code = "client_error"
    exit_code = ExitCode.SERVER
    transient = False


class UsageError(ClientError):
    """The buyer asked for something impossible: bad option, unreadable or existing file, bad PID text."""

    code = "usage_error"
    exit_code = ExitCode.USAGE


class InvalidAddress(UsageError):
    """Text offered as a Monero primary address does not decode to one."""

    code = "invalid_address"


class ServerError(ClientError):
    """The server answered something the contract does not allow at this point."""

    code = "server_error"


class SchemeMismatch(ServerError):
    """The server derives payment ids differently: paying it would strand the money."""

    code = "payment_id_scheme_mismatch"


class NetworkError(ClientError):
    """The server could not be reached or did not answer in time (Tor circuits fail often)."""

    code = "network_error"
    transient = True


class ServerBusy(ClientError):
    """429 or 503: the server asks us to come back after `retry_after` seconds (None if it did not say)."""

    code = "server_busy"
    transient = True

    def __init__(self, message: str, status: int, retry_after: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class WaitTimedOut(ClientError):
    """The deadline passed while the server still said "not yet"; `last` is its last such answer."""

    code = "timed_out"
    exit_code = ExitCode.TIMED_OUT

    def __init__(self, message: str, last: NotSeen | Pending | ServerBusy | None) -> None:
        super().__init__(message)
        self.last = last


class RedemptionRefused(ClientError):
    """402 or 410: the server will not issue a token for this PID as things stand."""

    code = "refused"
    exit_code = ExitCode.REFUSED

    def __init__(self, answer: Refused) -> None:
        super().__init__(answer.describe())
        self.answer = answer
