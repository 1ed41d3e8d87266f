"""The wallet poller: asks monero-wallet-rpc what arrived and hands each batch to the storage writer.

It runs on self-scheduled ticks (see `Ticker`); each tick is one poll, in the actor's thread. Expected
trouble (the wallet down, slow, answering garbage, no wallet open; the writer restarting; an operator
rescan racing the batch) is handled here with capped exponential backoff, one error line a minute and
one "restored" line, and nothing is recorded from a failed poll. A wallet fault (docs/PROTOCOL.md §9:
a restored or resyncing wallet far below the heights already seen) is polled at the normal interval,
applies nothing, is logged once and once more when it ends, and counted (`wallet.fault`). Anything
else is a bug: it crashes the actor and the supervisor restarts it with its state rebuilt from storage.

With several nodes on PostgreSQL (docs/PROTOCOL.md §11) only the leader polls: before every tick the
poller asks its `Leadership` (kept, or just won: poll; otherwise stand by, and try again next
interval). A standby publishes the leader's last applied poll, read from storage, as its wallet
health, so every node tells the same story about the service. The role is published in
`PublishedState.node_role` and each change is logged once. Stopping the poller releases the
leadership at once. On SQLite the poller always leads.

What the poller learns is published in `PublishedState.wallet` (a `WalletHealth`) for the status endpoint,
/healthz and statsd. Every wallet call has a whole-call deadline, and the daemon aborts the one in
flight when it stops (`WalletRpc.abort`), so a hung wallet never holds this actor's stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from anon_ticket.actors.abuse_metrics import Event
from anon_ticket.actors.fatal import FatalSignal
from anon_ticket.actors.locator import ActorLocator, wait
from anon_ticket.actors.pid_cache import PidCacheProxy
from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.storage_writer import StorageWriterProxy
from anon_ticket.actors.ticker import Ticker
from anon_ticket.errors import (
    CursorMoved,
    StorageError,
    Unavailable,
    WalletFault,
    WalletMismatch,
    WalletRpcError,
    WalletUnreachable,
)
from anon_ticket.process.node import LEADER, STANDBY
from anon_ticket.storage.leadership import Leadership, SoleLeader
from anon_ticket.storage.protocols import Store
from anon_ticket.wallet.ingest import height_fault, parse_transfers, scan_window
from anon_ticket.wallet.rpc import NO_WALLET_OPEN, WalletRpc, cut

log = logging.getLogger(__name__)

ERROR_LOG_INTERVAL_SECS = 60.0
MAX_BACKOFF_SECS = 60.0


@dataclass(frozen=True, slots=True)
class PollerSettings:
    poll_interval_secs: float
    min_confirmations: int
    rescan_depth: int
    start_height: int | None
    writer_timeout_secs: float
    wallet_file: str | None = None
    wallet_password: str | None = field(default=None, repr=False)
    max_backoff_secs: float = MAX_BACKOFF_SECS


@dataclass(frozen=True, slots=True)
class PollReport:
    ok: bool
    wallet_height: int | None = None
    min_height: int | None = None
    changed_transfers: int = 0
    error: str | None = None
    fault: bool = False  # a wallet fault: the wallet answered, so the next poll is not backed off
    rescanned: bool = False  # an operator's rescan dropped this batch: not backed off either


class _Tick:
    """The self-addressed message that triggers a scheduled poll."""


class WalletPoller(pykka.ThreadingActor):
    def __init__(
        self,
        settings: PollerSettings,
        actors: ActorLocator,
        published: PublishedState,
        fatal: FatalSignal,
        open_wallet: Callable[[], WalletRpc],
        open_reader: Callable[[], Store],
        clock: Callable[[], float] = time.time,
        autostart: bool = True,
        open_leadership: Callable[[], Leadership] = SoleLeader,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._open_leadership = open_leadership
        self._leadership: Leadership | None = None
        self._role: str | None = None
        self._announced = False  # the first tick's role is logged once, even when it is no change
        self._actors = actors
        self._published = published
        self._fatal = fatal
        self._open_wallet = open_wallet
        self._open_reader = open_reader
        self._clock = clock
        self._autostart = autostart
        self._wallet: WalletRpc | None = None
        self._reader: Store | None = None
        self._ticker: Ticker | None = None
        self._bound = False
        self._backoff = 0.0
        self._failures = 0
        self._last_error_log = 0.0
        self._in_fault = False

    def on_start(self) -> None:
        self._wallet = self._open_wallet()
        self._reader = self._open_reader()
        self._publish_stored_address()
        self._leadership = self._open_leadership()
        if isinstance(self._leadership, SoleLeader):
            self._set_role(LEADER, quiet=True)
        elif self._role is None:
            self._set_role(STANDBY, quiet=True)  # until the first tick has tried
        self._ticker = Ticker(self.actor_ref, _Tick())
        if self._autostart:
            self._ticker.schedule(0)

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        if self._leadership is not None:
            # A graceful stop hands over at once: a standby's next try wins.
            self._leadership.release()
            self._leadership = None
        if self._wallet is not None:
            self._wallet.close()
        if self._reader is not None:
            self._reader.close()

    def on_failure(self, *_: object) -> None:
        self.on_stop()

    def on_receive(self, message: object) -> object:
        if isinstance(message, _Tick):
            assert self._ticker is not None
            if not self._lead():
                self._stand_by()
                self._ticker.schedule(self._settings.poll_interval_secs)
                return None
            report = self.poll_now()
            normal = report.ok or report.fault or report.rescanned
            self._ticker.schedule(self._settings.poll_interval_secs if normal else self._backoff)
            return None
        return super().on_receive(message)

    def ping(self) -> bool:
        return True

    def _lead(self) -> bool:
        """Ask the leadership before each poll; log and publish a change of role."""
        assert self._leadership is not None
        leading = self._leadership.lead()
        if not leading and not self._announced and self._role == STANDBY:
            log.info("another node polls the wallet; this node stands by (standby)")
        self._announced = True
        self._set_role(LEADER if leading else STANDBY)
        return leading

    def _set_role(self, role: str, *, quiet: bool = False) -> None:
        if role == self._role:
            return
        previous, self._role = self._role, role
        self._published.node_role = role
        if quiet:
            return
        if role == LEADER:
            # Another node may have polled meanwhile, or served another wallet: identify it again.
            self._bound = False
            log.info("this node now polls the wallet (leader)")
        elif previous == LEADER:
            log.warning("this node lost the poller's leadership and stands by (standby)")

    def _stand_by(self) -> None:
        """Show the leader's last applied poll, from storage, as this node's wallet health."""
        assert self._reader is not None
        try:
            state = self._reader.monitor_state()
        except StorageError as exc:
            self._published.wallet.failed(
                cut(f"cannot read the leader's last poll: {exc}"), int(self._clock())
            )
            return
        if state.wallet_address is not None:
            self._published.primary_address = state.wallet_address
        self._published.wallet.mirrored(state.wallet_height, state.last_poll_at, self._clock())

    def poll_now(self) -> PollReport:
        """One poll, with every expected failure turned into a report (runs in the actor's thread)."""
        try:
            report = self._poll()
        except WalletRpcError as exc:
            report = self._failed(str(exc))
            if exc.rpc_code == NO_WALLET_OPEN and self._reopen_wallet():
                # Reopened: poll again after the normal interval, not after a doubled backoff.
                self._backoff = self._settings.poll_interval_secs
            return report
        except WalletFault as exc:
            return self._faulted(exc)
        except CursorMoved:
            # An operator's rescan (POST /api/v1/rescan) moved the cursor while this poll ran: the
            # batch was dropped whole, and that is no failure of the wallet: the next poll starts
            # from the new cursor after the usual interval, with no error shown, no backoff and no
            # wallet.poll_failed.
            log.info("the scan cursor was moved by a rescan during a poll; the next poll starts from it")
            return PollReport(False, rescanned=True)
        except (WalletUnreachable, Unavailable, StorageError) as exc:
            return self._failed(str(exc))
        self._actors.tell("abuse_metrics", Event("wallet.poll_ok"))
        if self._failures:
            log.info("wallet polling restored after %d failed polls", self._failures)
        if self._in_fault:
            log.info(
                "wallet fault over: the wallet is back at height %s; polls are applied again",
                report.wallet_height,
            )
            self._in_fault = False
        self._failures = 0
        self._backoff = 0.0
        return report

    def _poll(self) -> PollReport:
        wallet, reader = self._wallet, self._reader
        assert wallet is not None and reader is not None
        writer = self._actors.proxy("storage_writer", StorageWriterProxy)
        timeout = self._settings.writer_timeout_secs
        if not self._bound:
            address = wallet.primary_address()
            try:
                wait(writer.bind_wallet(address), timeout, "storage writer")
            except WalletMismatch as exc:
                self._fatal.raise_(str(exc))
                raise Unavailable(str(exc)) from exc
            self._published.primary_address = address
            self._bound = True
        wallet.refresh()
        height = wallet.get_height()
        state = reader.monitor_state()
        if state.scan_cursor is None:
            start = self._settings.start_height if self._settings.start_height is not None else height
            state = wait(writer.start_scan(start), timeout, "storage writer")
            log.info("first scan starts at height %d", start)
        assert state.scan_cursor is not None and state.scan_floor is not None
        fault = height_fault(height, state.scan_floor, state.highest_height, self._settings.rescan_depth)
        if fault is not None:
            raise WalletFault(fault, height)
        min_height = scan_window(state.scan_floor, state.scan_cursor, height, self._settings.rescan_depth)
        reported = parse_transfers(wallet.get_transfers(min_height))
        payment_ids = sorted({entry.payment_id for entry in reported})
        # The screen first, the commit second: once a redeem can see a payment in storage, the
        # screen lets it through. A PID cache that is down fails the poll here, before anything
        # is written.
        self._add_to_screen(payment_ids, timeout)
        now = int(self._clock())
        outcome = wait(
            writer.apply_poll(
                reported,
                wallet_height=height,
                min_height=min_height,
                expected_cursor=state.scan_cursor,
                polled_at=now,
                min_confirmations=self._settings.min_confirmations,
            ),
            timeout,
            "storage writer",
        )
        self._add_again_after_commit(payment_ids, timeout)
        self._published.wallet.succeeded(height, now)
        return PollReport(True, height, min_height, outcome.changed_transfers)

    def _publish_stored_address(self) -> None:
        """Serve the address this database is bound to until the wallet itself is reached.

        The poller is the only writer of `PublishedState.primary_address`: request threads only read
        it. A database is bound to one wallet for good (another one stops the daemon), so the
        address stored by an earlier run is the one to show buyers while the wallet is still down.
        """
        assert self._reader is not None
        try:
            address = self._reader.monitor_state().wallet_address
        except StorageError as exc:
            log.warning("cannot read the stored wallet address yet: %s", exc)
            return
        if address is not None:
            self._published.primary_address = address

    def _add_to_screen(self, payment_ids: list[bytes], timeout: float) -> None:
        """Put the batch's payment ids on the PID screen (idempotent; ids already there cost a hash).

        Every id the wallet reported in the window, not only the new ones: the poller does not plan
        the batch (the writer does, inside its transaction), and the screen only ever holds ids the
        wallet reported, so this cannot grow it beyond what it would hold anyway.
        """
        if payment_ids:
            cache = self._actors.proxy("pid_cache", PidCacheProxy)
            wait(cache.add(payment_ids), timeout, "PID cache")

    def _add_again_after_commit(self, payment_ids: list[bytes], timeout: float) -> None:
        """A PID cache restarted between the first add and the commit rebuilt its screen without them.

        If the cache is down or slow *now*, nothing is lost: a cache that starts after the commit
        rebuilds from storage, which holds the batch, and a queued `add` is still applied later.
        """
        try:
            self._add_to_screen(payment_ids, timeout)
        except Unavailable as exc:
            log.debug("PID cache not reached after the commit (%s); it rebuilds from storage", exc)

    def _reopen_wallet(self) -> bool:
        settings = self._settings
        if settings.wallet_file is None or self._wallet is None:
            return False
        try:
            self._wallet.open_wallet(settings.wallet_file, settings.wallet_password or "")
        except (WalletRpcError, WalletUnreachable) as exc:
            log.warning("could not reopen wallet file %s: %s", settings.wallet_file, exc)
            return False
        log.info("reopened wallet file %s in monero-wallet-rpc", settings.wallet_file)
        return True

    def _faulted(self, fault: WalletFault) -> PollReport:
        """Nothing applied, nothing revoked, the cursor stays; said once, counted every time."""
        message = cut(str(fault))
        self._published.wallet.faulted(message, fault.wallet_height, int(self._clock()))
        self._actors.tell("abuse_metrics", Event("wallet.fault"))
        if not self._in_fault:
            self._in_fault = True
            log.warning("%s", message)
        return PollReport(False, wallet_height=fault.wallet_height, error=message, fault=True)

    def _failed(self, error: str) -> PollReport:
        # After any trouble the wallet is identified again before the next batch: monero-wallet-rpc
        # may have come back serving another wallet, whose transfers must never be applied here.
        self._bound = False
        self._failures += 1
        self._actors.tell("abuse_metrics", Event("wallet.poll_failed"))
        self._backoff = min(
            self._settings.max_backoff_secs,
            max(self._settings.poll_interval_secs, self._backoff * 2),
        )
        error = cut(error)
        now = self._clock()
        self._published.wallet.failed(error, int(now))
        if self._failures == 1 or now - self._last_error_log >= ERROR_LOG_INTERVAL_SECS:
            self._last_error_log = now
            log.warning(
                "wallet poll failed (%d in a row, next try in %.1f s): %s",
                self._failures,
                self._backoff,
                error,
            )
        return PollReport(False, error=error)


class WalletPollerProxy(ActorMemberMixin, pykka.ActorProxy[WalletPoller]):
    ping = proxy_method(WalletPoller.ping)
    poll_now = proxy_method(WalletPoller.poll_now)
