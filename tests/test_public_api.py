"""docs/PROTOCOL.md §4 row by row, over a real socket to the real public listener, actors and database.

The listener runs in-process here (fast, and the test can script the wallet between requests); the
daemon-as-a-process behaviours (signals, restarts, Unix sockets) are in test_daemon_process.py.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.actors.fatal import FatalSignal
from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.pid_cache import PidCache, PidCacheProxy
from anon_ticket.actors.published import PublishedState
from anon_ticket.actors.wallet_poller import PollerSettings, WalletPoller
from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PAYMENT_ID_SCHEME, PaymentId, ServiceToken
from anon_ticket.httpd.listener import Listener
from anon_ticket.service.redeem import Redeemer
from anon_ticket.storage.sqlite import SqliteStore
from anon_ticket.wallet.rpc import WalletRpc
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import CONFIRMATIONS, MIN_AMOUNT, Pipeline, pipeline_config
from tests.support.waiting import wait_for


class Public:
    """A raw HTTP client: the contract is byte-level, so no client library smooths anything over."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            found = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        return response.status, found, json.loads(raw) if raw else None

    def redeem(self, pid: PaymentId | str, **extra: Any) -> tuple[int, dict[str, str], Any]:
        text = pid.hex() if isinstance(pid, PaymentId) else pid
        return self.request(
            "POST",
            "/api/v1/redeem",
            json.dumps({"pid": text, **extra}).encode(),
            {"Content-Type": "application/json"},
        )


@pytest.fixture
def public(pipeline: Pipeline) -> Iterator[Public]:
    listener = Listener("public", BindAddress("127.0.0.1", 0), pipeline.daemon.public_app(), threads=4)
    listener.bind()
    listener.serve_in_thread()
    assert listener.bound_port is not None
    yield Public(listener.bound_port)
    listener.stop()


def paid(
    wallet: FakeWallet, pipeline: Pipeline, amount: int = MIN_AMOUNT, confirmations: int = 20
) -> PaymentId:
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=amount, confirmations=confirmations)
    assert pipeline.poll().ok
    return pid


def assert_error(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> dict[str, Any]:
    got_status, headers, body = answer
    assert (got_status, body["error"]) == (status, code), body
    assert isinstance(body["message"], str) and body["message"]
    assert headers["content-type"] == "application/json; charset=utf-8"
    return dict(body)


# -- GET /api/v1/info -----------------------------------------------------------------------------


def test_info(wallet: FakeWallet, pipeline: Pipeline, public: Public) -> None:
    pipeline.poll()
    status, headers, body = public.request("GET", "/api/v1/info")
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    private_token = body.pop("private_token")  # docs/PROTOCOL.md §12, checked in test_private_tokens_api.py
    assert set(private_token) == {"challenge", "token_key", "issuer_request_uri"}
    assert body == {
        "primary_address": wallet.address,
        "min_payment_amount": MIN_AMOUNT,
        "required_confirmations": CONFIRMATIONS,
        "payment_id_scheme": PAYMENT_ID_SCHEME,
    }


def test_info_is_unavailable_until_the_wallet_address_is_known(tmp_path: Path) -> None:
    with FakeWallet() as down:
        down.set_down(True)
        running = Pipeline(pipeline_config(tmp_path / "x.db", down.url))
        listener = Listener("public", BindAddress("127.0.0.1", 0), running.daemon.public_app(), threads=2)
        listener.bind()
        listener.serve_in_thread()
        try:
            answer = Public(listener.bound_port or 0).request("GET", "/api/v1/info")
            assert_error(answer, 503, "unavailable")
            assert answer[1]["retry-after"].isdigit()
        finally:
            listener.stop()
            running.close()


def test_info_serves_the_stored_address_while_the_wallet_is_down_after_a_restart(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    """The poller publishes the address the database is bound to when it starts, before it reaches
    the wallet: request threads only read it, and buyers still see where to pay."""
    config = pipeline_config(tmp_path / "bound.db", wallet.url, MONITOR_START_HEIGHT="100")
    first = Pipeline(config)
    assert first.poll().ok
    first.close()
    wallet.set_down(True)
    second = Pipeline(config)
    listener = Listener("public", BindAddress("127.0.0.1", 0), second.daemon.public_app(), threads=2)
    listener.bind()
    listener.serve_in_thread()
    try:
        assert not second.poll().ok
        status, _, body = Public(listener.bound_port or 0).request("GET", "/api/v1/info")
        assert (status, body["primary_address"]) == (200, wallet.address)
    finally:
        listener.stop()
        second.close()


def test_a_poller_that_cannot_read_the_stored_address_still_starts(
    tmp_path: Path, wallet: FakeWallet, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage trouble at the poller's start is said once and leaves the address unpublished (so
    /api/v1/info answers 503) until the wallet is reached; it does not fail the actor's start."""
    empty = tmp_path / "unmigrated.db"
    sqlite3.connect(empty).close()
    published = PublishedState()
    settings = PollerSettings(
        poll_interval_secs=3600,
        min_confirmations=CONFIRMATIONS,
        rescan_depth=10,
        start_height=None,
        writer_timeout_secs=5,
    )
    with caplog.at_level(logging.WARNING, logger="anon_ticket.actors.wallet_poller"):
        ref = WalletPoller.start(
            settings,
            ActorLocator(),
            published,
            FatalSignal(),
            lambda: WalletRpc(wallet.url, timeout=2),
            lambda: SqliteStore(empty, query_only=True),
            autostart=False,
        )
        try:
            assert ref.proxy().ping().get(timeout=30)
        finally:
            ref.stop()
    assert published.primary_address is None
    assert any("cannot read the stored wallet address" in r.getMessage() for r in caplog.records)


# -- POST /api/v1/redeem, in the contract's order ---------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_415_unless_utf8_json(public: Public, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = public.request("POST", "/api/v1/redeem", b'{"pid": "' + b"00" * 32 + b'"}', headers)
    assert_error(answer, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["APPLICATION/JSON", "application/json; charset=UTF-8", "application/json;charset=utf-8"]
)
def test_json_content_types_accepted_in_any_case(public: Public, content_type: str) -> None:
    answer = public.request(
        "POST", "/api/v1/redeem", json.dumps({"pid": "00" * 32}).encode(), {"Content-Type": content_type}
    )
    assert_error(answer, 404, "payment_not_found")


def test_415_comes_before_413(public: Public) -> None:
    assert_error(
        public.request("POST", "/api/v1/redeem", b"x" * 5000, {"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_413_over_1024_bytes(public: Public) -> None:
    body = json.dumps({"pid": "00" * 32, "pad": "x" * 1000}).encode()
    assert len(body) > 1024
    assert_error(
        public.request("POST", "/api/v1/redeem", body, {"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )
    exact = json.dumps({"pid": "00" * 32, "pad": "x" * (1024 - len(body) + 1000)}).encode()
    assert len(exact) == 1024
    assert_error(
        public.request("POST", "/api/v1/redeem", exact, {"Content-Type": "application/json"}),
        404,
        "payment_not_found",
    )


def test_413_for_chunked_bodies_too(public: Public) -> None:
    payload = json.dumps({"pid": "00" * 32, "pad": "y" * 3000}).encode()
    with socket.create_connection(("127.0.0.1", public.port), timeout=10) as sock:
        head = (
            b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(payload[i : i + 500]), payload[i : i + 500])
            for i in range(0, len(payload), 500)
        )
        sock.sendall(head + chunks + b"0\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the server closes after a 413
            received += chunk
        answer = received.decode()
    assert answer.startswith("HTTP/1.1 413")
    assert '"error":"payload_too_large"' in answer


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'"pid"', b"null", b"{}", b'{"PID": "00"}', b"\xff\xfe"]
)
def test_400_invalid_request(public: Public, body: bytes) -> None:
    answer = public.request("POST", "/api/v1/redeem", body, {"Content-Type": "application/json"})
    assert_error(answer, 400, "invalid_request")


@pytest.mark.parametrize(
    "pid", ["", "00" * 31, "0x" + "00" * 31, " " + "00" * 32, "zz" * 32, "٠" * 64, 5, None, ["00" * 32]]
)
def test_400_invalid_pid(public: Public, pid: object) -> None:
    body = json.dumps({"pid": pid}).encode()
    assert_error(
        public.request("POST", "/api/v1/redeem", body, {"Content-Type": "application/json"}),
        400,
        "invalid_pid",
    )


def test_404_for_an_unknown_pid_without_touching_storage(pipeline: Pipeline, public: Public) -> None:
    screen = pipeline.daemon.published.pid_screen
    assert screen is not None
    pid = PaymentId.generate()
    assert not screen.might_contain(pid.chain_payment_id().raw)
    assert_error(public.redeem(pid), 404, "payment_not_found")


def test_unknown_keys_are_ignored_and_uppercase_pids_accepted(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    pid = paid(wallet, pipeline)
    status, _, body = public.redeem(pid.hex().upper(), extra="ignored", n=[1, 2])
    assert status == 200 and body["status"] == "claimed"


def test_first_claim_then_replays(wallet: FakeWallet, pipeline: Pipeline, public: Public) -> None:
    pid = paid(wallet, pipeline)
    status, _, first = public.redeem(pid)
    assert status == 200
    assert set(first) == {"status", "token", "amount", "claimed_at"}
    assert first["status"] == "claimed" and first["amount"] == MIN_AMOUNT
    assert len(first["token"]) == 64 and first["token"] == first["token"].lower()
    assert first["claimed_at"].endswith("Z") and len(first["claimed_at"]) == 20
    for _ in range(3):
        status, _, again = public.redeem(pid)
        assert status == 200
        assert again == {**first, "status": "already_claimed"}


def test_402_when_everything_counted_is_below_the_minimum(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    pid = paid(wallet, pipeline, amount=MIN_AMOUNT - 1)
    body = assert_error(public.redeem(pid), 402, "insufficient_payment")
    assert (body["amount"], body["min_payment_amount"]) == (MIN_AMOUNT - 1, MIN_AMOUNT)


def test_202_while_pending(wallet: FakeWallet, pipeline: Pipeline, public: Public) -> None:
    pid = paid(wallet, pipeline, confirmations=3)
    status, _, body = public.redeem(pid)
    assert (status, body) == (
        202,
        {
            "status": "pending",
            "amount": MIN_AMOUNT,
            "confirmations": 3,
            "required_confirmations": CONFIRMATIONS,
        },
    )


def test_410_after_an_operator_revocation(wallet: FakeWallet, pipeline: Pipeline, public: Public) -> None:
    pid = paid(wallet, pipeline)
    _, _, claimed = public.redeem(pid)
    pipeline.revoke(ServiceToken.parse(claimed["token"]).digest().raw, "abuse")
    body = assert_error(public.redeem(pid), 410, "token_revoked")
    assert body["reason"] == "revoked"


def test_410_payment_reorged_while_its_transfer_is_gone(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    pid = PaymentId.generate()
    txid = wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT)
    wallet.mine(CONFIRMATIONS)
    pipeline.poll()
    assert public.redeem(pid)[0] == 200
    wallet.pop_blocks(CONFIRMATIONS)
    wallet.flush_pool([txid])
    wallet.mine(1)
    pipeline.poll()
    body = assert_error(public.redeem(pid), 410, "token_revoked")
    assert body["reason"] == "payment_reorged"


def test_a_colliding_payment_id_with_the_wrong_pid_is_not_found(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    """Only 8 bytes go on chain: a PID that maps to a claimed payment id but not to its token is refused."""
    pid = paid(wallet, pipeline)
    assert public.redeem(pid)[0] == 200
    impostor = PaymentId.generate()

    class Colliding(PaymentId):
        def chain_payment_id(self):  # type: ignore[no-untyped-def]
            return pid.chain_payment_id()

    redeemer: Redeemer = pipeline.redeemer
    with pytest.raises(Exception, match="no payment"):
        redeemer.redeem(Colliding(impostor.raw))


def test_503_with_retry_after_while_the_pid_screen_rebuilds(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    pid = paid(wallet, pipeline)
    pipeline.daemon.published.pid_screen = None
    answer = public.redeem(pid)
    assert_error(answer, 503, "unavailable")
    assert int(answer[1]["retry-after"]) > 0


def test_503_when_the_storage_writer_is_down(wallet: FakeWallet, pipeline: Pipeline, public: Public) -> None:
    pid = paid(wallet, pipeline)
    ref = pipeline.daemon.actors.ref("storage_writer")
    assert ref is not None
    ref.stop()
    answer = public.redeem(pid)
    assert_error(answer, 503, "unavailable")
    assert "retry-after" in answer[1]


def test_a_new_payment_reaches_the_screen_with_its_batch(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    pid = paid(wallet, pipeline)
    proxy = pipeline.daemon.actors.proxy("pid_cache", PidCacheProxy)
    assert proxy.ping().get(timeout=5)
    screen = pipeline.daemon.published.pid_screen
    assert screen is not None and screen.might_contain(pid.chain_payment_id().raw)


def test_a_poll_writes_nothing_while_the_pid_cache_is_down(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    """The poller puts a batch's payment ids on the screen before the writer commits it: with no PID
    cache to take them, the poll fails before anything is stored, so storage never holds a payment
    the screen would turn away. Once the cache is back, the next poll applies the batch."""
    assert pipeline.poll().ok
    ref = pipeline.daemon.actors.ref("pid_cache")
    assert ref is not None
    ref.stop()
    cursor = pipeline.state().scan_cursor
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    report = pipeline.poll()
    assert not report.ok and report.error is not None and "pid_cache" in report.error
    assert pipeline.transfer_rows() == []
    assert pipeline.state().scan_cursor == cursor
    pipeline.daemon.supervisor.watch()  # restarts the cache, which rebuilds its screen
    wait_for("the PID cache to run again", pipeline.daemon.actors.all_running, 30)
    assert pipeline.poll().ok
    status, _, body = public.redeem(pid)
    assert (status, body["status"]) == (200, "claimed")


class _StopsAfterItsFirstAdd(PidCache):
    """A real PID cache that goes away right after the poller's first `add` of a batch."""

    def add(self, payment_ids: Iterable[bytes]) -> None:
        super().add(payment_ids)
        self.stop()


def test_a_pid_cache_gone_after_the_commit_does_not_fail_the_poll(
    wallet: FakeWallet, pipeline: Pipeline, public: Public
) -> None:
    """The poller's second `add` (after the commit) finds no cache: the batch stays applied, and the
    cache that starts next rebuilds its screen from storage, which holds the payment."""
    assert pipeline.poll().ok
    daemon = pipeline.daemon
    original = daemon.actors.ref("pid_cache")
    assert original is not None
    original.stop()
    flaky = _StopsAfterItsFirstAdd.start(daemon.published, daemon.database.open_reader, 1000)
    daemon.actors.set_ref("pid_cache", flaky)
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    report = pipeline.poll()
    assert report.ok and report.changed_transfers == 1
    assert not flaky.is_alive()
    daemon.supervisor.watch()  # starts a real PID cache again
    wait_for(
        "a real PID cache running with its screen",
        lambda: daemon.actors.all_running() and daemon.published.pid_screen is not None,
        30,
    )
    status, _, body = public.redeem(pid)
    assert (status, body["status"]) == (200, "claimed")


# -- everything else --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/redeem", "POST"),
        ("PUT", "/api/v1/redeem", "POST"),
        ("POST", "/api/v1/info", "GET, HEAD"),
        ("DELETE", "/api/v1/info", "GET, HEAD"),
    ],
)
def test_405_with_allow(public: Public, method: str, path: str, allow: str) -> None:
    answer = public.request(method, path, b"", {"Content-Type": "application/json"})
    assert_error(answer, 405, "method_not_allowed")
    assert answer[1]["allow"] == allow


@pytest.mark.parametrize(
    "path",
    [
        "/index.html",  # "/" is the buyer's page (docs/PROTOCOL.md §10, tests/test_buyer_page.py)
        "/static/nope.js",
        "/api/v1",
        "/api/v1/redeem/",
        "/api/v1/status",
        "/healthz",
        "/admin/",
        "/api/v1/token/" + "00" * 32,
        "/API/V1/INFO",
    ],
)
def test_404_for_every_other_path(public: Public, path: str) -> None:
    assert_error(public.request("GET", path), 404, "not_found")


def test_no_server_version_or_host_name_leaks(public: Public) -> None:
    _, headers, _ = public.request("GET", "/nope")
    assert headers["server"] == "anon_ticket"
    assert socket.gethostname() not in json.dumps(headers)
