"""Abuse protection and metrics: the 429 bucket, the abuse level, and statsd on a real UDP socket."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.actors.abuse_metrics import AbuseMetricsProxy
from anon_ticket.config import BindAddress
from anon_ticket.core.abuse import PerKeyLimiter, TokenBucket
from anon_ticket.core.domain import PaymentId
from anon_ticket.httpd.listener import Listener
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline, pipeline_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == 1
    clock.now += 0.5
    assert bucket.take() == 0
    assert bucket.take() >= 1
    clock.now += 100
    assert [bucket.take() for _ in range(4)] == [0, 0, 0, 1]  # never more than the burst saved up


def test_a_slow_rate_asks_for_a_longer_wait() -> None:
    bucket = TokenBucket(rate=0.1, burst=1, clock=Clock())
    assert bucket.take() == 0
    assert bucket.take() == 10


def test_the_per_key_limiter_counts_each_key_in_its_own_window() -> None:
    clock = Clock()
    limiter = PerKeyLimiter(limit=3, window_secs=60, max_keys=100, clock=clock)
    assert [limiter.hit(b"a") for _ in range(3)] == [0, 0, 0]
    assert limiter.hit(b"a") == 60
    assert limiter.hit(b"b") == 0  # another key is not affected
    clock.now += 45
    assert limiter.hit(b"a") == 15
    clock.now += 15
    assert limiter.hit(b"a") == 0  # a new window


def test_the_per_key_limiter_forgets_the_oldest_keys_beyond_its_bound() -> None:
    limiter = PerKeyLimiter(limit=1, window_secs=60, max_keys=10, clock=Clock())
    for i in range(50):
        assert limiter.hit(bytes([i])) == 0
    assert limiter.hit(bytes([49])) > 0  # recent keys are still tracked
    assert limiter.hit(bytes([0])) == 0  # the oldest were evicted: memory stays bounded


@pytest.fixture
def statsd_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture
def pipeline(tmp_path: Path, wallet: FakeWallet, statsd_socket: socket.socket) -> Iterator[Pipeline]:
    running = Pipeline(
        pipeline_config(
            tmp_path / "a.db",
            wallet.url,
            MONITOR_START_HEIGHT="100",
            ABUSE_STORAGE_RATE="0.2",
            ABUSE_STORAGE_BURST="3",
            ABUSE_PID_PER_MINUTE="2",
            ABUSE_ELEVATED_PER_SEC="1",
            ABUSE_UNDER_ATTACK_PER_SEC="3",
            STATSD_PORT=str(statsd_socket.getsockname()[1]),
            STATSD_PREFIX="shop",
        )
    )
    yield running
    running.close()


@pytest.fixture
def port(pipeline: Pipeline) -> Iterator[int]:
    listener = Listener("public", BindAddress("127.0.0.1", 0), pipeline.daemon.public_app(), threads=2)
    listener.bind()
    listener.serve_in_thread()
    yield listener.bound_port or 0
    listener.stop()


def redeem(port: int, pid_text: str) -> tuple[int, dict[str, str], dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", "/api/v1/redeem", json.dumps({"pid": pid_text}), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()


def test_429_for_a_hammered_pid_and_for_an_empty_bucket_but_unknown_pids_still_404(
    wallet: FakeWallet, pipeline: Pipeline, port: int
) -> None:
    first, second = PaymentId.generate(), PaymentId.generate()
    for pid in (first, second):
        wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    pipeline.poll()
    assert redeem(port, first.hex())[0] == 200
    assert redeem(port, first.hex())[0] == 200
    # The same PID a third time within the minute: limited, whoever holds it.
    status, headers, body = redeem(port, first.hex())
    assert (status, body["error"]) == (429, "rate_limited")
    assert 1 <= int(headers["retry-after"]) <= 60
    # Another payment still goes through (the global bucket had 3 tokens, 2 are spent)...
    assert redeem(port, second.hex())[0] == 200
    # ... and now the global bucket is empty: 429 for everything that would reach storage.
    status, headers, body = redeem(port, second.hex())
    assert (status, body["error"]) == (429, "rate_limited")
    assert int(headers["retry-after"]) >= 1
    assert redeem(port, PaymentId.generate().hex())[0] == 404  # screened out: costs nothing, never limited
    assert redeem(port, "nope")[0] == 400  # validation comes before the limits


def test_outcomes_reach_statsd_and_floods_raise_the_abuse_level(
    pipeline: Pipeline, port: int, statsd_socket: socket.socket
) -> None:
    for _ in range(40):
        redeem(port, PaymentId.generate().hex())
    metrics = pipeline.daemon.actors.proxy("abuse_metrics", AbuseMetricsProxy)
    metrics.flush().get(timeout=5)
    assert pipeline.daemon.published.abuse_level == "under_attack"
    received = b""
    while b"shop.public.payment_not_found:" not in received or b"shop.abuse_level:2|g" not in received:
        received += statsd_socket.recv(65536)
    counted = sum(
        int(line.split(b":")[1].split(b"|")[0])
        for line in received.split(b"\n")
        if line.startswith(b"shop.public.payment_not_found:")
    )
    assert counted == 40


def test_the_poller_and_the_actors_health_reach_statsd_too(
    pipeline: Pipeline, statsd_socket: socket.socket
) -> None:
    assert pipeline.poll().ok
    metrics = pipeline.daemon.actors.proxy("abuse_metrics", AbuseMetricsProxy)
    metrics.flush().get(timeout=5)
    wanted = [b"shop.wallet.poll_ok:", b"shop.wallet.height:200|g", b"shop.wallet.up:1|g"]
    wanted += [b"shop.actors.storage_writer.restarts:0|g", b"shop.actors.wallet_poller.running:1|g"]
    received = b""
    while not all(item in received for item in wanted):
        received += statsd_socket.recv(65536)
