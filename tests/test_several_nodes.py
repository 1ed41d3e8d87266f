"""docs/PROTOCOL.md §11 with real processes: three daemons on one PostgreSQL schema and one wallet.

One cluster serves the whole module (starting three daemons is the expensive part): the nodes are
started together on a fresh schema (so they migrate concurrently), each with its own `?node=N` in its
wallet URL so that the fake wallet can tell who polls, and one UDP socket receiving every node's
statsd. Tests that kill a node start it again before they end, so the next test finds three.

The bounds asserted are the protocol's (takeover within 3 poll intervals + 10 s, a new payment id on
every screen within 2 poll intervals), measured against the wall clock; nothing here asserts a speed.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from anon_ticket.core.domain import PaymentId
from tests.support.daemon import DaemonProcess, free_ports, pay, redeem_until
from tests.support.fake_wallet import FakeWallet
from tests.support.nodes import cluster_node, stop_each
from tests.support.postgres import fresh_schema_url
from tests.support.statsd_sink import StatsdSink
from tests.support.waiting import wait_for

POLL_SECS = 1.0
TAKEOVER_BOUND_SECS = 3 * POLL_SECS + 10  # docs/PROTOCOL.md §11
SCREEN_BOUND_SECS = 2 * POLL_SECS  # docs/PROTOCOL.md §11
CONFIRMATIONS = 2
AMOUNT = 1_000_000
TOKEN = "several-nodes-internal-token-0123"
NODES = 3


@dataclass
class Cluster:
    url: str
    wallet: FakeWallet
    nodes: list[DaemonProcess]
    statsd: StatsdSink
    extra: list[DaemonProcess] = field(default_factory=list)

    def statuses(self) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for node in self.nodes:
            try:
                found.append(node.status() if node.running else None)
            except (OSError, AssertionError, ValueError):
                found.append(None)
        return found

    def roles(self) -> list[str | None]:
        return [status["node"]["role"] if status else None for status in self.statuses()]

    def leader(self, timeout: float = 30.0) -> int:
        """The index of the one leading node, once exactly one leads among the running ones."""

        def one() -> int | None:
            roles = self.roles()
            running = [role for node, role in zip(self.nodes, roles, strict=True) if node.running]
            if None in running or running.count("leader") != 1:
                return None
            return roles.index("leader")

        return wait_for("exactly one leader", one, timeout, 0.1)

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def wallet_height_applied(self) -> int:
        with self.db() as conn:
            row = conn.execute("SELECT coalesce(wallet_height, 0) FROM monitor_state").fetchone()
            assert row is not None
            return int(row[0])


def _node(workdir: Path, url: str, wallet: FakeWallet, index: int, statsd_port: int) -> DaemonProcess:
    return cluster_node(
        workdir,
        url,
        wallet,
        index,
        TOKEN,
        MONITOR_POLL_INTERVAL_SECS=str(POLL_SECS),
        MONITOR_MIN_CONFIRMATIONS=str(CONFIRMATIONS),
        MIN_PAYMENT_AMOUNT=str(AMOUNT),
        STATSD_PORT=str(statsd_port),
        PUBLIC_THREADS="8",
        INTERNAL_THREADS="2",
    )


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    url = fresh_schema_url(request.config)
    workdir = tmp_path_factory.mktemp("cluster")
    sink = StatsdSink()
    with FakeWallet(height=200) as wallet:
        nodes = [_node(workdir, url, wallet, index, sink.port) for index in range(NODES)]
        try:
            for node in nodes:  # together: the three migrate the fresh schema at once
                node.start(wait=False)
            for node in nodes:
                node.wait_ready(timeout=60)
            cluster = Cluster(url, wallet, nodes, sink)
            cluster.leader(timeout=60)
            yield cluster
        finally:
            stop_each(nodes)
            sink.close()


def _wait_in_storage(cluster: Cluster, pid: PaymentId, timeout: float = 30.0) -> float:
    """The wall-clock time at which the payment's transfer was first seen committed."""
    payment_id = pid.chain_payment_id().raw

    def stored() -> float | None:
        with cluster.db() as conn:
            row = conn.execute("SELECT 1 FROM transfers WHERE payment_id = %s", (payment_id,)).fetchone()
        return time.time() if row else None

    return wait_for("the transfer in storage", stored, timeout, 0.02)


# -- the tests ------------------------------------------------------------------------------------


def test_exactly_one_node_polls_the_wallet(cluster: Cluster) -> None:
    leader = cluster.leader()
    wait_for("the leader's first applied poll", lambda: cluster.wallet_height_applied() or None, 30)
    statuses = cluster.statuses()
    ids = []
    for index, (node, status) in enumerate(zip(cluster.nodes, statuses, strict=True)):
        assert status is not None
        assert status["node"]["role"] == ("leader" if index == leader else "standby")
        host, _, pid = status["node"]["id"].rpartition(":")
        assert host == socket.gethostname() and int(pid) == node.pid
        ids.append(status["node"]["id"])

        # Every node, standbys too, tells the service's story (the leader's last applied poll, read
        # from the database at the standby's next tick) and serves buyers the stored address.
        def tells(node: DaemonProcess = node) -> bool | None:
            wallet = node.status()["wallet"]
            told = wallet["primary_address"] == cluster.wallet.address and wallet["height"] is not None
            served = node.public("GET", "/api/v1/info").status_code == 200
            return True if told and served and wallet["stale"] is False else None

        wait_for(f"node {index}'s wallet view", tells, 10 * POLL_SECS)
    assert len(set(ids)) == NODES
    # Over a few poll intervals, only the leader's URL asks the wallet for transfers.
    before = dict(cluster.wallet.calls_by_query)
    time.sleep(4 * POLL_SECS)  # an observation window, not a wait for something to happen
    after = dict(cluster.wallet.calls_by_query)
    polled = {
        query
        for (method, query), n in after.items()
        if method == "get_transfers" and n > before.get((method, query), 0)
    }
    assert polled == {f"node={leader}"}


def test_statsd_gauges_are_per_node(cluster: Cluster) -> None:
    leader = cluster.leader()

    def reported() -> dict[str, str] | None:
        gauges = cluster.statsd.gauges()
        names = [f"anon_ticket.node.n{i}.poller.leader" for i in range(NODES)]
        return gauges if all(name in gauges for name in names) else None

    gauges = wait_for("every node's leader gauge", reported, 15)
    for index in range(NODES):
        assert gauges[f"anon_ticket.node.n{index}.poller.leader"] == ("1" if index == leader else "0")
        assert f"anon_ticket.node.n{index}.actors.pid_cache.running" in gauges
    assert not any(re.fullmatch(r"anon_ticket\.(wallet|actors|abuse_level)\b.*", name) for name in gauges)


def test_a_new_payment_id_reaches_every_node_within_two_poll_intervals(cluster: Cluster) -> None:
    cluster.leader()
    pid = PaymentId.generate()
    pay(cluster.wallet, pid, AMOUNT, 0)  # in the pool: every node answers 202 once its screen knows it
    stored_at = _wait_in_storage(cluster, pid)
    seen_at: dict[int, float] = {}

    def watch(index: int) -> None:  # one thread per node, so one slow answer delays no other node
        node, deadline = cluster.nodes[index], stored_at + 30
        while time.time() < deadline:
            if node.redeem(pid).status_code == 202:
                seen_at[index] = time.time()
                return

    with ThreadPoolExecutor(NODES) as pool:
        list(pool.map(watch, range(NODES)))
    assert sorted(seen_at) == list(range(NODES)), f"not seen by every node: {seen_at}"
    lags = {index: at - stored_at for index, at in seen_at.items()}
    print(f"new payment id on every screen: lags {sorted(round(lag, 3) for lag in lags.values())} s")
    assert all(lag <= SCREEN_BOUND_SECS for lag in lags.values()), lags


def test_the_same_pid_redeemed_on_every_node_at_once_is_one_claim(cluster: Cluster) -> None:
    cluster.leader()
    pid = PaymentId.generate()
    txid = cluster.wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=AMOUNT)
    cluster.wallet.mine(1, txids=[txid])  # one confirmation of two: pending everywhere
    for node in cluster.nodes:
        redeem_until(node, pid, 202, timeout=30)
    cluster.wallet.mine(CONFIRMATIONS)
    top = cluster.wallet.height
    wait_for("the confirming poll", lambda: cluster.wallet_height_applied() >= top or None, 30)
    barrier = threading.Barrier(NODES * 3)

    def redeem(node: DaemonProcess) -> tuple[int, dict[str, Any]]:
        barrier.wait()
        response = node.redeem(pid)
        return response.status_code, response.json()

    with ThreadPoolExecutor(NODES * 3) as pool:
        answers = list(pool.map(redeem, [node for node in cluster.nodes for _ in range(3)]))
    assert {code for code, _ in answers} == {200}, answers
    assert [body["status"] for _, body in answers].count("claimed") == 1, answers
    assert len({body["token"] for _, body in answers}) == 1
    assert len({body["claimed_at"] for _, body in answers}) == 1
    with cluster.db() as conn:
        row = conn.execute("SELECT count(*) FROM claims WHERE payment_id = %s", (pid.chain_payment_id().raw,))
        assert row.fetchone() == (1,)


def test_killing_the_leader_hands_over_and_nothing_is_missed_or_doubled(cluster: Cluster) -> None:
    leader = cluster.leader()
    old = cluster.nodes[leader]
    before, during, after = PaymentId.generate(), PaymentId.generate(), PaymentId.generate()
    pay(cluster.wallet, before, AMOUNT, CONFIRMATIONS + 1)
    old.kill()
    killed_at = time.time()
    pay(cluster.wallet, during, AMOUNT, CONFIRMATIONS + 1)
    new_leader = cluster.leader(timeout=TAKEOVER_BOUND_SECS + 30)
    took = time.time() - killed_at
    assert new_leader != leader
    assert took <= TAKEOVER_BOUND_SECS, f"the takeover took {took:.1f} s"
    print(f"failover: a new leader {took:.2f} s after SIGKILL (bound {TAKEOVER_BOUND_SECS:.0f} s)")
    pay(cluster.wallet, after, AMOUNT, CONFIRMATIONS + 1)
    survivors = [node for node in cluster.nodes if node is not old]
    tokens = {}
    for pid in (before, during, after):
        claimed = redeem_until(survivors[0], pid, 200, timeout=30).json()
        assert claimed["status"] == "claimed"
        replay = redeem_until(survivors[1], pid, 200, timeout=30).json()
        assert (replay["status"], replay["token"]) == ("already_claimed", claimed["token"])
        tokens[pid.hex()] = claimed["token"]
    with cluster.db() as conn:
        for pid in (before, during, after):
            payment_id = pid.chain_payment_id().raw
            transfers = conn.execute("SELECT amount FROM transfers WHERE payment_id = %s", (payment_id,))
            assert [row[0] for row in transfers] == [AMOUNT]
            claims = conn.execute("SELECT count(*) FROM claims WHERE payment_id = %s", (payment_id,))
            assert claims.fetchone() == (1,)
    # The killed node comes back as a standby: the leadership stays where it went.
    old.start(wait=True, timeout=60)
    assert cluster.leader() == new_leader
    restarted = cluster.statuses()[leader]
    assert restarted is not None and restarted["node"] == {
        "id": f"{socket.gethostname()}:{old.pid}",
        "role": "standby",
    }
    assert len(set(tokens.values())) == 3


def test_a_graceful_stop_hands_over_at_once(cluster: Cluster) -> None:
    leader = cluster.leader()
    node = cluster.nodes[leader]
    said = "this node now polls the wallet (leader)"
    before = [other.log_text().count(said) for other in cluster.nodes]
    assert node.stop() == 0
    new_leader = cluster.leader(timeout=TAKEOVER_BOUND_SECS + 30)
    assert new_leader != leader
    # One line per change of role, on the node that took over.
    assert cluster.nodes[new_leader].log_text().count(said) == before[new_leader] + 1
    node.start(wait=True, timeout=60)
    assert cluster.roles()[leader] == "standby"


def test_sqlite_still_refuses_a_second_daemon(tmp_path: Path) -> None:
    with FakeWallet(height=200) as wallet:
        first = DaemonProcess(tmp_path, wallet_url=wallet.url)
        with first:
            assert first.status()["node"] == {"id": f"{socket.gethostname()}:{first.pid}", "role": "leader"}
            public, internal = free_ports(2)
            second = DaemonProcess(
                tmp_path,
                wallet_url=wallet.url,
                log_path=tmp_path / "second.log",
                env={
                    "API_BIND_ADDRESS": f"127.0.0.1:{public}",
                    "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal}",
                },
            )
            second.start(wait=False)
            assert second.wait_exit(60) == 1
            assert "another anon_ticket daemon" in second.log_text()
