"""The panel's small parts, in-process: charts, daily waiting counts, Host names, throttle, sessions."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from anon_ticket.config import BindAddress
from anon_ticket.panel import charts
from anon_ticket.panel.figures import DayFigures, to_csv, waiting_by_day, xmr
from anon_ticket.panel.hosts import HostPolicy
from anon_ticket.panel.sessions import PanelSession
from anon_ticket.panel.throttle import LoginThrottle
from anon_ticket.service.status import (
    ActorStatus,
    NodeStatus,
    PaymentCounts,
    Status,
    StorageStatus,
    TokenCounts,
    WalletStatus,
)
from anon_ticket.storage.pool import PoolFigures
from anon_ticket.storage.protocols import PendingSpan

DAY = 86_400


def quiet_status() -> Status:
    """A `Status` with nothing to show: no wallet figures, no actors, no payments, no node."""
    wallet = WalletStatus(None, None, None, None, stale=False, last_success_at=None)
    return Status(
        version="0",
        actors=(),
        wallet=wallet,
        scan_cursor=None,
        payments=PaymentCounts(pending=0, redeemable=0, claimed=0),
        tokens=TokenCounts(active=0, revoked=0),
        abuse_level="normal",
    )


def render_dashboard(status: Status) -> str:
    """The dashboard page as a signed-in operator sees it for `status`."""
    from anon_ticket.panel.app import templates  # noqa: PLC0415

    values = {"signed_in": True, "csrf": "c", "section": "dashboard", "max_reason": 256, "abuse_chart": None}
    return templates().get_template("dashboard.html").render(status=status, **values)


def test_round_gridlines_and_plain_decimal_labels() -> None:
    assert [charts.nice_step(top) for top in (7, 8, 40, 0.000008, 1234)] == [2, 2, 10, 0.000002, 500]
    chart = charts.bar_chart("t", [charts.Point("a", 0.000008, "8"), charts.Point("b", 0.000002, "2")])
    assert [g.label for g in chart.gridlines] == ["0", "0.000002", "0.000004", "0.000006", "0.000008"]
    assert chart.bars[0].height == charts.HEIGHT - charts.TOP - charts.BOTTOM  # the tallest fills the plot
    assert chart.bars[1].height == chart.bars[0].height / 4
    assert chart.bars[0].y + chart.bars[0].height == chart.baseline
    assert chart.left >= 14 + 7 * len("0.000008") and chart.bars[0].x > chart.left  # labels fit
    empty = charts.bar_chart("t", [charts.Point("a", 0, "0")], integers=True)
    assert empty.empty and [g.label for g in empty.gridlines] == ["0", "1"]


def test_waiting_payments_are_counted_at_each_end_of_day_and_now() -> None:
    first, today = 100, 103
    now = today * DAY + 3600
    spans = [
        PendingSpan(b"a", 100 * DAY + 10, 101 * DAY + 5),  # waits over the end of day 100 only
        PendingSpan(b"a", 100 * DAY + 20, None),  # same payment, still waiting: days 100-102 and now
        PendingSpan(b"b", 101 * DAY + 1, 101 * DAY + 9),  # counted within its day: never at an end
        PendingSpan(b"c", today * DAY + 60, None),  # seen today: waiting now
        PendingSpan(b"d", 102 * DAY, 103 * DAY),  # seen at the very end of day 101, counted at 102's
    ]
    assert waiting_by_day(spans, first, today, now) == {100: 1, 101: 2, 102: 1, 103: 2}


def test_csv_and_xmr() -> None:
    assert [xmr(n) for n in (0, 1, 10**10, 10**12, 15 * 10**11)] == [
        "0",
        "0.000000000001",
        "0.01",
        "1",
        "1.5",
    ]
    rows = [DayFigures(datetime.date(2026, 12, 1), 2, 10**10, 1, 3, 7, 5)]
    assert to_csv(rows) == (
        "date,claims,counted_atomic,counted_xmr,counted_transfers,waiting_payments,"
        "private_tokens_issued,private_tokens_spent\r\n"
        "2026-12-01,2,10000000000,0.01,1,3,7,5\r\n"
    )


def test_host_policy() -> None:
    loopback = HostPolicy.for_listener(BindAddress("127.0.0.1", 8081))
    for good in ("localhost", "LOCALHOST:8081", "127.0.0.1:1", "[::1]:80", "[::1]"):
        assert loopback.allows(good), good
    for bad in (
        "evil.com",
        "evil.com:8081",
        "localhost.",
        "localhost:abc",
        "::1",
        "a@localhost",
        "",
        None,
        "10.0.0.1",
    ):
        assert not loopback.allows(bad), bad
    wildcard = HostPolicy.for_listener(BindAddress("0.0.0.0", 8081))
    assert (
        wildcard.allows("10.0.0.1:8081") and wildcard.allows("[fe80::1]") and not wildcard.allows("evil.com")
    )
    named = HostPolicy.for_listener(BindAddress("panel.internal", 8081))
    assert named.allows("panel.internal:8081") and not named.allows("other.internal")
    socket = HostPolicy.for_listener(Path("/run/anon_ticket/internal.sock"))
    assert socket.allows("localhost") and socket.allows("/run/anon_ticket/internal.sock")
    assert socket.allows("%2Frun%2Fanon_ticket%2Finternal.sock") and not socket.allows("evil.com")


def test_throttle_refuses_after_five_failures_in_a_minute_and_announces_once() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(4):
        throttle.failed()
        now[0] += 10
    assert throttle.retry_after() == 0
    throttle.failed()  # the 5th within 60 s (at 1040)
    assert throttle.retry_after() == 20  # until the first one is a minute old
    assert throttle.first_refusal() and not throttle.first_refusal()
    now[0] = 1060.0
    assert throttle.retry_after() == 0
    throttle.failed()  # 1010..1060: five again within the minute
    assert throttle.retry_after() == 10
    assert throttle.first_refusal()  # a new spell is announced again
    throttle.succeeded()
    assert throttle.retry_after() == 0


def test_sessions_are_stored_only_when_signed_in_and_capped() -> None:
    class Tiny(PanelSession):
        cache: dict = {}  # type: ignore[type-arg]  # noqa: RUF012
        locks: dict = {}  # type: ignore[type-arg]  # noqa: RUF012
        max_sessions = 2

    expires = datetime.datetime.now() + datetime.timedelta(hours=1)
    anonymous = Tiny()
    anonymous._save(expires)
    assert not Tiny.cache  # nothing to keep
    ids = []
    for offset in range(3):
        session = Tiny()
        session["signed_in_at"] = offset
        session._save(expires + datetime.timedelta(seconds=offset))
        ids.append(session.id)
    assert len(Tiny.cache) == 2 and ids[0] not in Tiny.cache  # the oldest went first
    assert Tiny.stored(ids[2]) and not Tiny.stored(ids[0]) and not Tiny.stored(None)
    stale = Tiny(ids[1])
    Tiny.cache[ids[1]] = ({"signed_in_at": 1}, datetime.datetime.now() - datetime.timedelta(seconds=1))
    assert stale._load() is None and ids[1] not in Tiny.cache  # an expired session is dropped on read


def test_the_dashboard_renders_the_typed_status() -> None:
    """The panel renders the same `Status` value the API turns into JSON, `stale` and
    `last_success_at` (docs/PROTOCOL.md §9) included, times in the panel's own format."""
    wallet = WalletStatus(
        height=7,
        primary_address="4A",
        last_poll_at=None,
        last_error="timed out",
        stale=False,
        last_success_at=None,
    )
    status = Status(
        version="0",
        actors=(("wallet_poller", ActorStatus("running", 0)),),
        wallet=wallet,
        scan_cursor=5,
        payments=PaymentCounts(pending=1, redeemable=2, claimed=3),
        tokens=TokenCounts(active=3, revoked=0),
        abuse_level="elevated",
    )
    plain = render_dashboard(status)
    assert "timed out" in plain and "elevated" in plain and '<td class="good">no</td>' in plain
    assert '<tr><td>wallet_poller</td><td class="good">running</td><td class="num">0</td></tr>' in plain
    stale_wallet = dataclasses.replace(wallet, stale=True, last_success_at=1_796_234_400)
    stale = render_dashboard(dataclasses.replace(status, wallet=stale_wallet))
    assert '<td class="bad">yes — no successful poll lately</td>' in stale
    assert '<th>Last successful poll</th><td class="">2026-12-02 18:00:00 UTC</td>' in stale


def test_the_dashboard_names_the_node_and_its_role() -> None:
    """docs/PROTOCOL.md §11: which node answered, and whether it polls the wallet."""
    status = quiet_status()
    assert "<th>Node</th>" not in render_dashboard(status)
    for role, said in (
        ("leader", "this node polls the wallet"),
        ("standby", "another node polls the wallet"),
    ):
        node = NodeStatus("shop-a:4711", role)
        plain = render_dashboard(dataclasses.replace(status, node=node))
        assert '<th>Node</th><td class="mono">shop-a:4711</td>' in plain
        assert f'<th>Role</th><td class="node-role {role}">{role} — {said}</td>' in plain


def test_the_dashboard_shows_the_connection_pool_on_postgresql_only() -> None:
    """docs/PROTOCOL.md §11: the node's pool (size, in use, waits); nothing about it on SQLite."""
    status = dataclasses.replace(quiet_status(), storage=StorageStatus(None))
    assert "Database connections" not in render_dashboard(status)
    busy = StorageStatus(PoolFigures(size=6, in_use=2, waiting=1, waits=40, timeouts=3, replaced=0))
    plain = render_dashboard(dataclasses.replace(status, storage=busy))
    assert '<th>Database connections</th><td class="mono">2 of 6 in use, 1 waiting</td>' in plain
    assert '<th>Waited for one</th><td class="bad">40 requests, 3 of them answered 503</td>' in plain
