"""One request to the running daemon's internal API, for the commands that act through it.

`token show|revoke` and `rescan` (while a daemon holds the database) talk to the internal listener
rather than to the database, so the daemon's one writer makes every change. Standard library only:
http.client over TCP or over INTERNAL_UNIX_SOCKET, with a timeout on every socket operation. The
bearer token comes from INTERNAL_API_TOKEN or the file the daemon generated (`internal_token`), read
without following symbolic links and refused when others can read it.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anon_ticket.config import Config
from anon_ticket.errors import ConfigError
from anon_ticket.process import internal_token

EXIT_USAGE = 2
EXIT_REFUSED = 4
EXIT_ERROR = 5
DEFAULT_TIMEOUT_SECS = 10.0


class CommandError(Exception):
    """Ends the command with `exit_code` after printing the message to standard error."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket (INTERNAL_UNIX_SOCKET), with the standard library only."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True, slots=True)
class Target:
    """Where the internal listener is: a base URL, or a Unix socket path."""

    url: str | None = None
    unix_socket: str | None = None

    def connection(self, timeout: float) -> tuple[http.client.HTTPConnection, str]:
        """A connection and the path prefix to put before `/api/v1/…`."""
        if self.unix_socket is not None:
            return UnixHTTPConnection(self.unix_socket, timeout), ""
        assert self.url is not None
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"--url must be an http:// or https:// URL, got {self.url!r}", EXIT_USAGE)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        try:
            port = parts.port
        except ValueError:
            raise CommandError(f"--url has an invalid port: {self.url!r}", EXIT_USAGE) from None
        return connection_class(parts.hostname, port, timeout=timeout), parts.path.rstrip("/")

    def describe(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket is not None else str(self.url)


def configured_target(config: Config) -> Target:
    """The daemon's internal listener as the configuration names it: its Unix socket, else its address."""
    if config.internal_unix_socket is not None:
        return Target(unix_socket=str(config.internal_unix_socket))
    address = config.internal_bind_address
    # A wildcard bind is reached through loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address.host, address.host)  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    return Target(url=f"http://{shown}:{address.port}")


def api_token(config: Config, token_file: Path | None = None) -> str:
    """`token_file`'s token, else INTERNAL_API_TOKEN, else the file the daemon generated."""
    if token_file is None and config.internal_api_token is not None:
        return config.internal_api_token.reveal()
    path = token_file or internal_token.token_path(config)
    try:
        value = internal_token.read_token_file(path)
    except FileNotFoundError:
        raise CommandError(
            f"INTERNAL_API_TOKEN is not set and {path} does not exist: start the daemon once (it "
            "generates the file), or pass --api-token-file",
            EXIT_USAGE,
        ) from None
    except ConfigError as exc:
        raise CommandError(
            f"cannot use the internal API token: {'; '.join(exc.problems)}", EXIT_USAGE
        ) from None
    if not value:
        raise CommandError(f"{path} is empty", EXIT_USAGE)
    return value


def call(
    target: Target, timeout: float, token: str, method: str, path: str, body: bytes | None
) -> tuple[int, dict[str, Any]]:
    """(status, JSON object) of one request; `CommandError` if the daemon cannot be reached or
    answers something that is not a JSON object."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection, prefix = target.connection(timeout)
    try:
        connection.request(method, prefix + path, body=body, headers=headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise CommandError(
            f"cannot reach the internal API at {target.describe()}: {exc}", EXIT_ERROR
        ) from None
    finally:
        connection.close()
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict):
        raise CommandError(f"the internal API answered HTTP {status} without a JSON object", EXIT_ERROR)
    return status, answer


def refused(status: int, answer: dict[str, Any]) -> CommandError:
    """The error for an answer other than 200: 401 → EXIT_REFUSED, 400 → EXIT_USAGE, else EXIT_ERROR."""
    message = f"{answer.get('error', 'error')}: {answer.get('message', '')} (HTTP {status})"
    if status == 401:
        return CommandError(message + "; check INTERNAL_API_TOKEN or the token file", EXIT_REFUSED)
    if status == 400:
        return CommandError(message, EXIT_USAGE)
    return CommandError(message, EXIT_ERROR)
