"""The one place that wires the daemon together: storage, actors, listeners, signals.

Start order (each step fails cleanly before the next): lock the database, migrate, load the internal
token, start the actors (storage writer → PID cache → abuse metrics → wallet poller) and wait for each
`on_start`, bind both listeners, then let the CherryPy bus serve. Stop order is the exact reverse:
listeners stop accepting and finish in-flight requests, then actors stop in reverse, the writer last,
so every acknowledged write is flushed.
"""

from __future__ import annotations

import logging
import resource
import threading
from collections.abc import Callable
from pathlib import Path

import statsd
from cherrypy.process import plugins, wspbus

from anon_ticket import __version__
from anon_ticket.access.app import AccessApp, AccessSettings
from anon_ticket.access.private_tokens import PrivateTokenSpender
from anon_ticket.actors.abuse_metrics import AbuseMetrics, AbuseSettings, Event
from anon_ticket.actors.fatal import FatalSignal
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.pid_cache import PidCache
from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.storage_writer import StorageWriter
from anon_ticket.actors.supervisor import ActorSpec, StartupError, Supervisor
from anon_ticket.actors.wallet_poller import PollerSettings, WalletPoller
from anon_ticket.api.buyer_page import BuyerPage
from anon_ticket.api.internal import InternalApp
from anon_ticket.api.public import PublicApp
from anon_ticket.config import BindAddress, Config
from anon_ticket.errors import AnonTicketError
from anon_ticket.httpd.bind_errors import bind_failure
from anon_ticket.httpd.listener import Listener, ListenerPlugin
from anon_ticket.panel.app import build_panel
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import TokenChallenge
from anon_ticket.process import internal_token, systemd
from anon_ticket.process.descriptors import connection_cap, listener_count, raise_descriptor_limit
from anon_ticket.service.info import PublicInfo
from anon_ticket.service.metrics import Metrics
from anon_ticket.service.private_tokens import PrivateTokens, PrivateTokenSettings
from anon_ticket.service.redeem import Redeemer, RedeemSettings
from anon_ticket.service.scan import ScanService
from anon_ticket.service.status import StatusService
from anon_ticket.service.tokens import OperatorSettings, TokenService
from anon_ticket.storage.database import Database
from anon_ticket.storage.lock import DaemonLock
from anon_ticket.wallet.rpc import WalletRpc

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
PUBLIC_SOCKET_MODE = 0o660
INTERNAL_SOCKET_MODE = 0o600
# The reverse proxy (nginx's www-data, caddy) connects to the gateway: it joins the daemon's group.
ACCESS_SOCKET_MODE = 0o660
# Whatever the server answers itself on the gateway (a malformed request, a timeout) is a 401 there.
ACCESS_FAULT_STATUS = 401


class SupervisorPlugin(plugins.SimplePlugin):
    """Watches the actors while the bus runs; stops them after the listeners have stopped."""

    def __init__(self, bus: wspbus.Bus, supervisor: Supervisor) -> None:
        super().__init__(bus)
        self.supervisor = supervisor

    def start(self) -> None:
        self.supervisor.watch()

    start.priority = 50  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.supervisor.stop()

    stop.priority = 50  # type: ignore[attr-defined]


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.actors = ActorLocator()
        self.published = PublishedState()
        self.fatal = FatalSignal()
        # A request waits for a pooled connection as long as for any component (ACTOR_TIMEOUT_SECS).
        self.database = Database(
            config.database_url, pool_size=config.database_pool_size, pool_wait_secs=config.actor_timeout_secs
        )
        self.published.storage_pool = self.database.pool_figures
        self.bus = wspbus.Bus()
        self.exit_code = EXIT_OK
        self.listeners: list[Listener] = []
        self.descriptor_limit = 0
        self._lock: DaemonLock | None = None
        self._supervisor: Supervisor | None = None
        self.systemd = systemd.Notifier.from_environ()
        self._wallet_rpc: WalletRpc | None = None
        self._private_tokens: PrivateTokens | None = None
        self._stop_requested = threading.Event()
        self.published.wallet.stale_secs = config.monitor_stale_secs

    # -- the parts ------------------------------------------------------------------------------

    def _open_wallet(self) -> WalletRpc:
        config = self.config
        self._wallet_rpc = WalletRpc(
            config.monero_rpc_url,
            timeout=config.monero_rpc_timeout_secs,
            max_response_bytes=config.monero_rpc_max_response_bytes,
            user=config.monero_rpc_user,
            password=config.monero_rpc_password.reveal() if config.monero_rpc_password else None,
        )
        return self._wallet_rpc

    def _abort_wallet(self) -> None:
        """Abandon the wallet call in flight so that the poller stops at once (docs/PROTOCOL.md §9).

        Runs in the thread that stops the actors; nothing is lost: a poll is applied in one
        transaction by the storage writer, which stops after the poller.
        """
        if self._wallet_rpc is not None:
            self._wallet_rpc.abort()

    def _statsd(self) -> statsd.StatsClient:
        config = self.config
        return statsd.StatsClient(config.statsd_host, config.statsd_port, prefix=config.statsd_prefix)

    def actor_specs(self) -> list[ActorSpec]:
        config, actors, published, database = self.config, self.actors, self.published, self.database
        poller_settings = PollerSettings(
            poll_interval_secs=config.monitor_poll_interval_secs,
            min_confirmations=config.monitor_min_confirmations,
            rescan_depth=config.monitor_rescan_depth,
            start_height=config.monitor_start_height,
            writer_timeout_secs=config.actor_timeout_secs,
            wallet_file=config.monero_wallet_file,
            wallet_password=(
                config.monero_wallet_password.reveal() if config.monero_wallet_password else None
            ),
        )
        return [
            ActorSpec(
                "storage_writer",
                lambda: StorageWriter.start(database.open_writer, config.access_policy),
            ),
            ActorSpec(
                "pid_cache",
                lambda: PidCache.start(
                    published,
                    database.open_reader,
                    config.pid_screen_capacity,
                    database.payment_id_feed,
                    config.pid_screen_rebuild_secs,
                ),
            ),
            ActorSpec(
                "abuse_metrics",
                lambda: AbuseMetrics.start(
                    actors,
                    published,
                    self._statsd,
                    AbuseSettings(
                        config.abuse_elevated_per_sec,
                        config.abuse_under_attack_per_sec,
                        # Several nodes may share one statsd: their gauges must not overwrite each other.
                        gauge_prefix=f"node.{config.node_name}." if database.backend == "postgresql" else "",
                    ),
                ),
            ),
            ActorSpec(
                "wallet_poller",
                lambda: WalletPoller.start(
                    poller_settings,
                    actors,
                    published,
                    self.fatal,
                    self._open_wallet,
                    database.open_reader,
                    open_leadership=database.poller_leadership,
                ),
                interrupt=self._abort_wallet,
            ),
        ]

    def private_tokens(self) -> PrivateTokens | None:
        """The Privacy Pass issuer (docs/PROTOCOL.md §12), its key loaded or created once; None when off.

        The key file's path and the key id (public: every token carries it) are logged, never the key.
        """
        config = self.config
        if not config.privacy_pass:
            return None
        if self._private_tokens is None:
            path = config.privacy_pass_key_path
            key = IssuerKey.load_or_create(path)
            log.info("Privacy Pass issuer key %s (key id %s…)", path, key.key_id.hex()[:16])
            challenge = TokenChallenge(
                config.privacy_pass_issuer_name, b"", tuple(config.privacy_pass_origins)
            )
            self._private_tokens = PrivateTokens(
                self.actors,
                self.database.reader,
                key,
                challenge,
                # The key's file time: in use from then on (copies made with `cp -p` keep it).
                int(path.stat().st_mtime),
                PrivateTokenSettings(
                    tokens_per_payment=config.privacy_pass_tokens_per_payment,
                    min_payment_amount=config.min_payment_amount,
                    min_confirmations=config.monitor_min_confirmations,
                    writer_timeout_secs=config.actor_timeout_secs,
                    issue_per_minute=config.privacy_pass_issue_per_minute,
                ),
            )
        return self._private_tokens

    def metrics(self) -> Metrics:
        return Metrics(self.actors, self.config.actor_timeout_secs)

    def public_app(self) -> PublicApp:
        config = self.config
        return PublicApp(
            self.metrics(),
            PublicInfo(self.published, config.min_payment_amount, config.monitor_min_confirmations),
            self.redeemer(),
            BuyerPage.load() if config.buyer_page else None,
            self.private_tokens(),
        )

    def internal_app(self) -> InternalApp:
        config = self.config
        settings = OperatorSettings(
            min_payment_amount=config.min_payment_amount,
            min_confirmations=config.monitor_min_confirmations,
            actor_timeout_secs=config.actor_timeout_secs,
            access_policy=config.access_policy is not None,
        )
        private_tokens = self.private_tokens()
        tokens = TokenService(self.actors, self.database.reader, settings, private_tokens=private_tokens)
        status = StatusService(self.actors, self.published, self.database.reader, settings)
        scan = ScanService(self.actors, config.actor_timeout_secs)
        internal = InternalApp(
            self.metrics(),
            internal_token.load_or_create(config),
            tokens,
            status,
            scan,
            private_tokens=private_tokens,
        )
        # The admin panel: a CherryPy Application, served by WSGI through the internal app only.
        panel = build_panel(
            internal,
            tokens,
            status,
            self.metrics(),
            self.database.reader,
            settings,
            config.internal_unix_socket or config.internal_bind_address,
        )
        internal.mount("/admin/", panel)
        return internal

    def access_app(self) -> AccessApp:
        """The access gateway's app (docs/PROTOCOL.md §13), for the third listener."""
        config = self.config
        actors = self.actors

        def count(event: str) -> None:
            actors.tell("abuse_metrics", Event(event))

        issuer = self.private_tokens()
        spender = PrivateTokenSpender(issuer) if issuer is not None else None
        return AccessApp(
            self.database.reader,
            AccessSettings(config.access_session_secs, config.access_policy is not None),
            spend_private_token=spender,
            private_token_challenge=spender.challenge if spender is not None else None,
            count=count,
        )

    def _bind_listeners(self, internal: InternalApp) -> None:
        config = self.config
        public = self._bind_public(self.public_app())
        internal_address = config.internal_unix_socket or config.internal_bind_address
        internal_listener = Listener(
            "internal",
            internal_address,
            internal,
            threads=config.internal_threads,
            socket_mode=INTERNAL_SOCKET_MODE,
            request_deadline=config.http_request_deadline_secs,
            max_connections=self._connection_cap(),
            count=self._counter("internal"),
        )
        try:
            internal_listener.bind()
        except OSError as exc:
            public.stop()
            variable = "INTERNAL_UNIX_SOCKET" if config.internal_unix_socket else "INTERNAL_BIND_ADDRESS"
            raise bind_failure(variable, internal_address, exc, "no fallback, by design") from exc
        self.listeners = [public, internal_listener]
        if config.access_gateway is not None:
            try:
                self.listeners.append(self._bind_access(config.access_gateway))
            except BaseException:
                public.stop()
                internal_listener.stop()
                raise

    def _bind_access(self, address: Path | BindAddress) -> Listener:
        """The access gateway's listener: the same server and defences, never the public port."""
        config = self.config
        listener = Listener(
            "access",
            address,
            self.access_app(),
            threads=config.public_threads,
            socket_mode=ACCESS_SOCKET_MODE,
            request_deadline=config.http_request_deadline_secs,
            max_connections=self._connection_cap(),
            count=self._counter("access"),
            fault_status=ACCESS_FAULT_STATUS,
        )
        try:
            listener.bind()
        except OSError as exc:
            unix = config.access_gateway_unix_socket is not None
            variable = "ACCESS_GATEWAY_UNIX_SOCKET" if unix else "ACCESS_GATEWAY_BIND_ADDRESS"
            raise bind_failure(variable, address, exc, "no fallback, by design") from exc
        return listener

    def _connection_cap(self) -> int:
        limit = self.descriptor_limit or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return connection_cap(self.config.http_max_connections, limit, listener_count(self.config))

    def _counter(self, listener: str) -> Callable[[str, int], None]:
        """Counts the listener's client faults in statsd (`http.<listener>.<kind>`), never blocking."""
        actors = self.actors

        def count(kind: str, n: int) -> None:
            actors.tell("abuse_metrics", Event(f"http.{listener}.{kind}", n))

        return count

    def _bind_public(self, app: PublicApp) -> Listener:
        config = self.config

        def listener(address: Path | BindAddress) -> Listener:
            return Listener(
                "public",
                address,
                app,
                threads=config.public_threads,
                socket_mode=PUBLIC_SOCKET_MODE,
                request_deadline=config.http_request_deadline_secs,
                max_connections=self._connection_cap(),
                proxy_protocol=config.proxy_protocol == "tor",
                max_connections_per_circuit=config.http_max_connections_per_circuit,
                count=self._counter("public"),
            )

        if config.api_unix_socket is not None:
            candidate = listener(config.api_unix_socket)
            try:
                candidate.bind()
                return candidate
            except OSError as exc:
                log.warning(
                    "cannot bind the public socket %s (%s); falling back to %s",
                    config.api_unix_socket,
                    exc,
                    config.api_bind_address,
                )
        candidate = listener(config.api_bind_address)
        try:
            candidate.bind()
        except OSError as exc:
            raise bind_failure("API_BIND_ADDRESS", config.api_bind_address, exc) from exc
        return candidate

    # -- lifecycle ------------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """Stop the whole daemon with a non-zero exit code (from any thread)."""
        self.exit_code = EXIT_FAILURE
        log.critical("stopping: %s", reason)
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the daemon to stop: safe from any thread and from a signal handler, at any moment.

        It only sets an event. The `daemon-exit` thread, started once `bus.start()` has returned,
        is the one caller of `bus.exit()`: CherryPy ends a bus exited while it is still STARTING
        with os._exit(70), which skips the clean stop (listeners, actors, database, lock). A
        SIGTERM that arrives while the daemon starts (even while the listeners already answer and
        READY=1 is on its way) is carried out as soon as the start is complete. Nothing here may
        block or take a lock the interrupted main thread could hold.
        """
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def handle_signals(self) -> None:
        """SIGTERM/SIGINT ask for a stop from now on, SIGHUP is ignored (main thread only).

        Installed before `prepare()`, so that a stop asked for during the start is honoured after
        it instead of killing the process halfway.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed there (in-process tests run elsewhere)
        signals = plugins.SignalHandler(self.bus)
        signals.handlers = {
            "SIGTERM": self.request_stop,
            "SIGINT": self.request_stop,
            # CherryPy's default re-executes the process on SIGHUP; a money daemon must not.
            "SIGHUP": lambda: log.info("SIGHUP ignored; use systemctl restart to restart"),
        }
        signals.subscribe()

    def start_actors(self) -> None:
        """Start the actors in dependency order under a new supervisor (not yet watching)."""
        config = self.config
        self._supervisor = Supervisor(
            self.actors,
            self.actor_specs(),
            max_restarts=config.supervisor_max_restarts,
            window_secs=config.supervisor_window_secs,
            ping_timeout_secs=max(30.0, config.actor_timeout_secs),
            on_give_up=self.fail,
            heartbeat=self.systemd.watchdog,
        )
        try:
            self._supervisor.start_actors()
        except StartupError as exc:
            raise AnonTicketError(str(exc)) from exc

    @property
    def supervisor(self) -> Supervisor:
        assert self._supervisor is not None, "start_actors() first"
        return self._supervisor

    def redeemer(self) -> Redeemer:
        config = self.config
        return Redeemer(
            self.actors,
            self.published,
            self.database.reader,
            RedeemSettings(
                min_payment_amount=config.min_payment_amount,
                min_confirmations=config.monitor_min_confirmations,
                writer_timeout_secs=config.actor_timeout_secs,
                storage_rate=config.abuse_storage_rate,
                storage_burst=config.abuse_storage_burst,
                pid_per_minute=config.abuse_pid_per_minute,
                tracked_pids=config.abuse_tracked_pids,
                circuit_per_minute=config.abuse_circuit_per_minute,
            ),
        )

    def prepare(self) -> None:
        """Everything up to serving: lock, migrate, start actors, bind. Raises AnonTicketError."""
        config = self.config
        log.info("anon_ticket %s starting with %s", __version__, config.database_url)
        for warning in config.warnings():
            log.warning("%s", warning)
        self.descriptor_limit = raise_descriptor_limit()
        cap = self._connection_cap()
        log.info("descriptor limit %d: at most %d connections per listener", self.descriptor_limit, cap)
        if config.proxy_protocol == "tor":
            log.info("public listener expects tor's PROXY line on every connection (PROXY_PROTOCOL=tor)")
        self._lock = self.database.daemon_lock(on_lost=self.fail)
        self._lock.acquire()
        version = self.database.migrate()
        log.info("database schema version %d", version)
        internal = self.internal_app()
        self.start_actors()
        try:
            self._bind_listeners(internal)
        except BaseException:
            self.supervisor.stop()
            raise

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT or a fatal error; return the process exit code."""
        assert self._supervisor is not None, "prepare() first"
        bus = self.bus
        SupervisorPlugin(bus, self._supervisor).subscribe()
        for listener in self.listeners:
            ListenerPlugin(bus, listener).subscribe()
        systemd.NotifyPlugin(bus, self.systemd, self._ready_status).subscribe()
        bus.start()
        # Only now (see request_stop): a stop asked for while the bus was starting is taken here.
        exiter = threading.Thread(target=self._exit_when_asked, name="daemon-exit", daemon=True)
        exiter.start()
        threading.Thread(target=self._watch_fatal, name="fatal-watch", daemon=True).start()
        bus.block(interval=0.2)
        exiter.join()  # the bus is EXITING: let the exit finish before the database closes
        return self.exit_code

    def _exit_when_asked(self) -> None:
        """The one caller of `bus.exit()`, once a stop is asked for (or the bus exits otherwise)."""
        while not self._stop_requested.wait(0.2):
            if self.bus.state in (wspbus.states.STOPPING, wspbus.states.EXITING):
                return
        self.bus.exit()

    def _ready_status(self) -> str:
        return "serving on " + ", ".join(f"{x.name} {x.describe()}" for x in self.listeners)

    def _watch_fatal(self) -> None:
        while self.bus.state not in (wspbus.states.STOPPING, wspbus.states.EXITING):
            if self.fatal.wait(0.5):
                assert self.fatal.message is not None
                self.fail(self.fatal.message)
                return

    def close(self) -> None:
        self.database.close()
        if self._lock is not None:
            self._lock.release()


def run(config: Config) -> int:
    daemon = Daemon(config)
    daemon.handle_signals()
    try:
        daemon.prepare()
    except AnonTicketError as exc:
        log.critical("cannot start: %s", exc)
        daemon.close()
        return EXIT_FAILURE
    try:
        return daemon.serve()
    finally:
        daemon.close()
        log.info("stopped with exit code %d", daemon.exit_code)
