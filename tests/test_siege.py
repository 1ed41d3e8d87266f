"""Under attack (docs/PROTOCOL.md §8) and the HTTP details of §4, against the real daemon process.

Each attack holds a few hundred hostile connections open (reconnecting those the daemon closes)
while an honest buyer redeems one request after another: the buyer must be answered every time, the
attackers must get what the contract says (408 for an incomplete request, 400 for bad framing,
nothing for an idle connection or a bad PROXY line) and the daemon's log must not grow with them.
No timing is asserted; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.core.domain import PaymentId
from tests.support.attack import Attack, connect, honest_redeem, proxy_line, read_answer
from tests.support.daemon import DaemonProcess, claim_token, free_ports, pay, unused_udp_port
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.waiting import wait_for

DEADLINE = "2"  # HTTP_REQUEST_DEADLINE_SECS for these daemons: attackers are cut off quickly
HONEST_REQUESTS = 8
LOG_GROWTH_LIMIT = 2048  # bytes the log may grow by during an attack (it should not grow at all)


wallet = module_wallet()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("siege")
    env = {"HTTP_REQUEST_DEADLINE_SECS": DEADLINE, "INTERNAL_API_TOKEN": "siege-internal-token-0123456789"}
    with DaemonProcess(folder, wallet_url=wallet.url, env=env) as running:
        running.wait_scanning()
        yield running


def address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def paid_pid(daemon: DaemonProcess, wallet: FakeWallet) -> PaymentId:
    """A PID whose payment the daemon has seen (redeemed once: `claimed`)."""
    return claim_token(daemon, wallet)[0]


def buyer_is_served(target: tuple[str, int] | Path, pid: PaymentId, proxy: bytes = b"") -> None:
    for _ in range(HONEST_REQUESTS):
        status, body = honest_redeem(target, pid.hex(), proxy=proxy)
        assert (status, body.get("status")) == (200, "already_claimed"), body


def log_size(daemon: DaemonProcess) -> int:
    return daemon.log_path.stat().st_size


def new_log(daemon: DaemonProcess, since: int) -> str:
    with daemon.log_path.open("rb") as log:
        log.seek(since)
        return log.read().decode("utf-8", "replace")


def assert_quiet_log(daemon: DaemonProcess, since: int) -> None:
    grown = new_log(daemon, since)
    assert "Traceback" not in grown, grown[:2000]
    assert len(grown.encode()) <= LOG_GROWTH_LIMIT, grown[:2000]


def exchange(target: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes on a fresh connection: (status, headers, body, closed by the server after)."""
    with connect(target, 10) as sock:
        sock.sendall(raw)
        status, headers, body = read_answer(sock)
        sock.settimeout(10)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    return status, headers, body, closed


def json_error(body: bytes) -> str:
    parsed = json.loads(body)
    assert isinstance(parsed["message"], str) and parsed["message"]
    return str(parsed["error"])


# -- attacks that hold connections ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["idle", "drip", "stalled"])
def test_a_buyer_is_served_while_hundreds_of_connections_hold_the_public_listener(
    daemon: DaemonProcess, wallet: FakeWallet, kind: str
) -> None:
    pid = paid_pid(daemon, wallet)
    target = address(daemon.public_url)
    before = log_size(daemon)
    with Attack(target, kind, 300, drip_interval=0.5) as attack:
        attack.wait_open()
        buyer_is_served(target, pid)
        # The attackers are cut off at the deadline: incomplete requests get 408, idle ones nothing.
        wait_for("attackers closed", lambda: attack.stats.closed_by_server >= 50 or None, 30)
        if kind == "idle":
            assert not attack.stats.answers
        else:
            wait_for("408 answers", lambda: attack.stats.answers[408] or None, 30)
            assert set(attack.stats.answers) == {408}
        buyer_is_served(target, pid)
    assert_quiet_log(daemon, before)


def test_the_internal_listener_is_served_while_idle_connections_hold_it(daemon: DaemonProcess) -> None:
    target = address(daemon.internal_url)
    with Attack(target, "idle", 100) as attack:
        attack.wait_open()
        for _ in range(HONEST_REQUESTS):
            assert daemon.health() is not None


def test_chunked_garbage_is_400_and_costs_no_log(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    pid = paid_pid(daemon, wallet)
    target = address(daemon.public_url)
    before = log_size(daemon)
    with Attack(target, "chunked_garbage", 50) as attack:
        wait_for("400 answers", lambda: attack.stats.answers[400] >= 200 or None, 30)
        buyer_is_served(target, pid)
    assert set(attack.stats.answers) == {400}
    assert_quiet_log(daemon, before)


def test_at_the_connection_cap_the_oldest_waiting_connections_go_first(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    env = {"HTTP_MAX_CONNECTIONS": "40", "HTTP_REQUEST_DEADLINE_SECS": "30"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
        daemon.wait_scanning()
        pid = paid_pid(daemon, wallet)
        target = address(daemon.public_url)
        before = log_size(daemon)
        with Attack(target, "idle", 150) as attack:
            # With a 30 s deadline, only the cap can be closing them.
            wait_for("evictions at the cap", lambda: attack.stats.closed_by_server >= 100 or None, 30)
            buyer_is_served(target, pid)
        assert_quiet_log(daemon, before)


def test_a_low_descriptor_limit_caps_connections_below_it(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url, nofile=256) as daemon:
        daemon.wait_scanning()
        assert re.search(r"descriptor limit 256: at most 64 connections per listener", daemon.log_text())
        pid = paid_pid(daemon, wallet)
        target = address(daemon.public_url)
        before = log_size(daemon)
        with Attack(target, "idle", 300) as attack:
            wait_for("evictions at the cap", lambda: attack.stats.closed_by_server >= 100 or None, 30)
            buyer_is_served(target, pid)
        assert_quiet_log(daemon, before)


def test_with_the_access_gateway_three_listeners_share_the_descriptor_limit(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    # (256 - 128 reserved) // 3 listeners: each listener may fill its cap at once.
    (port,) = free_ports(1)
    env = {"ACCESS_GATEWAY_BIND_ADDRESS": f"127.0.0.1:{port}"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, nofile=256, env=env) as daemon:
        daemon.wait_scanning()
        assert re.search(r"descriptor limit 256: at most 42 connections per listener", daemon.log_text())


def test_running_out_of_descriptors_is_counted_not_logged(tmp_path: Path, wallet: FakeWallet) -> None:
    """The limit drops under the running daemon: accept() meets EMFILE, the oldest waiting go."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", unused_udp_port()))
        statsd.settimeout(0.2)
        env = {"STATSD_PORT": str(statsd.getsockname()[1]), "PUBLIC_THREADS": "2"}
        with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
            daemon.wait_scanning()
            pid = paid_pid(daemon, wallet)
            target = address(daemon.public_url)
            buyer_is_served(target, pid)  # every worker has its database connection open
            in_use = len(os.listdir(f"/proc/{daemon.pid}/fd"))
            limit = in_use + 40
            resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, (limit, limit))
            before = log_size(daemon)
            with Attack(target, "idle", 200) as attack:
                wait_for("evictions", lambda: attack.stats.closed_by_server >= 100 or None, 30)
                buyer_is_served(target, pid)
            assert_quiet_log(daemon, before)

            def counted() -> bool | None:
                try:
                    packet = statsd.recv(65536).decode()
                except TimeoutError:
                    return None
                return True if "http.public.out_of_descriptors" in packet else None

            wait_for("the out_of_descriptors counter in statsd", counted, 10)


# -- PROXY protocol (PROXY_PROTOCOL=tor) --------------------------------------------------------------


@pytest.fixture(scope="module")
def tor_daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("siege-tor")
    env = {
        "PROXY_PROTOCOL": "tor",
        "HTTP_MAX_CONNECTIONS_PER_CIRCUIT": "4",
        "ABUSE_CIRCUIT_PER_MINUTE": "3",
        "HTTP_REQUEST_DEADLINE_SECS": "30",
    }
    with DaemonProcess(folder, wallet_url=wallet.url, env=env) as running:
        running.wait_scanning()
        yield running


def tor_paid_pid(daemon: DaemonProcess, wallet: FakeWallet, circuit: int) -> PaymentId:
    pid = PaymentId.generate()
    pay(wallet, pid, daemon.min_payment_amount, daemon.confirmations)
    target = address(daemon.public_url)

    def claimed() -> bool | None:
        status, _ = honest_redeem(target, pid.hex(), proxy=proxy_line(circuit))
        return True if status == 200 else None

    wait_for("the payment to be seen", claimed, 15)
    return pid


def test_with_proxy_protocol_every_connection_must_start_with_a_proxy_line(
    tor_daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    target = address(tor_daemon.public_url)
    pid = tor_paid_pid(tor_daemon, wallet, circuit=0x1234)
    status, body = honest_redeem(target, pid.hex(), proxy=proxy_line(0x1234))
    assert (status, body["status"]) == (200, "already_claimed")
    for opening in (b"", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"PROXY TCP6 ::1 ::1 99999 1\r\n"):
        with connect(target, 10) as sock:
            sock.sendall(opening + b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536) == b""  # closed without an answer


def test_proxy_garbage_does_not_keep_a_buyer_out(tor_daemon: DaemonProcess, wallet: FakeWallet) -> None:
    target = address(tor_daemon.public_url)
    pid = tor_paid_pid(tor_daemon, wallet, circuit=0x2000)
    before = log_size(tor_daemon)
    with Attack(target, "proxy_garbage", 100) as attack:
        wait_for("garbage closed", lambda: attack.stats.closed_by_server >= 200 or None, 30)
        status, _ = honest_redeem(target, pid.hex(), proxy=proxy_line(0x2001))
        assert status == 200
    assert not attack.stats.answers
    assert_quiet_log(tor_daemon, before)


def test_connections_are_capped_per_circuit(tor_daemon: DaemonProcess, wallet: FakeWallet) -> None:
    target = address(tor_daemon.public_url)
    pid = tor_paid_pid(tor_daemon, wallet, circuit=0x3001)
    with Attack(target, "idle", 12, proxy=lambda _: proxy_line(0x3000)) as attack:
        # 12 on one circuit, 4 allowed: the oldest are closed as new ones come, over and over.
        wait_for("per-circuit evictions", lambda: attack.stats.closed_by_server >= 20 or None, 30)
        status, _ = honest_redeem(target, pid.hex(), proxy=proxy_line(0x3001))
        assert status == 200


def test_abuse_limits_are_kept_per_circuit(tor_daemon: DaemonProcess, wallet: FakeWallet) -> None:
    target = address(tor_daemon.public_url)
    pid = tor_paid_pid(tor_daemon, wallet, circuit=0x4000)  # one storage-path redeem on this circuit
    answers = [honest_redeem(target, pid.hex(), proxy=proxy_line(0x4000))[0] for _ in range(3)]
    assert answers == [200, 200, 429]  # ABUSE_CIRCUIT_PER_MINUTE=3
    assert honest_redeem(target, pid.hex(), proxy=proxy_line(0x4001))[0] == 200  # another circuit


def test_without_proxy_protocol_a_proxy_line_is_a_malformed_request(daemon: DaemonProcess) -> None:
    target = address(daemon.public_url)
    status, _, body, closed = exchange(
        target, proxy_line(7) + b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert (status, json_error(body), closed) == (400, "invalid_request", True)


# -- the HTTP details of §4 that the server itself answers ---------------------------------------------

HEAD = b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, "invalid_request"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n", 400, "invalid_request"),
        (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"8000\r\n" + b"x" * 0x8000 + b"\r\n8001\r\n",
            413,
            "payload_too_large",
        ),
        (HEAD + b"Content-Length: 70000\r\n\r\n{}", 413, "payload_too_large"),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "invalid_request"),
        (HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400, "invalid_request"),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "not_implemented"),
        (b"GET /api/v1/info HTTP/9.9\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        (b"GET /api/v1/info HTTP/1.1\r\nHost : x\r\n\r\n", 400, "invalid_request"),
    ],
    ids=[
        "bad-chunk-size",
        "chunk-longer-than-size",
        "chunked-over-64k",
        "length-over-64k",
        "conflicting-lengths",
        "length-and-chunked",
        "unknown-coding",
        "bad-version",
        "space-before-colon",
    ],
)
def test_framing_faults_get_a_json_answer_and_the_connection_closes(
    daemon: DaemonProcess, raw: bytes, status: int, code: str
) -> None:
    before = log_size(daemon)
    got_status, headers, body, closed = exchange(address(daemon.public_url), raw)
    assert (got_status, json_error(body), closed) == (status, code, True)
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["server"] == "anon_ticket"
    assert_quiet_log(daemon, before)


def test_a_body_that_never_completes_is_408_and_the_connection_closes(daemon: DaemonProcess) -> None:
    status, _, body, closed = exchange(address(daemon.public_url), HEAD + b'Content-Length: 50\r\n\r\n{"pid"')
    assert (status, json_error(body), closed) == (408, "request_timeout", True)


def test_no_answer_to_head_has_a_body_and_the_connection_stays_usable(daemon: DaemonProcess) -> None:
    with connect(address(daemon.public_url), 10) as sock:
        for path in (b"/api/v1/info", b"/api/v1/redeem", b"/nowhere"):
            sock.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            # read_answer would read a body by Content-Length; HEAD answers carry none, so the
            # next answer on the connection must start right after the head.
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 ")
        sock.sendall(b"GET /api/v1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_answer(sock)
    assert (status, json_error(body)) == (404, "not_found")
    assert headers["server"] == "anon_ticket"


def test_pipelined_requests_are_answered_in_order(daemon: DaemonProcess) -> None:
    with connect(address(daemon.public_url), 10) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = [read_answer(sock)[0] for _ in range(3)]
    assert answers[:2] == [404, 404] and answers[2] in (200, 503)


def test_pipelined_answers_that_arrive_together_are_each_read(daemon: DaemonProcess) -> None:
    """The answers wait in the socket until all three are there, as on a loaded machine.

    Reading them one by one must then give three answers, not one answer and a wait for answers
    already received until the daemon closes the idle connection ("closed before an answer").
    """
    with connect(address(daemon.public_url), 10) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 3)

        def all_three_arrived() -> bool | None:
            return sock.recv(65536, socket.MSG_PEEK).count(b"HTTP/1.1 404 ") == 3 or None

        wait_for("three pipelined answers", all_three_arrived, 20)
        answers = [read_answer(sock)[0] for _ in range(3)]
    assert answers == [404, 404, 404]


def test_expect_100_continue_is_honoured(daemon: DaemonProcess) -> None:
    body = json.dumps({"pid": "ab" * 32}).encode()
    with connect(address(daemon.public_url), 10) as sock:
        sock.sendall(HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        status, _, answer = read_answer(sock)
    assert (status, json_error(answer)) == (404, "payment_not_found")


def test_the_internal_listener_over_a_unix_socket_resists_idle_connections(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    env = {"INTERNAL_UNIX_SOCKET": "internal.sock"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
        path = daemon.internal_socket
        assert path is not None and (path.stat().st_mode & 0o777) == 0o600
        with Attack(path, "idle", 100) as attack:
            attack.wait_open()
            for _ in range(HONEST_REQUESTS):
                assert daemon.health() is not None


def test_the_siege_benchmark_smoke_run_meets_its_success_target() -> None:
    """`scripts/bench_siege.py --smoke`: the benchmark itself keeps working (success rate only)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "bench_siege.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("public", "internal"))]
    assert len(rows) == 5 and all(" PASS" in row and " FAIL" not in row for row in rows), done.stdout


def test_json_logs_stay_json_under_attack_and_sigterm_still_stops_cleanly(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    env = {"LOG_FORMAT": "json", "HTTP_REQUEST_DEADLINE_SECS": DEADLINE}
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url, env=env)
    with daemon:
        target = address(daemon.public_url)
        with Attack(target, "chunked_garbage", 20) as garbage, Attack(target, "stalled", 100) as stalled:
            wait_for("400 answers", lambda: garbage.stats.answers[400] >= 100 or None, 30)
            wait_for("408 answers", lambda: stalled.stats.answers[408] or None, 30)
            assert daemon.stop() == 0  # with the attackers' connections still open
    lines = [line for line in daemon.log_text().splitlines() if not line.startswith("--- start")]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
