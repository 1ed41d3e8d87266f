"""The buyer's side of the public API as a library: `ClientSession` is what the command line uses.

A session is bound to one server and one proxy. Each call is one exchange; the `*_until` calls wait
with a deadline, expressed as a `time.monotonic()` value so that a clock change cannot stretch it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from anon_ticket.client import transport
from anon_ticket.client.answers import (
    Claimed,
    NotSeen,
    Pending,
    RedeemAnswer,
    Refused,
    ServerInfo,
    parse_info,
    parse_redeem,
)
from anon_ticket.client.errors import RedemptionRefused, SchemeMismatch
from anon_ticket.client.text import clean
from anon_ticket.client.waiting import DEFAULT_POLL_INTERVAL, ProgressCallback, poll_until
from anon_ticket.core.domain import PAYMENT_ID_SCHEME, PaymentId

DEFAULT_REQUEST_TIMEOUT = 60.0  # Tor circuits to an onion service can take tens of seconds
INFO_PATH = "/api/v1/info"
REDEEM_PATH = "/api/v1/redeem"


class ClientSession:
    """Talks to one anon_ticket server, optionally through a proxy (`socks5h://127.0.0.1:9050` for Tor).

    Raises `UsageError` at once for a malformed server URL or proxy, or a `.onion` server without a
    proxy, so nothing is sent before the setup is known to be safe.
    """

    def __init__(
        self, server: str, proxy: str | None = None, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        self.server = transport.normalise_server(server)
        transport.check_proxy(proxy, self.server)
        self.proxy = proxy
        self.timeout = timeout
        self._http = transport.open_session(proxy)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ClientSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def get(self, path: str, *, timeout: float | None = None) -> transport.Reply:
        """One GET of a path on this server (a JSON answer), with the session's guarantees."""
        return transport.exchange(
            self._http, "GET", self.server + path, body=None, timeout=timeout or self.timeout
        )

    def post_bytes(
        self, url: str, payload: bytes, headers: dict[str, str], *, timeout: float | None = None
    ) -> transport.RawReply:
        """One POST of raw bytes to `url` (on this server), with the session's guarantees."""
        return transport.exchange_bytes(self._http, url, payload, headers, timeout=timeout or self.timeout)

    def fetch_info(self, *, timeout: float | None = None) -> ServerInfo:
        """The server's payment parameters; refuses (`SchemeMismatch`) a server deriving ids otherwise.

        Paying a server whose payment-id scheme differs from ours would put an id on chain that it
        can never match to our PID: the money would be stranded, so we stop before the buyer pays.
        """
        reply = transport.exchange(
            self._http, "GET", self.server + INFO_PATH, body=None, timeout=timeout or self.timeout
        )
        info = parse_info(reply.status, reply.body, reply.retry_after)
        if info.payment_id_scheme != PAYMENT_ID_SCHEME:
            raise SchemeMismatch(
                f"the server derives payment ids with {clean(info.payment_id_scheme)!r}, this client with "
                f"{PAYMENT_ID_SCHEME!r}; refusing to go on"
            )
        return info

    def redeem_once(self, pid: PaymentId, *, timeout: float | None = None) -> RedeemAnswer:
        """One `POST /api/v1/redeem`. Safe to repeat: a replay returns the same token (docs/PROTOCOL.md §4).

        429/503 raise `ServerBusy`, transport failures `NetworkError`, anything off-contract `ServerError`.
        """
        reply = transport.exchange(
            self._http,
            "POST",
            self.server + REDEEM_PATH,
            body={"pid": pid.hex()},
            timeout=timeout or self.timeout,
        )
        return parse_redeem(reply.status, reply.body, reply.retry_after)

    def wait_for_info(
        self,
        deadline: float,
        on_progress: ProgressCallback | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ServerInfo:
        """`fetch_info` retried through 503 (no wallet known yet), 429 and network failures."""
        return poll_until(
            lambda timeout: self.fetch_info(timeout=timeout),
            deadline,
            on_progress,
            poll_interval=poll_interval,
            request_timeout=self.timeout,
            clock=clock,
            sleep=sleep,
        )

    def redeem_until(
        self,
        pid: PaymentId,
        deadline: float,
        on_progress: ProgressCallback | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Claimed:
        """Redeem, waiting through 404/202/429/503 and network failures until `deadline`.

        Raises `RedemptionRefused` on 402/410, `WaitTimedOut` if the server still said "not yet" at the
        deadline, the last `NetworkError`/503 `ServerBusy` if that persisted to the deadline, and
        `ServerError` at once for an answer off the contract.
        """

        def attempt(timeout: float) -> Claimed | NotSeen | Pending:
            answer = self.redeem_once(pid, timeout=timeout)
            if isinstance(answer, Refused):
                raise RedemptionRefused(answer)
            return answer

        return poll_until(
            attempt,
            deadline,
            on_progress,
            poll_interval=poll_interval,
            request_timeout=self.timeout,
            clock=clock,
            sleep=sleep,
        )
