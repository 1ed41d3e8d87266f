"""A private Tor network on loopback for tests: 3 authorities, 2 relays, an onion service, a client.

Seven real `tor` processes (Debian's package, which ships `tor-gencert` and the relay, dirauth and pow
modules) on free 127.0.0.1 ports, in one work directory (the onion service's files in a second one,
see `TorNetwork`), started by this module and stopped by pid (`TorNetwork.stop`, also registered
with atexit and called when `start` itself fails). Each tor also watches the test process
(`__OwningControllerProcess`) and exits on its own if that dies. The control protocol is in
`tests/support/tor_control.py`.

    network = TorNetwork.start(workdir, [ServiceSpec("public")])
    try:
        service = network.service("public")  # tor forwards its streams to service.socket_path
        with network.session(isolation="buyer-1") as session:  # through the client's SocksPort
            session.get(service.url + "/api/v1/info")  # http://<56 characters>.onion
    finally:
        network.stop()

What makes such a network work (measured here; tor's own tool for this is chutney):
- `TestingTorNetwork 1` on every node, with `DirAuthority` lines naming the 3 authorities (v3ident from
  each authority's `tor-gencert` certificate, relay fingerprint from `tor --list-fingerprint`), the
  `TestingDirAuthVote{Exit,Guard,HSDir} *` votes, and short voting intervals on the authorities.
- At least 4 relays: onion-service paths (vanguards-lite) need 4 distinct relays, and with 3 the
  logs repeat "Failed to find node for hop #3". 3 authorities that are also relays + 2 relays.
- No relay is an exit (`ExitRelay 0`): onion services need none, and no traffic can leave loopback.
- A client that asks for the onion before the service uploaded its descriptor caches the failure
  ("No more HSDir available to query") for minutes; `SIGNAL NEWNYM` on its control port purges it.
  So the service's upload is awaited first, and every failed probe is followed by a NEWNYM.

Readiness: each onion service's Unix socket is served by a small probe backend during start, and
`start` returns only once every service answered through the client's SocksPort (with a deadline);
then the probes are closed and their socket files removed, so a daemon under test can bind there.
The Unix socket of an onion service is the one place tests plug into; tor connects to it afresh for
every stream, so daemons may come and go behind the same onion address.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from tests.support import processes, waiting
from tests.support.daemon import free_ports
from tests.support.tor_control import TorControl, TorControlError, UploadEvents
from tests.support.torrc_snippet import onion_service_lines, read_snippet

TOR = "tor"
TOR_GENCERT = "tor-gencert"
AUTHORITIES = 3
RELAYS = 2
START_TIMEOUT = 180.0  # generous: about 20-30 s on an idle 2-core machine
PROBE_TIMEOUT = 30.0  # one fetch through Tor (a cold one builds several circuits)
UPLOADS_BEFORE_FETCH = 3  # HSDirs holding a descriptor before the client asks (it tries several)
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux
SERVICE_USER = "nobody"

T = TypeVar("T")


def binary(name: str) -> str | None:
    """The path of `name` on PATH, or in /usr/sbin where Debian puts tor (not on a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing_binaries() -> list[str]:
    """Which of tor / tor-gencert cannot be found (empty when the network can run)."""
    return [name for name in (TOR, TOR_GENCERT) if binary(name) is None]


def _tor(name: str = TOR) -> str:
    path = binary(name)
    if path is None:
        raise TorNetworkError(f"{name} is not installed (Debian package `tor`)")
    return path


class TorNetworkError(Exception):
    """The private Tor network could not be built or did not become usable in time."""


class TorExited(TorNetworkError):
    """A tor exited while the network was starting (e.g. a port was taken after it was chosen)."""


def _wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """`waiting.wait_for`, with a tor that does not answer yet counted as "not yet"."""
    return waiting.wait_for(
        what,
        check,
        timeout,
        interval,
        tolerate=(OSError, requests.RequestException, TorControlError),
        error=TorNetworkError,
    )


# -- processes -------------------------------------------------------------------------------------------


@dataclass
class TorNode:
    """One tor process: its data directory, torrc and logs; started and stopped by pid."""

    name: str
    datadir: Path
    torrc_lines: list[str] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def torrc(self) -> Path:
        return self.datadir / "torrc"

    @property
    def notice_log(self) -> Path:
        return self.datadir / "notice.log"

    @property
    def info_log(self) -> Path:
        return self.datadir / "info.log"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        self.torrc.write_text("\n".join(self.torrc_lines) + "\n", encoding="utf-8")
        argv = [_tor(), "-f", str(self.torrc), "--ignore-missing-torrc"]
        self.popen = processes.spawn(argv, self.datadir / "stdout.log")

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise TorExited(
                f"tor {self.name} (pid {self.popen.pid}) exited with {self.popen.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.datadir / "stdout.log", self.notice_log):
            with contextlib.suppress(OSError):
                parts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(parts)

    def log_text(self, *, info: bool = False) -> str:
        try:
            return (self.info_log if info else self.notice_log).read_text(errors="replace")
        except OSError:
            return ""

    def rss_bytes(self) -> int:
        """Resident memory now (0 when not running)."""
        if self.popen is None or self.popen.poll() is not None:
            return 0
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else 0


def _read_stripped(path: Path) -> str | None:
    """The file's text without surrounding whitespace, None while it is missing or empty."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _run(argv: Sequence[str], *, stdin: bytes = b"", timeout: float = 120.0) -> str:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise TorNetworkError(
            f"{argv[0]} exited with {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return done.stdout.decode(errors="replace")


# -- the onion services' backends while the network starts --------------------------------------------


class ProbeBackend:
    """A tiny HTTP backend on a Unix socket: answers every request with 200 and its own name.

    It stands behind an onion service while the network starts, so that readiness means "a request
    went all the way through Tor to the socket". It records the first line of every connection (a
    PROXY line when the service exports circuit ids).
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.first_lines: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        path.chmod(0o660)  # like the daemon's public socket: tor connects through the group
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"tor-probe-{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        received = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in received and len(received) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                received += chunk
            self.first_lines.append(received.split(b"\r\n", 1)[0].decode("latin-1"))
            body = self.name.encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    def close(self) -> None:
        self._stopped.set()
        self._sock.close()
        self._thread.join(5.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# -- the network -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One onion service of the network: `conf/torrc.snippet` publishing a Unix socket named `name`.

    `enable` switches on commented-out options of the snippet (e.g. `HiddenServiceExportCircuitID`).
    """

    name: str
    enable: tuple[str, ...] = ()


@dataclass
class OnionService:
    """A running onion service: its address, and the Unix socket tor forwards its streams to."""

    name: str
    hs_dir: Path
    socket_path: Path
    virtual_port: int
    hostname: str = ""

    @property
    def url(self) -> str:
        port = "" if self.virtual_port == 80 else f":{self.virtual_port}"
        return f"http://{self.hostname}{port}"


@dataclass(frozen=True)
class ServiceAccount:
    """The user the onion-service tor switches to (torrc `User`), as Debian's runs as debian-tor."""

    user: str
    uid: int
    gid: int

    @classmethod
    def find(cls) -> ServiceAccount | None:
        """`nobody` when the tests run as root (only root can switch users), else None."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return None
        return cls(SERVICE_USER, entry.pw_uid, entry.pw_gid)


class TorNetwork(processes.ProcessGroup):
    """3 directory authorities (also relays), 2 relays, 1 onion-service tor, 1 client: 7 processes.

    Build it with `TorNetwork.start(workdir, services)`; always `stop()` it (the fixture does).

    Run as root, the onion-service tor switches to the user `nobody` (torrc `User`), which drops
    every supplementary group, as Debian's tor does when it becomes debian-tor. It then reaches the
    daemon's socket (mode 0660) only through the socket's group: the socket directory belongs to
    that user's group with the setgid bit, so sockets created in it get that group (the set-up the
    operations guide documents). Its data and socket directories live under a short directory in
    /tmp that the user can traverse (pytest's own temporary directory is private to root).
    """

    def __init__(self, workdir: Path, services: Sequence[ServiceSpec]) -> None:
        self.workdir = workdir
        self.timings: dict[str, float] = {}
        self.account = ServiceAccount.find()
        self.service_root = Path(tempfile.mkdtemp(prefix="anon-ticket-onion-"))
        self.service_root.chmod(0o711)
        self.socket_dir = self.service_root / "run"
        self.socket_dir.mkdir()
        ports = iter(free_ports(2 * AUTHORITIES + RELAYS + 4))
        self.authorities = [self._node(f"auth{i}") for i in range(AUTHORITIES)]
        self.relays = [self._node(f"relay{i}") for i in range(RELAYS)]
        self.hs = self._node("hs", self.service_root)
        self.client = self._node("client")
        if self.account is not None:
            os.chown(self.hs.datadir, self.account.uid, self.account.gid)
            os.chown(self.socket_dir, -1, self.account.gid)
            self.socket_dir.chmod(0o2750)  # setgid: sockets made here belong to tor's group
        else:
            self.socket_dir.chmod(0o700)
        self._or_ports = {node.name: next(ports) for node in (*self.authorities, *self.relays)}
        self._dir_ports = {node.name: next(ports) for node in self.authorities}
        self.socks_port = next(ports)
        self.client_control = TorControl(next(ports), self.client.datadir / "control_auth_cookie")
        self.hs_control = TorControl(next(ports), self.hs.datadir / "control_auth_cookie")
        self.services: dict[str, OnionService] = {}
        self._uploads: UploadEvents | None = None
        self.probe_first_lines: dict[str, list[str]] = {}
        self._service_lines: list[str] = []
        snippet = read_snippet()
        for spec in services:
            socket_path = self.socket_dir / f"{spec.name}.sock"
            if len(str(socket_path)) > SOCKET_PATH_MAX or " " in str(socket_path):
                raise TorNetworkError(f"socket path unusable in a torrc (too long or spaced): {socket_path}")
            hs_dir = self.hs.datadir / f"hs-{spec.name}"
            config = onion_service_lines(snippet, hs_dir, socket_path, enable=spec.enable)
            self.services[spec.name] = OnionService(spec.name, hs_dir, socket_path, config.virtual_port)
            self._service_lines.extend(config.lines)
        super().__init__("network", workdir, self.service_root)  # from here on, stopped at exit

    def _node(self, name: str, parent: Path | None = None) -> TorNode:
        datadir = (parent or self.workdir) / name
        datadir.mkdir(parents=True, exist_ok=True)
        datadir.chmod(0o700)
        return TorNode(name, datadir)

    @property
    def nodes(self) -> list[TorNode]:
        return [*self.authorities, *self.relays, self.hs, self.client]

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, workdir: Path | str, services: Sequence[ServiceSpec], *, timeout: float = START_TIMEOUT
    ) -> TorNetwork:
        """Generate the keys, start the 7 tors, wait until every onion service answers through Tor.

        On any failure every process already started is stopped before the error propagates.
        """
        network = cls(Path(workdir), services)
        try:
            network._boot(timeout)
        except BaseException:
            network.stop()
            if not os.environ.get("ANON_TICKET_KEEP_TOR"):
                shutil.rmtree(network.service_root, ignore_errors=True)  # the work directory stays
            raise
        return network

    def _boot(self, timeout: float) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        authorities = self._make_authority_keys()
        self.timings["keys"] = time.monotonic() - t0
        self._write_torrcs(authorities)
        probes: list[ProbeBackend] = []
        try:
            for service in self.services.values():
                with contextlib.suppress(FileNotFoundError):
                    service.socket_path.unlink()
                probes.append(ProbeBackend(service.name, service.socket_path))
            for node in self.nodes:
                node.start()
            started = time.monotonic()
            self._uploads = _wait_for("the onion-service tor's control port", self._watch_uploads, 60.0)
            self._wait_bootstrapped(deadline)
            self.timings["client_bootstrapped"] = time.monotonic() - started
            self._wait_uploaded(deadline)
            self.timings["descriptors_uploaded"] = time.monotonic() - started
            for service in self.services.values():
                self._wait_answering(service, deadline)
            self.timings["first_fetch"] = time.monotonic() - started
            self.probe_first_lines = {probe.name: list(probe.first_lines) for probe in probes}
        finally:
            if self._uploads is not None:
                self._uploads.close()
            for probe in probes:
                probe.close()
        self.timings["total"] = time.monotonic() - t0

    def _make_authority_keys(self) -> list[tuple[str, str]]:
        """tor-gencert and --list-fingerprint for each authority, in parallel: (v3ident, fingerprint)."""
        results: dict[str, tuple[str, str]] = {}

        def make(node: TorNode) -> None:
            keys = node.datadir / "keys"
            keys.mkdir(mode=0o700, exist_ok=True)
            _run(
                [
                    _tor(TOR_GENCERT),
                    "--create-identity-key",
                    "-m",
                    "12",
                    "-a",
                    f"127.0.0.1:{self._dir_ports[node.name]}",
                    "-i",
                    str(keys / "authority_identity_key"),
                    "-s",
                    str(keys / "authority_signing_key"),
                    "-c",
                    str(keys / "authority_certificate"),
                    "--passphrase-fd",
                    "0",
                ],
                stdin=b"\n",
            )
            _run(
                [
                    _tor(),
                    "--list-fingerprint",
                    "--ignore-missing-torrc",
                    "-f",
                    os.devnull,
                    "--datadirectory",
                    str(node.datadir),
                    "--orport",
                    "1",
                    "--dirserver",
                    "bootstrap 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff",
                ],
            )
            certificate = (keys / "authority_certificate").read_text()
            v3ident = re.search(r"^fingerprint ([0-9A-F]{40})$", certificate, re.MULTILINE)
            fingerprint = (node.datadir / "fingerprint").read_text().split()
            if v3ident is None or len(fingerprint) != 2:
                raise TorNetworkError(f"no identity for {node.name}")
            results[node.name] = (v3ident.group(1), fingerprint[1])

        processes.in_parallel([functools.partial(make, node) for node in self.authorities])
        return [results[node.name] for node in self.authorities]

    def _write_torrcs(self, authorities: list[tuple[str, str]]) -> None:
        empty = self.service_root / "empty"  # readable by the onion-service tor's user too
        empty.write_text("")
        empty.chmod(0o644)
        common = [
            "TestingTorNetwork 1",
            "AssumeReachable 1",
            "PathsNeededToBuildCircuits 0.67",
            "TestingDirAuthVoteExit *",
            "TestingDirAuthVoteGuard *",
            "TestingDirAuthVoteHSDir *",
            "TestingMinExitFlagThreshold 0",
            "V3AuthNIntervalsValid 2",
            "ClientUseIPv6 0",
            f"GeoIPFile {empty}",  # the GeoIP tables are most of a relay's memory, and unused here
            f"GeoIPv6File {empty}",
            f"__OwningControllerProcess {os.getpid()}",  # exit if the test process dies
            "ShutdownWaitLength 0",
            "SafeLogging 0",
            "LogTimeGranularity 1",
            "RunAsDaemon 0",
            *(
                f"DirAuthority {node.name} orport={self._or_ports[node.name]} no-v2 v3ident={v3ident}"
                f" 127.0.0.1:{self._dir_ports[node.name]} {fingerprint}"
                for node, (v3ident, fingerprint) in zip(self.authorities, authorities, strict=True)
            ),
        ]
        for node in self.nodes:
            node.torrc_lines[:] = [
                *common,
                f"DataDirectory {node.datadir}",
                f"PidFile {node.datadir / 'pid'}",
                f"Nickname {node.name}",
                f"Log notice file {node.notice_log}",
            ]
        for node in (*self.authorities, *self.relays):
            node.torrc_lines += [
                "SocksPort 0",
                "Address 127.0.0.1",
                f"ORPort 127.0.0.1:{self._or_ports[node.name]}",
                "ExitRelay 0",
                "ExitPolicy reject *:*",  # onion services need no exit, and nothing may leave loopback
                f"ContactInfo {node.name}@test.invalid",
            ]
        for node in self.authorities:
            node.torrc_lines += [
                "AuthoritativeDirectory 1",
                "V3AuthoritativeDirectory 1",
                f"DirPort 127.0.0.1:{self._dir_ports[node.name]}",
                # Vote + distribution must fit in half the interval (used while there is no consensus).
                "TestingV3AuthInitialVotingInterval 10",
                "TestingV3AuthInitialVoteDelay 2",
                "TestingV3AuthInitialDistDelay 2",
                "V3AuthVotingInterval 10",
                "V3AuthVoteDelay 2",
                "V3AuthDistDelay 2",
            ]
        self.hs.torrc_lines += [
            *([f"User {self.account.user}"] if self.account is not None else []),
            "SocksPort 0",
            f"ControlPort 127.0.0.1:{self.hs_control.port}",
            "CookieAuthentication 1",
            f"Log info file {self.hs.info_log}",
            *self._service_lines,
        ]
        self.client.torrc_lines += [
            f"SocksPort 127.0.0.1:{self.socks_port}",  # IsolateSOCKSAuth is on by default
            f"ControlPort 127.0.0.1:{self.client_control.port}",
            "CookieAuthentication 1",
        ]

    def _watch_uploads(self) -> UploadEvents:
        for node in self.nodes:
            node.check_alive()  # a tor that could not bind its ports has exited by now
        return UploadEvents(self.hs_control)

    def _wait_bootstrapped(self, deadline: float) -> None:
        def bootstrapped() -> bool | None:
            for node in self.nodes:
                node.check_alive()
            phase = self.client_control.getinfo("status/bootstrap-phase")
            return True if "PROGRESS=100" in phase else None

        _wait_for("the Tor client bootstrapped", bootstrapped, deadline - time.monotonic())

    def _wait_uploaded(self, deadline: float) -> None:
        """Until each service's address is known and HSDirs accepted its descriptor (HS_DESC events)."""
        for service in self.services.values():
            service.hostname = _wait_for(
                f"the onion address of {service.name}",
                functools.partial(_read_stripped, service.hs_dir / "hostname"),
                deadline - time.monotonic(),
            )

        def uploaded() -> bool | None:
            self.hs.check_alive()
            assert self._uploads is not None
            counts = [self._uploads.count(s.hostname.removesuffix(".onion")) for s in self.services.values()]
            return True if min(counts) >= UPLOADS_BEFORE_FETCH else None

        _wait_for("the onion services' descriptors uploaded", uploaded, deadline - time.monotonic())

    def _wait_answering(self, service: OnionService, deadline: float) -> None:
        def answering() -> bool | None:
            self.client.check_alive()
            try:
                with self.session("readiness") as session:
                    response = session.get(service.url + "/", timeout=PROBE_TIMEOUT)
                    if response.status_code == 200 and response.text == service.name:
                        return True
            except requests.RequestException:
                self.newnym()  # purge a cached "no descriptor" before the next try
                raise
            return None

        _wait_for(
            f"{service.url} answering through Tor", answering, deadline - time.monotonic(), interval=1.0
        )

    def children(self) -> list[subprocess.Popen[bytes] | None]:
        return [node.popen for node in self.nodes]

    # -- using it ----------------------------------------------------------------------------------

    def service(self, name: str) -> OnionService:
        return self.services[name]

    @property
    def pids(self) -> list[int]:
        return [
            node.pid
            for node in self.nodes
            if node.pid is not None and node.popen and node.popen.poll() is None
        ]

    def rss_bytes(self) -> int:
        """Resident memory of all 7 tors now."""
        return sum(node.rss_bytes() for node in self.nodes)

    def proxy_url(self, isolation: str | None = None, *, scheme: str = "socks5h") -> str:
        """The client's SocksPort; streams with different `isolation` names get different circuits.

        tor's `IsolateSOCKSAuth` (on by default) keeps streams with different SOCKS credentials on
        different circuits: the isolation name is sent as the SOCKS username.
        """
        auth = f"{isolation}:x@" if isolation else ""
        return f"{scheme}://{auth}127.0.0.1:{self.socks_port}"

    @contextlib.contextmanager
    def session(self, isolation: str | None = None) -> Iterator[requests.Session]:
        """A requests session that goes through the client (names resolved by Tor: socks5h)."""
        with requests.Session() as session:
            session.trust_env = False
            proxy = self.proxy_url(isolation)
            session.proxies = {"http": proxy, "https": proxy}
            yield session

    def connect(
        self, service: OnionService, isolation: str, timeout: float = PROBE_TIMEOUT * 4
    ) -> socket.socket:
        """A raw stream to `service` through the client (SOCKS5, the name resolved by Tor).

        Streams with the same `isolation` share a circuit, others get their own (`IsolateSOCKSAuth`).
        """
        import socks  # noqa: PLC0415  (PySocks, which requests[socks] installs; untyped)

        proxied = socks.socksocket(socket.AF_INET, socket.SOCK_STREAM)
        proxied.set_proxy(
            socks.SOCKS5, "127.0.0.1", self.socks_port, rdns=True, username=isolation, password="x"
        )
        proxied.settimeout(timeout)
        try:
            proxied.connect((service.hostname, service.virtual_port))
        except BaseException:
            proxied.close()
            raise
        sock: socket.socket = proxied
        return sock

    def newnym(self) -> None:
        """SIGNAL NEWNYM: new circuits for new streams, and the client forgets failed descriptor fetches."""
        self.client_control.command("SIGNAL NEWNYM")

    def pow_defences_logged(self) -> int:
        """How many onion services the onion-service tor configured with PoW defences (its info log)."""
        return self.hs.log_text(info=True).count("Service PoW defenses are enabled")
