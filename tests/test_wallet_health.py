"""What /healthz, /api/v1/status and statsd say about the wallet, as a function of the poller's reports."""

from __future__ import annotations

from anon_ticket.core.wallet_health import WalletHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stale_counts_from_the_start_until_the_first_success_then_from_each_success() -> None:
    clock = Clock()
    health = WalletHealth(stale_secs=60, clock=clock)
    assert not health.stale() and health.reasons() == []
    clock.now += 60
    assert health.stale() and health.reasons() == ["wallet_stale"] and not health.up()
    health.succeeded(500, at=1_800_000_000)
    assert not health.stale() and health.up() and health.last_success_at == 1_800_000_000
    clock.now += 59
    health.failed("get_height: no complete answer within 30 s", at=1_800_000_059)
    assert not health.stale() and not health.up()  # a failed poll: down, not stale yet
    assert health.last_poll_at == 1_800_000_059 and health.last_success_at == 1_800_000_000
    clock.now += 1
    assert health.reasons() == ["wallet_stale"]


def test_a_fault_is_its_own_reason_and_ends_with_a_success() -> None:
    clock = Clock()
    health = WalletHealth(stale_secs=60, clock=clock)
    health.faulted("wallet fault: …", height=150, at=1)
    assert health.reasons() == ["wallet_fault"] and not health.up() and health.height == 150
    clock.now += 61
    assert health.reasons() == ["wallet_stale", "wallet_fault"]
    health.succeeded(260, at=2)
    assert health.reasons() == [] and health.fault is None and health.last_error is None
