"""The library API: typed answers from one exchange, and the waiting policy with a fake clock."""

from __future__ import annotations

import pytest

from anon_ticket.client import ClientSession, NotSeen, Pending, Refused, Waiting
from anon_ticket.client.errors import NetworkError, RedemptionRefused, ServerBusy, WaitTimedOut
from anon_ticket.client.text import clean, format_xmr
from anon_ticket.client.waiting import BACKOFF_CAP_FACTOR, MAX_RETRY_AFTER, Backoff
from anon_ticket.core.domain import PAYMENT_ID_SCHEME, PaymentId, TxId

from .fakeserver import INFO, NOT_FOUND_CODE, FakeServer, error, ok

PID = PaymentId(bytes(31) + b"\x01")
TOKEN = PID.service_token(TxId(bytes(range(32)))).hex()
CLAIMED = {"status": "claimed", "token": TOKEN, "amount": 7, "claimed_at": "2026-11-27T23:59:59Z"}


class FakeClock:
    """Time that only moves when the code under test sleeps: delays are observed, never waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_contract_token_vector() -> None:
    assert TOKEN == "cc26cd8284acddaed0d7e7065401f5d41eb23007330e4eac74fb7e5943ce5649"


def test_fetch_info_and_redeem_once(server: FakeServer) -> None:
    server.redeem(
        error(404, NOT_FOUND_CODE),
        ok({"status": "pending", "amount": 3, "confirmations": 2, "required_confirmations": 10}, status=202),
        ok({"status": "pending", "amount": True, "confirmations": "x"}, status=202),
        error(410, "token_revoked", "gone", reason="payment_reorged"),
        ok(CLAIMED),
    )
    with ClientSession(server.url) as session:
        info = session.fetch_info()
        assert info.primary_address == INFO["primary_address"]
        assert info.payment_id_scheme == PAYMENT_ID_SCHEME
        assert session.redeem_once(PID) == NotSeen()
        assert session.redeem_once(PID) == Pending(3, 2, 10)
        assert session.redeem_once(PID) == Pending(None, None, None)  # progress fields are lenient
        refused = session.redeem_once(PID)
        assert refused == Refused(410, "token_revoked", "gone", reason="payment_reorged")
        claimed = session.redeem_once(PID)
    assert not isinstance(claimed, NotSeen | Pending | Refused)
    assert claimed.token.hex() == TOKEN
    assert TOKEN not in repr(claimed)  # the token hides itself from logs and tracebacks


def test_busy_is_raised_with_retry_after(server: FakeServer) -> None:
    server.redeem(error(429, "rate_limited", retry_after=7), error(503, "unavailable"))
    with ClientSession(server.url) as session:
        with pytest.raises(ServerBusy) as first:
            session.redeem_once(PID)
        with pytest.raises(ServerBusy) as second:
            session.redeem_once(PID)
    assert (first.value.status, first.value.retry_after) == (429, 7)
    assert (second.value.status, second.value.retry_after) == (503, None)


def test_backoff_grows_while_nothing_changes_and_resets_on_change(server: FakeServer) -> None:
    server.redeem(*[error(404, NOT_FOUND_CODE)] * 6, ok({"status": "pending"}, status=202), ok(CLAIMED))
    clock = FakeClock()
    steps: list[Waiting] = []
    with ClientSession(server.url) as session:
        claimed = session.redeem_until(
            PID, clock() + 3600, steps.append, poll_interval=10, clock=clock, sleep=clock.sleep
        )
    assert claimed.token.hex() == TOKEN
    expected = [10, 15, 22.5, 33.75, 50.625, 75.9375, 10]
    assert [step.delay for step in steps] == clock.sleeps
    for delay, nominal in zip(clock.sleeps, expected, strict=True):
        assert nominal * 0.9 <= delay <= nominal * 1.1
    assert isinstance(steps[-1].cause, Pending)


def test_backoff_is_capped() -> None:
    backoff = Backoff(1.0, 4.0)
    delays = [backoff.next() for _ in range(10)]
    assert max(delays) <= 4.0 * 1.1
    assert BACKOFF_CAP_FACTOR * 15 == 120  # the default interval backs off to about one block


def test_retry_after_is_obeyed_but_bounded(server: FakeServer) -> None:
    server.redeem(
        error(429, "rate_limited", retry_after=42),
        error(503, "unavailable", retry_after=10**9),
        error(503, "unavailable", retry_after=0),
        ok(CLAIMED),
    )
    clock = FakeClock()
    with ClientSession(server.url) as session:
        session.redeem_until(PID, clock() + 3600, poll_interval=5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [42, MAX_RETRY_AFTER, 1]


def test_every_wait_is_cut_at_the_deadline(server: FakeServer) -> None:
    server.redeem(error(404, NOT_FOUND_CODE))
    clock = FakeClock()
    with ClientSession(server.url) as session, pytest.raises(WaitTimedOut) as caught:
        session.redeem_until(PID, clock() + 100, poll_interval=30, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) == pytest.approx(100)
    assert caught.value.last == NotSeen()
    assert caught.value.exit_code == 3


def test_refusal_raises(server: FakeServer) -> None:
    server.redeem(error(402, "insufficient_payment", "more", amount=1, min_payment_amount=2))
    clock = FakeClock()
    with ClientSession(server.url) as session, pytest.raises(RedemptionRefused) as caught:
        session.redeem_until(PID, clock() + 100, clock=clock, sleep=clock.sleep)
    assert caught.value.answer.amount == 1
    assert caught.value.exit_code == 4


def test_network_failure_at_the_deadline_is_raised(closed_port_url: str) -> None:
    clock = FakeClock()
    with ClientSession(closed_port_url, timeout=2) as session, pytest.raises(NetworkError) as caught:
        session.redeem_until(PID, clock() + 60, poll_interval=10, clock=clock, sleep=clock.sleep)
    assert caught.value.exit_code == 5
    assert len(clock.sleeps) >= 3


def test_wait_for_info_rides_out_a_starting_server(server: FakeServer) -> None:
    server.info(error(503, "unavailable", retry_after=3), ok(INFO))
    clock = FakeClock()
    with ClientSession(server.url) as session:
        info = session.wait_for_info(clock() + 60, clock=clock, sleep=clock.sleep)
    assert info.min_payment_amount == INFO["min_payment_amount"]
    assert clock.sleeps == [3]


@pytest.mark.parametrize(
    ("atomic", "text"),
    [
        (0, "0"),
        (1, "0.000000000001"),
        (10**10, "0.01"),
        (10**12, "1"),
        (123 * 10**12 + 45 * 10**9, "123.045"),
    ],
)
def test_format_xmr_is_exact(atomic: int, text: str) -> None:
    assert format_xmr(atomic) == text


def test_clean_strips_escapes_and_caps_length() -> None:
    assert clean("a\x1b[31mb\u202ec\td") == "a[31mbc d"
    assert len(clean("x" * 1000)) == 300
