"""`client tokens` (docs/PROTOCOL.md §12) against the real daemon: fetching into a private file, safe
retries through a connection that loses answers, the allowance, `--take`, SOCKS, and what is refused."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.privacypass.wire import b64url_encode, parse_authorization
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet

from .fakeserver import run_cli
from .socksproxy import start_proxy

PER_PAYMENT = 6
FAST = ("--poll-interval", "0.01", "--timeout", "20")
SPEND = "/api/v1/private-token/spend"


wallet = module_wallet()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("client_tokens")
    with DaemonProcess(
        folder, wallet_url=wallet.url, env={"PRIVACY_PASS_TOKENS_PER_PAYMENT": str(PER_PAYMENT)}
    ) as d:
        yield d


def fetch(server: str, service_token: str, count: int, out: Path, *extra: str) -> tuple[int, str, str]:
    run = run_cli(
        "tokens",
        "--server",
        server,
        "--count",
        str(count),
        "--out",
        str(out),
        *FAST,
        *extra,
        stdin=service_token + "\n",
    )
    return run.code, run.out, run.err


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").split()


def issued(daemon: DaemonProcess, service_token: str) -> int:
    return int(daemon.internal("GET", f"/api/v1/token/{service_token}").json()["private_tokens"]["issued"])


def test_fetched_tokens_land_in_a_private_file_and_each_spends_once(
    daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    out = tmp_path / "tokens.txt"
    code, stdout, stderr = fetch(daemon.public_url, service_token, 3, out)
    assert (code, stdout.strip()) == (0, "3"), stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    tokens = lines(out)
    assert len(set(tokens)) == 3
    assert service_token not in stdout + stderr
    for token in tokens:
        assert daemon.internal("POST", SPEND, json={"token": token}).status_code == 200
        assert daemon.internal("POST", SPEND, json={"token": token}).status_code == 409
    # A second run appends.
    token_file = tmp_path / "service_token"
    token_file.write_text(service_token + "\n")
    token_file.chmod(0o600)
    run = run_cli(
        "tokens",
        "--server",
        daemon.public_url,
        "--count",
        "2",
        "--out",
        str(out),
        "--token-file",
        str(token_file),
        *FAST,
    )
    assert run.code == 0, run.err
    assert lines(out)[:3] == tokens and len(lines(out)) == 5


def test_the_allowance_ends_a_fetch_with_exit_4_keeping_what_was_fetched(
    daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    out = tmp_path / "tokens.txt"
    code, _, stderr = fetch(daemon.public_url, service_token, PER_PAYMENT + 3, out)
    assert code == 4
    assert "allowance is used up" in stderr and f"{PER_PAYMENT} private token(s) appended" in stderr
    assert len(lines(out)) == PER_PAYMENT


def test_a_revoked_service_token_is_refused(
    daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    daemon.internal("POST", f"/api/v1/token/{service_token}/revoke")
    code, _, stderr = fetch(daemon.public_url, service_token, 1, tmp_path / "t")
    assert code == 4 and "revoked" in stderr
    code, _, stderr = fetch(daemon.public_url, "ab" * 32, 1, tmp_path / "t")
    assert code == 4 and "does not know this service token" in stderr


class LossyRelay:
    """A TCP relay to the daemon that forwards every request but swallows the first `drop` answers to a
    POST (the server has issued; the client never hears it), closing the connection instead."""

    def __init__(self, target: tuple[str, int], drop: int) -> None:
        self.target = target
        self.drop = drop
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client:
            while True:
                request = _read_message(client)
                if request is None:
                    return
                with socket.create_connection(self.target) as upstream:
                    upstream.sendall(request)
                    answer = _read_message(upstream)
                if answer is None:
                    return
                if request.startswith(b"POST") and self.drop > 0:
                    self.drop -= 1
                    return  # the answer is lost on the way back
                client.sendall(answer)

    def close(self) -> None:
        self.sock.close()


def _read_message(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def test_answers_lost_on_the_way_are_fetched_again_for_free(
    daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    port = int(daemon.public_url.rpartition(":")[2])
    relay = LossyRelay(("127.0.0.1", port), drop=3)
    try:
        code, stdout, stderr = fetch(relay.url, service_token, 2, tmp_path / "tokens.txt")
    finally:
        relay.close()
    assert (code, stdout.strip()) == (0, "2"), stderr
    assert relay.drop == 0  # three answers were lost and their requests sent again
    assert issued(daemon, service_token) == 2  # each retry was free
    for token in lines(tmp_path / "tokens.txt"):
        assert daemon.internal("POST", SPEND, json={"token": token}).status_code == 200


def test_fetching_through_socks5h(daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path) -> None:
    _, service_token = claim_token(daemon, wallet)
    port = int(daemon.public_url.rpartition(":")[2])
    proxy, thread = start_proxy(("127.0.0.1", port))
    try:
        code, _, stderr = fetch(
            "http://shop.example.onion", service_token, 1, tmp_path / "t", "--proxy", proxy.url
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
    assert code == 0, stderr
    assert ("shop.example.onion", 80) in proxy.asked
    assert len(lines(tmp_path / "t")) == 1


def test_take_prints_the_header_and_removes_the_token(tmp_path: Path) -> None:
    out = tmp_path / "tokens.txt"
    tokens = [b64url_encode(bytes([2, 0, i]) + bytes(470)) for i in range(3)]
    out.write_text("".join(token + "\n" for token in tokens))
    out.chmod(0o600)
    taken = []
    for _ in tokens:
        run = run_cli("tokens", "--take", str(out))
        assert run.code == 0, run.err
        prefix = 'Authorization: PrivateToken token="'
        assert run.out.startswith(prefix) and run.out.endswith('"\n')
        taken.append(run.out[len(prefix) : -2])
    assert taken == tokens
    assert out.read_text() == "" and stat.S_IMODE(os.stat(out).st_mode) == 0o600
    empty = run_cli("tokens", "--take", str(out))
    assert empty.code == 2 and "no unused token left" in empty.err


def test_a_taken_header_is_what_an_origin_parses(
    daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path
) -> None:
    _, service_token = claim_token(daemon, wallet)
    out = tmp_path / "tokens.txt"
    assert fetch(daemon.public_url, service_token, 1, out)[0] == 0
    header = run_cli("tokens", "--take", str(out)).out.strip()
    token = parse_authorization(header.removeprefix("Authorization: "))
    assert daemon.internal("POST", SPEND, json={"token": b64url_encode(token.encode())}).status_code == 200


def test_concurrent_takes_never_share_a_token(tmp_path: Path) -> None:
    out = tmp_path / "tokens.txt"
    tokens = [b64url_encode(bytes([2, 0]) + i.to_bytes(2, "big") + bytes(469)) for i in range(40)]
    out.write_text("".join(token + "\n" for token in tokens))
    out.chmod(0o600)
    taken: list[str] = []
    lock = threading.Lock()

    def taker() -> None:
        for _ in range(5):
            run = run_cli("tokens", "--take", str(out))
            assert run.code == 0, run.err
            with lock:
                taken.append(run.out.strip())

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(taken) == 40 and len(set(taken)) == 40
    assert out.read_text() == ""


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "tokens.txt"
    out.write_text("x\n")
    out.chmod(0o644)
    run = run_cli("tokens", "--take", str(out))
    assert run.code == 2 and "chmod 600" in run.err
    assert out.read_text() == "x\n"


def test_the_service_token_is_refused_on_the_command_line(tmp_path: Path) -> None:
    run = run_cli(
        "tokens",
        "--server",
        "http://127.0.0.1:1",
        "--count",
        "1",
        "--out",
        str(tmp_path / "t"),
        "--token-file",
        "ab" * 32,
    )
    assert run.code == 2 and "does not belong on the command line" in run.err
    assert "ab" * 32 not in run.err


@pytest.mark.parametrize(
    "argv",
    [
        ["tokens", "--server", "http://127.0.0.1:1", "--count", "1"],  # no --out
        ["tokens", "--server", "http://127.0.0.1:1", "--out", "t"],  # no --count
        ["tokens", "--server", "http://127.0.0.1:1", "--count", "0", "--out", "t"],
        ["tokens", "--take", "t", "--server", "http://127.0.0.1:1"],
        ["tokens", "--server", "http://x.onion", "--count", "1", "--out", "t"],  # .onion without a proxy
    ],
)
def test_usage_errors_are_exit_2(argv: list[str], tmp_path: Path) -> None:
    run = run_cli(*argv, stdin="ab" * 32 + "\n")
    assert run.code == 2, run.err
