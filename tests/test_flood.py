"""Under attack: a flood of unknown PIDs and slow clients must not keep a paying buyer out.

Bounded in time and count, loopback only. What this shows (and what it does not): the public listener
keeps answering a real buyer while 8 threads flood it and while slow clients hold connections open;
it cannot make one Python process faster than its one core, which is what Tor's onion-service
defences (conf/torrc.snippet) are for.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from anon_ticket.actors.abuse_metrics import AbuseMetricsProxy
from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PaymentId
from anon_ticket.httpd.listener import Listener
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline
from tests.support.waiting import wait_for

FLOOD_ANSWERS = 1000
FLOOD_THREADS = 8


@pytest.fixture
def port(pipeline: Pipeline) -> Iterator[int]:
    listener = Listener(
        "public",
        BindAddress("127.0.0.1", 0),
        pipeline.daemon.public_app(),
        threads=16,
        request_deadline=2.0,
    )
    listener.bind()
    listener.serve_in_thread()
    yield listener.bound_port or 0
    listener.stop()


def redeem(conn: http.client.HTTPConnection, pid_hex: str) -> tuple[int, dict[str, object]]:
    conn.request("POST", "/api/v1/redeem", json.dumps({"pid": pid_hex}), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_a_paying_buyer_is_served_during_a_flood_of_unknown_pids(
    wallet: FakeWallet, pipeline: Pipeline, port: int
) -> None:
    buyer = PaymentId.generate()
    wallet.add_confirmed(payment_id=buyer.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    pipeline.poll()
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    answered = [0]
    lock = threading.Lock()
    flooding = threading.Barrier(FLOOD_THREADS + 1, timeout=60)

    def flood() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        seen: Counter[int] = Counter()
        try:
            while not stop.is_set():
                status, _ = redeem(conn, PaymentId.generate().hex())
                seen[status] += 1
                if sum(seen.values()) == 1:
                    flooding.wait()  # this thread's flood is being answered
                with lock:
                    answered[0] += 1
        finally:
            conn.close()
            with lock:
                statuses.update(seen)

    threads = [threading.Thread(target=flood) for _ in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        flooding.wait()  # every flood thread has had an answer: the flood is on
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        status, body = redeem(conn, buyer.hex())  # served while the flood goes on
        conn.close()
        # The flood goes on until it has been answered FLOOD_ANSWERS times, however long that takes.
        wait_for("the flood's answers", lambda: True if answered[0] > FLOOD_ANSWERS else None, 120)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert (status, body["status"]) == (200, "claimed")
    # Every flood request was answered from memory.
    assert set(statuses) == {404} and statuses[404] > FLOOD_ANSWERS
    metrics = pipeline.daemon.actors.proxy("abuse_metrics", AbuseMetricsProxy)
    metrics.flush().get(timeout=5)
    assert pipeline.daemon.published.abuse_level in ("elevated", "under_attack")


def test_slow_clients_do_not_hold_the_listener_and_are_cut_off(
    wallet: FakeWallet, pipeline: Pipeline, port: int
) -> None:
    buyer = PaymentId.generate()
    wallet.add_confirmed(payment_id=buyer.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    pipeline.poll()
    slow = []
    for _ in range(8):  # half the worker threads, each stuck in the middle of a request line
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        slow.append(sock)
    try:
        time.sleep(0.3)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert redeem(conn, buyer.hex())[0] == 200
        conn.close()
        # ... answered while the slow clients still held their connections (nothing sent back yet) ...
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
        # ... which the listener's request timeout (2 s here, 10 s by default) then closes.
        for sock in slow:
            sock.settimeout(30)
            while sock.recv(65536):
                pass
    finally:
        for sock in slow:
            sock.close()


def test_a_client_dripping_its_request_is_cut_off_at_the_request_deadline(port: int) -> None:
    """A timeout per read would never fire for a byte every 0.3 s: the whole request has one deadline
    (2 s here), and the client still dripping then gets 408 JSON, and the connection closes.

    The client stops dripping shortly before the deadline: a byte arriving just as the server closes
    would make the kernel answer with a reset, which can destroy the 408 before it is read."""
    body = json.dumps({"pid": "ab" * 32}).encode()
    request = (
        b"POST /api/v1/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        while time.monotonic() - started < 1.5:  # the deadline is 2 s
            sock.sendall(request[sent : sent + 1])
            sent += 1
            time.sleep(0.3)
        answer = b""
        while chunk := sock.recv(65536):  # the server answers, then closes
            answer += chunk

    assert sent < len(request)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
