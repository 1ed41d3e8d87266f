"""The wallet client against a real (fake) monero-wallet-rpc socket: deadlines, caps, auth, abort.

docs/PROTOCOL.md §9: the timeout bounds the whole call, not each read; an answer over the size cap is an
error and is never parsed; errors shown to the operator are at most 500 characters.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.errors import WalletRpcError, WalletUnreachable
from anon_ticket.wallet.rpc import MAX_ERROR_CHARS, WalletRpc
from tests.support.daemon import free_ports
from tests.support.fake_wallet import FakeWallet
from tests.support.services import need
from tests.support.waiting import wait_for


@pytest.fixture
def fake() -> Iterator[FakeWallet]:
    with FakeWallet(height=321) as wallet:
        yield wallet


def client(url: str, **kwargs: object) -> WalletRpc:
    options: dict[str, object] = {"timeout": 1.0, **kwargs}
    return WalletRpc(url, **options)  # type: ignore[arg-type]


def test_a_wallet_dripping_bytes_fails_at_the_deadline_of_the_whole_call(fake: FakeWallet) -> None:
    # Each byte comes well within the timeout, so a per-read timeout would wait for all ~100 of them.
    fake.set_drip(0.2, "get_height")
    rpc = client(fake.url)
    with pytest.raises(WalletUnreachable, match=r"get_height: no complete answer within 1 s"):
        rpc.get_height()
    fake.set_drip(0, "get_height")
    assert rpc.get_height() == 321  # the next call connects again and works
    rpc.close()


def test_a_hung_wallet_fails_at_the_deadline(fake: FakeWallet) -> None:
    fake.set_delay(30, "refresh")
    rpc = client(fake.url)
    with pytest.raises(WalletUnreachable, match="no complete answer within 1 s"):
        rpc.refresh()
    rpc.close()


def test_open_wallet_waits_past_the_call_deadline_and_only_that_call_does(fake: FakeWallet) -> None:
    # Loading a wallet file takes seconds in real wallet-rpc; the ordinary deadline is for queries.
    fake.set_no_wallet(True)
    fake.set_delay(2.5, "open_wallet")
    rpc = client(fake.url)
    rpc.open_wallet("merchant", "")
    assert not fake.no_wallet
    fake.set_delay(30, "get_height")
    with pytest.raises(WalletUnreachable, match="get_height: no complete answer within 1 s"):
        rpc.get_height()
    rpc.close()


def test_abort_abandons_a_hung_open_wallet_at_once(fake: FakeWallet) -> None:
    """The longer wait of `open_wallet` never holds the daemon's stop."""
    fake.set_no_wallet(True)
    fake.set_delay(60, "open_wallet")
    rpc = client(fake.url)
    failure: list[BaseException] = []

    def call() -> None:
        try:
            rpc.open_wallet("merchant", "")
        except WalletUnreachable as exc:
            failure.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for("open_wallet to reach the wallet", lambda: fake.calls["open_wallet"] > 0, 10, 0.01)
    rpc.abort()
    caller.join(10)  # the open's own deadline is 120 s: only the abort can end it this soon
    assert not caller.is_alive()
    assert "open_wallet: abandoned" in str(failure[0])
    rpc.close()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_an_answer_over_the_cap_is_an_error_and_is_not_held(fake: FakeWallet, declared: bool) -> None:
    fake.set_huge_answer(200 * 1024 * 1024, declared=declared)
    rpc = client(fake.url, timeout=20.0, max_response_bytes=256 * 1024)
    with pytest.raises(WalletUnreachable, match="over the 262144-byte limit"):
        rpc.get_height()
    fake.set_huge_answer(None)
    assert rpc.get_height() == 321
    rpc.close()


def test_an_answer_just_under_the_cap_is_read(fake: FakeWallet) -> None:
    fake.set_huge_answer(100_000)
    rpc = client(fake.url, max_response_bytes=100_000)
    assert set(rpc.call("get_height")) == {"pad"}
    rpc.close()


def test_garbage_is_unreachable_and_a_huge_error_message_is_cut(fake: FakeWallet) -> None:
    rpc = client(fake.url)
    fake.set_garbage(True)
    with pytest.raises(WalletUnreachable, match="not JSON"):
        rpc.get_height()
    fake.set_garbage(False)
    fake.fail_next("get_height", message="x" * 200_000)
    with pytest.raises(WalletRpcError) as caught:
        rpc.get_height()
    assert len(str(caught.value)) == MAX_ERROR_CHARS
    assert str(caught.value).startswith("get_height: xxx")
    rpc.close()


def test_abort_abandons_the_call_in_flight_and_every_later_one(fake: FakeWallet) -> None:
    fake.set_delay(60, "refresh")
    rpc = client(fake.url, timeout=60.0)
    failure: list[BaseException] = []

    def call() -> None:
        try:
            rpc.refresh()
        except WalletUnreachable as exc:
            failure.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for("the call to reach the wallet", lambda: fake.calls["refresh"] > 0, 10, 0.01)
    rpc.abort()
    caller.join(10)  # the call's own deadline is 60 s: only the abort can end it this soon
    assert not caller.is_alive()
    assert "abandoned" in str(failure[0])
    with pytest.raises(WalletUnreachable, match="abandoned"):
        rpc.get_height()
    rpc.close()


def test_digest_auth_like_rpc_login() -> None:
    with FakeWallet(user="merchant", password="s3cret pass", height=77) as fake:
        rpc = client(fake.url, user="merchant", password="s3cret pass")
        assert [rpc.get_height() for _ in range(3)] == [77, 77, 77]
        rpc.close()
        wrong = client(fake.url, user="merchant", password="nope")
        with pytest.raises(WalletUnreachable, match="HTTP 401"):
            wrong.get_height()
        wrong.close()


def test_the_password_never_shows_in_a_repr() -> None:
    rpc = WalletRpc("http://127.0.0.1:1/json_rpc", timeout=1, user="u", password="hunter2-secret")
    assert "hunter2" not in repr(rpc)
    assert "hunter2" not in repr(vars(rpc))
    assert "hunter2" not in repr(vars(rpc._http))
    rpc.close()


@pytest.fixture
def real_wallet_rpc(tmp_path: Path) -> Iterator[str]:
    """A real monero-wallet-rpc with --rpc-login (no daemon needed to answer get_version)."""
    need("monero-wallet-rpc", "Debian package monero; scripts/test installs it")
    (port,) = free_ports(1)
    argv = [
        "monero-wallet-rpc", "--rpc-login", "shop:s3cret pass", "--wallet-dir", str(tmp_path),
        "--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", str(port), "--non-interactive",
        "--daemon-address", f"127.0.0.1:{free_ports(1)[0]}", "--log-file", str(tmp_path / "wallet-rpc.log"),
    ]  # fmt: skip
    with (tmp_path / "wallet-rpc.out").open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:

        def listening() -> bool | None:
            assert process.poll() is None, (tmp_path / "wallet-rpc.out").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return None

        wait_for("monero-wallet-rpc listening", listening, 60)
        yield f"http://127.0.0.1:{port}/json_rpc"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_digest_auth_against_the_real_monero_wallet_rpc(real_wallet_rpc: str) -> None:
    rpc = client(real_wallet_rpc, timeout=10.0, user="shop", password="s3cret pass")
    assert {rpc.call("get_version")["version"] for _ in range(3)} == {65561}
    rpc.close()  # a new connection: the nonce learnt on the old one is refused, then learnt again
    assert rpc.call("get_version")["version"] == 65561
    rpc.close()
    wrong = client(real_wallet_rpc, timeout=10.0, user="shop", password="wrong")
    with pytest.raises(WalletUnreachable, match="HTTP 401"):
        wrong.call("get_version")
    wrong.close()
