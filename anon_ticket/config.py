"""One typed, immutable configuration built once from the environment (docs/PROTOCOL.md §6).

Every variable is trimmed, an empty value means unset, and every problem is collected so the operator
sees all of them in one start instead of fixing them one crash at a time. Secrets are wrapped so that
printing the config (or a traceback holding it) shows `********`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from anon_ticket.core.access_time import AccessPolicy
from anon_ticket.errors import ConfigError

T = TypeVar("T")

MASK = "********"
DEFAULT_MIN_PAYMENT_AMOUNT = 10_000_000_000  # 0.01 XMR in atomic units
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # MONERO_RPC_MAX_RESPONSE_BYTES (docs/PROTOCOL.md §9)
DEFAULT_ISSUER_NAME = "anon_ticket"  # PRIVACY_PASS_ISSUER_NAME (docs/PROTOCOL.md §12)
DEFAULT_TOKENS_PER_PAYMENT = 100  # PRIVACY_PASS_TOKENS_PER_PAYMENT: one minimum payment buys 100 tokens
DEFAULT_ISSUE_PER_MINUTE = 1200  # PRIVACY_PASS_ISSUE_PER_MINUTE: issuance requests per service token
PRIVACY_PASS_KEY_FILE_NAME = "privacy_pass_key.pem"  # noqa: S105 (a file name, not a secret)
# A TokenChallenge carries each name in a length-prefixed field; keep them short, printable, comma-free.
MAX_CHALLENGE_NAME_CHARS = 255


class Secret:
    """A string that never prints itself; call `reveal()` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class BindAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """Where the data lives: `sqlite` with a file path, or `postgresql` with a libpq URL."""

    backend: str
    sqlite_path: Path | None
    postgres_dsn: Secret | None

    def __str__(self) -> str:
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path}"
        assert self.postgres_dsn is not None
        return _masked_url(self.postgres_dsn.reveal())

    def beside(self, name: str) -> Path:
        """A file in the database's folder (the generated internal token, the daemon lock).

        A PostgreSQL database has no folder of ours, so its files go to the working directory.
        """
        folder = self.sqlite_path.parent if self.sqlite_path is not None else Path.cwd()
        return folder / name


@dataclass(frozen=True)
class Config:
    database_url: DatabaseUrl
    api_bind_address: BindAddress
    api_unix_socket: Path | None
    internal_bind_address: BindAddress
    internal_unix_socket: Path | None
    internal_api_token: Secret | None
    monero_rpc_url: str
    monero_rpc_user: str | None
    monero_rpc_password: Secret | None
    monero_rpc_timeout_secs: float
    monero_rpc_max_response_bytes: int
    monero_wallet_file: str | None
    monero_wallet_password: Secret | None
    monitor_start_height: int | None
    monitor_poll_interval_secs: float
    monitor_min_confirmations: int
    monitor_rescan_depth: int
    monitor_stale_secs: float
    min_payment_amount: int
    min_payment_amount_explicit: bool
    statsd_host: str
    statsd_port: int
    statsd_prefix: str
    log_level: str
    log_format: str
    public_threads: int
    internal_threads: int
    http_request_deadline_secs: float
    http_max_connections: int
    http_max_connections_per_circuit: int
    proxy_protocol: str
    pid_screen_capacity: int
    actor_timeout_secs: float
    supervisor_max_restarts: int
    supervisor_window_secs: float
    abuse_storage_rate: float
    abuse_storage_burst: int
    abuse_pid_per_minute: int
    abuse_tracked_pids: int
    abuse_circuit_per_minute: int
    abuse_elevated_per_sec: float
    abuse_under_attack_per_sec: float
    buyer_page: bool
    node_name: str
    pid_screen_rebuild_secs: float
    database_pool_size: int
    # The access gateway (docs/PROTOCOL.md §13): off unless one of the two addresses is set.
    access_gateway_bind_address: BindAddress | None = None
    access_gateway_unix_socket: Path | None = None
    access_session_secs: int = 3600
    access_seconds_per_payment: int | None = None
    privacy_pass: bool = True
    privacy_pass_key_file: Path | None = None
    privacy_pass_issuer_name: str = DEFAULT_ISSUER_NAME
    privacy_pass_origins: tuple[str, ...] = ()
    privacy_pass_tokens_per_payment: int = DEFAULT_TOKENS_PER_PAYMENT
    privacy_pass_issue_per_minute: int = DEFAULT_ISSUE_PER_MINUTE

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Config:
        """Build the config or raise `ConfigError` naming every bad variable."""
        env = _Reader(environ)
        min_amount = env.get("MIN_PAYMENT_AMOUNT", _positive_int, None)
        poll_interval = env.get("MONITOR_POLL_INTERVAL_SECS", _positive_float, 5.0)
        config = cls(
            database_url=env.get("DATABASE_URL", _database_url, _database_url("sqlite:///anon_ticket.db")),
            api_bind_address=env.get("API_BIND_ADDRESS", _bind_address, BindAddress("127.0.0.1", 8080)),
            api_unix_socket=env.get("API_UNIX_SOCKET", Path, None),
            internal_bind_address=env.get(
                "INTERNAL_BIND_ADDRESS", _bind_address, BindAddress("127.0.0.1", 8081)
            ),
            internal_unix_socket=env.get("INTERNAL_UNIX_SOCKET", Path, None),
            internal_api_token=env.get("INTERNAL_API_TOKEN", _api_token, None),
            monero_rpc_url=env.get("MONERO_RPC_URL", _http_url, "http://127.0.0.1:18082/json_rpc"),
            monero_rpc_user=env.get("MONERO_RPC_USER", str, None),
            monero_rpc_password=env.get("MONERO_RPC_PASSWORD", Secret, None),
            monero_rpc_timeout_secs=env.get("MONERO_RPC_TIMEOUT_SECS", _positive_float, 30.0),
            monero_rpc_max_response_bytes=env.get(
                "MONERO_RPC_MAX_RESPONSE_BYTES", _positive_int, DEFAULT_MAX_RESPONSE_BYTES
            ),
            monero_wallet_file=env.get("MONERO_WALLET_FILE", str, None),
            monero_wallet_password=env.get("MONERO_WALLET_PASSWORD", Secret, None),
            monitor_start_height=env.get("MONITOR_START_HEIGHT", _non_negative_int, None),
            monitor_poll_interval_secs=poll_interval,
            monitor_min_confirmations=env.get("MONITOR_MIN_CONFIRMATIONS", _positive_int, 10),
            monitor_rescan_depth=env.get("MONITOR_RESCAN_DEPTH", _positive_int, 30),
            # docs/PROTOCOL.md §9: the larger of 60 s and 6 poll intervals.
            monitor_stale_secs=env.get("MONITOR_STALE_SECS", _positive_float, max(60.0, 6 * poll_interval)),
            min_payment_amount=min_amount if min_amount is not None else DEFAULT_MIN_PAYMENT_AMOUNT,
            min_payment_amount_explicit=min_amount is not None,
            statsd_host=env.get("STATSD_HOST", str, "127.0.0.1"),
            statsd_port=env.get("STATSD_PORT", _port, 8125),
            statsd_prefix=env.get("STATSD_PREFIX", str, "anon_ticket"),
            log_level=env.get("LOG_LEVEL", _log_level, "INFO"),
            log_format=env.get("LOG_FORMAT", _choice("text", "json"), "text"),
            public_threads=env.get("PUBLIC_THREADS", _positive_int, 32),
            internal_threads=env.get("INTERNAL_THREADS", _positive_int, 4),
            http_request_deadline_secs=env.get("HTTP_REQUEST_DEADLINE_SECS", _positive_float, 10.0),
            http_max_connections=env.get("HTTP_MAX_CONNECTIONS", _positive_int, 4096),
            http_max_connections_per_circuit=env.get("HTTP_MAX_CONNECTIONS_PER_CIRCUIT", _positive_int, 16),
            proxy_protocol=env.get("PROXY_PROTOCOL", _choice("off", "tor"), "off"),
            pid_screen_capacity=env.get("PID_SCREEN_CAPACITY", _positive_int, 1_000_000),
            actor_timeout_secs=env.get("ACTOR_TIMEOUT_SECS", _positive_float, 5.0),
            supervisor_max_restarts=env.get("SUPERVISOR_MAX_RESTARTS", _positive_int, 5),
            supervisor_window_secs=env.get("SUPERVISOR_WINDOW_SECS", _positive_float, 60.0),
            abuse_storage_rate=env.get("ABUSE_STORAGE_RATE", _positive_float, 2000.0),
            abuse_storage_burst=env.get("ABUSE_STORAGE_BURST", _positive_int, 4000),
            abuse_pid_per_minute=env.get("ABUSE_PID_PER_MINUTE", _positive_int, 30),
            abuse_tracked_pids=env.get("ABUSE_TRACKED_PIDS", _positive_int, 100_000),
            abuse_circuit_per_minute=env.get("ABUSE_CIRCUIT_PER_MINUTE", _positive_int, 120),
            abuse_elevated_per_sec=env.get("ABUSE_ELEVATED_PER_SEC", _positive_float, 20.0),
            abuse_under_attack_per_sec=env.get("ABUSE_UNDER_ATTACK_PER_SEC", _positive_float, 200.0),
            buyer_page=env.get("BUYER_PAGE", _on_off, True),
            node_name=env.get("NODE_NAME", _node_name, default_node_name()),
            pid_screen_rebuild_secs=env.get("PID_SCREEN_REBUILD_SECS", _positive_float, 300.0),
            database_pool_size=env.get("DATABASE_POOL_SIZE", _positive_int, 6),
            access_gateway_bind_address=env.get("ACCESS_GATEWAY_BIND_ADDRESS", _bind_address, None),
            access_gateway_unix_socket=env.get("ACCESS_GATEWAY_UNIX_SOCKET", Path, None),
            access_session_secs=env.get("ACCESS_SESSION_SECS", _positive_int, 3600),
            access_seconds_per_payment=env.get("ACCESS_SECONDS_PER_PAYMENT", _positive_int, None),
            privacy_pass=env.get("PRIVACY_PASS", _on_off, True),
            privacy_pass_key_file=env.get("PRIVACY_PASS_KEY_FILE", _absolute_path, None),
            privacy_pass_issuer_name=env.get(
                "PRIVACY_PASS_ISSUER_NAME", _challenge_name, DEFAULT_ISSUER_NAME
            ),
            privacy_pass_origins=env.get("PRIVACY_PASS_ORIGINS", _origin_names, ()),
            privacy_pass_tokens_per_payment=env.get(
                "PRIVACY_PASS_TOKENS_PER_PAYMENT", _positive_int, DEFAULT_TOKENS_PER_PAYMENT
            ),
            privacy_pass_issue_per_minute=env.get(
                "PRIVACY_PASS_ISSUE_PER_MINUTE", _positive_int, DEFAULT_ISSUE_PER_MINUTE
            ),
        )
        if env.problems:
            raise ConfigError(env.problems)
        return config

    @property
    def access_gateway(self) -> Path | BindAddress | None:
        """Where the access gateway listens (the socket wins, as for the internal listener), or None."""
        return self.access_gateway_unix_socket or self.access_gateway_bind_address

    @property
    def access_policy(self) -> AccessPolicy | None:
        """Paid time (ACCESS_SECONDS_PER_PAYMENT), or None: tokens are good until revoked."""
        if self.access_seconds_per_payment is None:
            return None
        return AccessPolicy(self.access_seconds_per_payment, self.min_payment_amount)

    @property
    def privacy_pass_key_path(self) -> Path:
        """The issuer's key file: PRIVACY_PASS_KEY_FILE, else beside the database (the working directory
        for PostgreSQL, whose nodes must all be given the same file: docs/OPERATIONS.md)."""
        return self.privacy_pass_key_file or self.database_url.beside(PRIVACY_PASS_KEY_FILE_NAME)

    def describe(self) -> str:
        """One `NAME=value` line per setting, secrets masked: safe to log at start."""
        lines = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            lines.append(f"{field.name}={'unset' if value is None else value}")
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """Settings that are legal but probably not what a production operator wants."""
        found = []
        if not self.min_payment_amount_explicit:
            found.append(
                f"MIN_PAYMENT_AMOUNT is not set; using the default {DEFAULT_MIN_PAYMENT_AMOUNT} "
                "atomic units (0.01 XMR)"
            )
        return found


class _Reader:
    """Reads variables, trims them, and collects problems instead of raising at the first one."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return default


_NODE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def default_node_name() -> str:
    """This host's short name, made fit for a statsd metric name (`NODE_NAME`'s default)."""
    short = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", short)[:63] or "node"


def _node_name(raw: str) -> str:
    if not _NODE_NAME.match(raw):
        raise ValueError(
            f"must be 1 to 63 letters, digits, '_' or '-' (it becomes part of metric names), got {raw!r}"
        )
    return raw


def _positive_int(raw: str) -> int:
    value = _non_negative_int(raw)
    if value < 1:
        raise ValueError(f"must be a whole number greater than 0, got {raw!r}")
    return value


def _non_negative_int(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"must be a whole number, got {raw!r}")
    return int(raw)


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"must be a finite number greater than 0, got {raw!r}")
    return value


def _port(raw: str) -> int:
    value = _non_negative_int(raw)
    if not 0 < value < 65536:
        raise ValueError(f"must be a port between 1 and 65535, got {raw!r}")
    return value


def _bind_address(raw: str) -> BindAddress:
    host, sep, port = raw.rpartition(":")
    if not sep or not host:
        raise ValueError(f"must be HOST:PORT, got {raw!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host must be in brackets ([::1]:8080), got {raw!r}")
    return BindAddress(host, _port(port))


def _database_url(raw: str) -> DatabaseUrl:
    if raw.startswith("sqlite:///"):
        rest = raw[len("sqlite:///") :]
        if not rest or rest == ":memory:" or rest.startswith(":memory:"):
            raise ValueError("an in-memory SQLite database would lose every payment; name a file")
        path = Path(rest) if rest.startswith("/") else Path.cwd() / rest
        return DatabaseUrl("sqlite", path, None)
    if raw.startswith(("postgresql://", "postgres://")):
        return DatabaseUrl("postgresql", None, Secret(raw))
    raise ValueError("must start with sqlite:/// or postgresql://")


def _masked_url(raw: str) -> str:
    """The URL with any password (in the user part or as a `password=` parameter) masked."""
    parts = urllib.parse.urlsplit(raw)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(":" + parts.password + "@", ":" + MASK + "@")
    query = urllib.parse.urlencode(
        [
            (name, MASK if name.lower() in ("password", "passwd", "sslpassword") else value)
            for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _http_url(raw: str) -> str:
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value is not echoed: a mistyped URL may well hold a password.
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None:
        raise ValueError("must not carry credentials: use MONERO_RPC_USER and MONERO_RPC_PASSWORD")
    return raw


def _api_token(raw: str) -> Secret:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters long")
    return Secret(raw)


def _absolute_path(raw: str) -> Path:
    """A path as given, made absolute against the working directory (where the daemon starts)."""
    path = Path(raw)
    return path if path.is_absolute() else Path.cwd() / path


def _challenge_name(raw: str) -> str:
    """An issuer or origin name for the TokenChallenge: printable ASCII without spaces or commas."""
    if len(raw) > MAX_CHALLENGE_NAME_CHARS or not all("!" <= char <= "~" and char != "," for char in raw):
        raise ValueError(
            f"must be 1 to {MAX_CHALLENGE_NAME_CHARS} printable ASCII characters without spaces or "
            f"commas (a host name, e.g. search.example.onion), got {raw!r}"
        )
    return raw


def _origin_names(raw: str) -> tuple[str, ...]:
    """Comma-separated origin names, each trimmed and checked; empty entries are a mistake."""
    names = tuple(name.strip() for name in raw.split(","))
    if any(not name for name in names):
        raise ValueError(f"must be names separated by single commas, got {raw!r}")
    return tuple(_challenge_name(name) for name in names)


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return level


def _on_off(raw: str) -> bool:
    value = raw.lower()
    if value not in ("on", "off"):
        raise ValueError(f"must be on or off, got {raw!r}")
    return value == "on"


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return raw.lower()

    return parse
