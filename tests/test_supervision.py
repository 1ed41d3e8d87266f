"""Supervision, in-process: real actors, a real database file, the fake wallet and real sockets.

Every crash here is a real one, with no hook in production code: a fire-and-forget call whose arguments
make the actor's method raise in the actor's own thread (Pykka: a failing `tell` runs `on_failure` and
stops the actor), a stop from outside (`ref.stop()`), a database write-locked by another connection (as
an operator's sqlite3 shell would), or damaged state that crashes the poller at every poll. Meanwhile
client threads keep redeeming over a real socket. What must hold (issue "Supervision and crash safety"):

- every answer is one the contract lists for the case (200/202/404, or 503 `unavailable` with
  `Retry-After`): no 500, no hang (clients use timeouts; ACTOR_TIMEOUT_SECS bounds every wait);
- the actor comes back (`restarts` counted, state `running`, /api/v1/status and /healthz agree);
- no claim is lost or doubled: one claim per payment, and every token a client saw is the token
  rebuilt from the PID and the stored claim txid;
- the poller keeps ingesting (the cursor advances, a new payment becomes redeemable).

The daemon as a process (SIGKILL at random moments, the restart budget ending the process) is in
test_crash_consistency.py and at the end of this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.actors.locator import ActorLocator
from anon_ticket.actors.supervisor import ActorSpec, Supervisor
from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PaymentId, TxId
from anon_ticket.daemon import Daemon
from anon_ticket.httpd.listener import Listener
from anon_ticket.storage.sqlite import connect
from tests.support.daemon import DaemonProcess, claim_token, unused_udp_port
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import CONFIRMATIONS, MIN_AMOUNT, Pipeline, pipeline_config
from tests.support.waiting import wait_for

INTERNAL_TOKEN = "test-internal-token-0123456789"  # what pipeline_config sets
ACTOR_TIMEOUT_SECS = 2.0
CLIENT_TIMEOUT_SECS = 15.0  # well above ACTOR_TIMEOUT_SECS: a client timeout means a hung request
RECOVERY_SECS = 15.0
ACTORS = ("storage_writer", "pid_cache", "abuse_metrics", "wallet_poller")

# A call whose arguments make each actor's method raise in the actor's thread. Sent with `defer`
# (tell semantics), the exception is not returned to anyone: the actor runs on_failure and stops.
FAILING_TELLS: dict[str, Callable[[Any], None]] = {
    # StorageWriter.claim(None, …): AttributeError on `None.chain_payment_id()`
    "storage_writer": lambda proxy: proxy.claim.defer(None, 0, 0, 0),
    # PidCache.add(None): TypeError, None is not iterable
    "pid_cache": lambda proxy: proxy.add.defer(None),
    # AbuseMetrics.record(None, "one"): TypeError, 0 + "one"
    "abuse_metrics": lambda proxy: proxy.record.defer(None, "one"),
    # WalletPoller.poll_now("…"): TypeError, unexpected argument
    "wallet_poller": lambda proxy: proxy.poll_now.defer("unexpected argument"),
}


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Client:
    """One request per connection (a crash never leaves a half-used keep-alive connection behind)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Answer:
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None and auth:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_SECS)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            found = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        return Answer(response.status, found, json.loads(raw) if raw else None)

    def redeem(self, pid: PaymentId) -> Answer:
        return self.request("POST", "/api/v1/redeem", {"pid": pid.hex()})


def serve(app: Any) -> Listener:
    listener = Listener("test", BindAddress("127.0.0.1", 0), app, threads=8)
    listener.bind()
    listener.serve_in_thread()
    return listener


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class Stack:
    """The actors under a watching supervisor, with both listeners on real sockets."""

    wallet: FakeWallet
    pipeline: Pipeline
    public: Client
    internal: Client

    @property
    def actors(self) -> ActorLocator:
        return self.pipeline.daemon.actors


@contextlib.contextmanager
def running_stack(tmp_path: Path, wallet: FakeWallet, **overrides: str) -> Iterator[Stack]:
    settings = {
        "MONITOR_START_HEIGHT": "100",
        "ACTOR_TIMEOUT_SECS": str(ACTOR_TIMEOUT_SECS),
        "SUPERVISOR_MAX_RESTARTS": "50",
        "SUPERVISOR_WINDOW_SECS": "60",
        "STATSD_PORT": str(unused_udp_port()),
        # The load below is a few hundred requests a second from one address: not what the abuse
        # protection is about here.
        "ABUSE_STORAGE_RATE": "100000",
        "ABUSE_STORAGE_BURST": "100000",
        "ABUSE_PID_PER_MINUTE": "100000",
    }
    config = pipeline_config(tmp_path / "at.db", wallet.url, **{**settings, **overrides})
    pipeline = Pipeline(config)
    listeners: list[Listener] = []
    try:
        pipeline.daemon.supervisor.watch()
        listeners.append(serve(pipeline.daemon.public_app()))
        listeners.append(serve(pipeline.daemon.internal_app()))
        ports = [listener.bound_port or 0 for listener in listeners]
        yield Stack(wallet, pipeline, Client(ports[0]), Client(ports[1], INTERNAL_TOKEN))
    finally:
        for listener in listeners:
            listener.stop()
        pipeline.close()


@pytest.fixture
def wallet() -> Iterator[FakeWallet]:
    with FakeWallet(height=200) as fake:
        yield fake


@pytest.fixture
def stack(tmp_path: Path, wallet: FakeWallet) -> Iterator[Stack]:
    with running_stack(tmp_path, wallet) as running:
        yield running


# -- payments and the load ------------------------------------------------------------------------


@dataclass
class Book:
    """The PIDs the load asks about, by the answer the contract gives when everything is up."""

    paid: list[PaymentId] = field(default_factory=list)
    pending: list[PaymentId] = field(default_factory=list)
    unknown: list[PaymentId] = field(default_factory=list)

    def kind(self, pid: PaymentId) -> str:
        if pid in self.paid:
            return "paid"
        return "pending" if pid in self.pending else "unknown"

    def all(self) -> list[PaymentId]:
        return [*self.paid, *self.pending, *self.unknown]


def pay(wallet: FakeWallet, *, confirmations: int = 20, amount: int = MIN_AMOUNT) -> PaymentId:
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=amount, confirmations=confirmations)
    return pid


def book_of(stack: Stack, paid: int = 80) -> Book:
    book = Book(
        paid=[pay(stack.wallet) for _ in range(paid)],
        pending=[pay(stack.wallet, confirmations=2) for _ in range(3)],
        unknown=[PaymentId.generate() for _ in range(3)],
    )
    assert stack.pipeline.poll().ok
    return book


# The answers the contract allows for each kind of PID while an actor may be down.
ALLOWED = {"paid": {200, 503}, "pending": {202, 503}, "unknown": {404, 503}}


@dataclass(frozen=True)
class Seen:
    pid: PaymentId
    started: float
    answer: Answer | None
    error: str | None = None


class Load:
    """Client threads redeeming until stopped; every answer is kept.

    They walk the paid PIDs in order, each new one a first claim, with a replay of an earlier one and
    a pending or unknown PID in between; so first claims keep racing whatever the test breaks. After
    the last paid PID everything is a replay.
    """

    def __init__(self, client: Client, book: Book, threads: int = 6) -> None:
        self._client = client
        others = [*book.pending, *book.unknown]
        self._sequence = [
            pid
            for i, paid in enumerate(book.paid)
            for pid in (paid, book.paid[i // 2], others[i % len(others)])
        ]
        self._next = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_SECS + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a client thread hangs"

    def _take(self) -> PaymentId:
        with self._lock:
            pid = self._sequence[self._next % len(self._sequence)]
            self._next += 1
            return pid

    def _run(self) -> None:
        while not self._stop.is_set():
            pid = self._take()
            started = time.monotonic()
            try:
                seen = Seen(pid, started, self._client.redeem(pid))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                seen = Seen(pid, started, None, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.seen.append(seen)
            self._stop.wait(0.002)

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def wait_for(self, more: int, timeout: float = 20.0) -> None:
        target = self.count() + more
        wait_for(f"{more} more answers", lambda: self.count() >= target, timeout, 0.01)


# -- checks ---------------------------------------------------------------------------------------


def check_answers(seen: list[Seen], book: Book) -> dict[PaymentId, str]:
    """Every answer within the contract; per PID at most one `claimed` and one token. Returns tokens."""
    assert seen, "the load produced no answers"
    errors = [s.error for s in seen if s.error is not None]
    assert not errors, f"{len(errors)} requests failed without an answer, e.g. {errors[:3]}"
    tokens: dict[PaymentId, set[str]] = defaultdict(set)
    claimed: dict[PaymentId, int] = defaultdict(int)
    for s in seen:
        answer = s.answer
        assert answer is not None
        kind = book.kind(s.pid)
        assert answer.status in ALLOWED[kind], (kind, answer)
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        if answer.status == 503:
            assert answer.body["error"] == "unavailable", answer
            assert answer.headers["retry-after"].isdigit(), answer
            assert int(answer.headers["retry-after"]) > 0
        elif answer.status == 200:
            assert answer.body["status"] in ("claimed", "already_claimed")
            assert answer.body["amount"] == MIN_AMOUNT
            tokens[s.pid].add(answer.body["token"])
            claimed[s.pid] += answer.body["status"] == "claimed"
        elif answer.status == 202:
            assert answer.body["status"] == "pending"
        else:
            assert answer.body["error"] == "payment_not_found"
    doubled = {pid.hex()[:8]: sorted(t) for pid, t in tokens.items() if len(t) > 1}
    assert not doubled, f"one PID, several tokens: {doubled}"
    twice = [pid.hex()[:8] for pid, n in claimed.items() if n > 1]
    assert not twice, f"claimed twice: {twice}"
    return {pid: next(iter(t)) for pid, t in tokens.items()}


def check_claims(stack: Stack, book: Book, tokens: dict[PaymentId, str]) -> None:
    """Every paid PID redeems now, with the token it had; the database holds one claim for each.

    The token a client got is exactly the one rebuilt from its PID and the stored claim txid, and the
    stored digest is that token's: nothing was lost, doubled or bound to another transfer.
    """
    for pid in book.paid:
        answer = stack.public.redeem(pid)
        assert answer.status == 200, answer
        if pid in tokens:
            assert answer.body["token"] == tokens[pid]
            assert answer.body["status"] == "already_claimed"
        tokens[pid] = answer.body["token"]
    conn = connect(stack.pipeline.path, query_only=True)
    try:
        rows = conn.execute("SELECT payment_id, claim_txid, token_digest FROM claims").fetchall()
        txids: dict[bytes, set[bytes]] = defaultdict(set)
        for payment_id, txid in conn.execute("SELECT payment_id, txid FROM transfers"):
            txids[bytes(payment_id)].add(bytes(txid))
    finally:
        conn.close()
    by_payment = {bytes(p): (bytes(t), bytes(d)) for p, t, d in rows}
    assert len(by_payment) == len(rows) == len(book.paid)
    for pid in book.paid:
        claim_txid, digest = by_payment[pid.chain_payment_id().raw]
        assert claim_txid in txids[pid.chain_payment_id().raw]
        rebuilt = pid.service_token(TxId(claim_txid))
        assert rebuilt.hex() == tokens[pid]
        assert digest == hashlib.sha3_256(bytes.fromhex(tokens[pid])).digest()


def wait_restarted(actors: ActorLocator, name: str, restarts: int) -> float:
    """Wait until `name` runs again after its `restarts`-th restart; returns when that was seen."""

    def back() -> bool:
        health = actors.health[name]
        ref = actors.ref(name)
        return (
            health.restarts >= restarts and health.state == "running" and ref is not None and ref.is_alive()
        )

    wait_for(f"{name} to run again after restart {restarts}", back, RECOVERY_SECS, 0.01)
    assert actors.health[name].restarts == restarts
    return time.monotonic()


def check_status(stack: Stack, restarts: dict[str, int]) -> None:
    status = stack.internal.request("GET", "/api/v1/status")
    assert status.status == 200, status
    assert status.body["actors"] == {
        name: {"state": "running", "restarts": restarts.get(name, 0)} for name in ACTORS
    }
    health = stack.internal.request("GET", "/healthz", auth=False)
    assert (health.status, health.body) == (200, {"status": "ok"})


def check_ingesting(stack: Stack) -> None:
    """A payment made now is polled, stored with the cursor, and redeemable."""
    before = stack.pipeline.state().scan_cursor
    assert before is not None
    pid = PaymentId.generate()
    stack.wallet.add_pool(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT)
    stack.wallet.mine(CONFIRMATIONS)
    assert stack.pipeline.poll().ok
    assert stack.pipeline.state().scan_cursor == stack.wallet.height > before
    answer = stack.public.redeem(pid)
    assert (answer.status, answer.body["status"]) == (200, "claimed"), answer


def crash(actors: ActorLocator, name: str, how: str) -> None:
    ref = actors.ref(name)
    assert ref is not None and ref.is_alive()
    if how == "failing_tell":
        FAILING_TELLS[name](ref.proxy())
    else:
        ref.stop(timeout=10)


# -- one actor crashes while requests are served ---------------------------------------------------


@pytest.mark.parametrize("how", ["failing_tell", "stopped_from_outside"])
@pytest.mark.parametrize("name", ACTORS)
def test_an_actor_crash_under_load_costs_no_claim(stack: Stack, name: str, how: str) -> None:
    book = book_of(stack)
    actors = stack.actors
    if name == "wallet_poller":
        # Paid while the poller is down: its first poll after the restart must pick this up by itself.
        late = pay(stack.wallet)
        stack.wallet.mine(1)
        cursor = stack.pipeline.state().scan_cursor
    with Load(stack.public, book) as load:
        load.wait_for(30)
        crash(actors, name, how)
        recovered = wait_restarted(actors, name, 1)
        load.wait_for(60)
    tokens = check_answers(load.seen, book)
    after = [s for s in load.seen if s.started > recovered and s.answer is not None]
    assert after, "no request was served after the restart"
    assert all(s.answer is not None and s.answer.status != 503 for s in after), [
        s.answer for s in after if s.answer is not None and s.answer.status == 503
    ]
    if name == "wallet_poller":
        wait_for(
            "the restarted poller's own first poll",
            lambda: stack.pipeline.state().scan_cursor == stack.wallet.height,
            RECOVERY_SECS,
            0.01,
        )
        assert stack.pipeline.state().scan_cursor != cursor
        book.paid.append(late)
    check_claims(stack, book, tokens)
    check_status(stack, {name: 1})
    check_ingesting(stack)


def test_every_actor_crashes_in_turn_under_load(stack: Stack) -> None:
    """All four, one after the other, with claims racing each crash: still one claim per payment."""
    book = book_of(stack, paid=150)
    actors = stack.actors
    with Load(stack.public, book, threads=8) as load:
        for name in ACTORS:
            load.wait_for(20)
            crash(actors, name, "failing_tell")
            wait_restarted(actors, name, 1)
        load.wait_for(40)
    tokens = check_answers(load.seen, book)
    check_claims(stack, book, tokens)
    check_status(stack, dict.fromkeys(ACTORS, 1))
    check_ingesting(stack)


# -- while an actor is down, the listeners say so -----------------------------------------------


def test_503_healthz_and_status_while_an_actor_is_restarting(stack: Stack) -> None:
    """The restart delay doubles with each restart in the window: the sixth waits 1.6 s, long enough
    to see, without any hook, what clients and the operator get while the PID screen is missing."""
    book = book_of(stack, paid=2)
    actors = stack.actors
    public, internal = stack.public, stack.internal
    for restarts in range(1, 6):
        crash(actors, "pid_cache", "failing_tell")
        wait_restarted(actors, "pid_cache", restarts)
    crash(actors, "pid_cache", "failing_tell")
    wait_for("the sixth restart", lambda: actors.health["pid_cache"].state == "restarting", 5, 0.01)
    # Everything below happens inside the 1.6 s delay before the restart.
    redeem = public.redeem(book.paid[0])
    health = internal.request("GET", "/healthz", auth=False)
    status = internal.request("GET", "/api/v1/status")
    assert actors.health["pid_cache"].state == "restarting", "the checks were too slow to mean anything"
    assert (redeem.status, redeem.body["error"]) == (503, "unavailable")
    assert int(redeem.headers["retry-after"]) > 0
    assert health.status == 503
    assert health.body["status"] == "down" and "actor:pid_cache" in health.body["reasons"]
    assert health.headers["retry-after"].isdigit()
    assert status.status == 200
    assert status.body["actors"]["pid_cache"] == {"state": "restarting", "restarts": 6}
    assert status.body["actors"]["storage_writer"] == {"state": "running", "restarts": 0}
    wait_restarted(actors, "pid_cache", 6)
    check_claims(stack, book, {})
    check_status(stack, {"pid_cache": 6})


def test_a_locked_database_answers_503_in_time_and_loses_nothing(stack: Stack) -> None:
    """Another process holds the write lock (an operator's sqlite3 shell, a backup): the writer waits
    for it, clients get 503 within the actor timeout instead of hanging, replays keep working from the
    read connections, and every claim queued meanwhile lands once the lock is gone."""
    book = book_of(stack, paid=6)
    claimed_before = book.paid[:2]
    tokens = {pid: stack.public.redeem(pid).body["token"] for pid in claimed_before}
    blocker = connect(stack.pipeline.path)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        blocked = stack.public.redeem(book.paid[2])
        waited = time.monotonic() - started
        assert (blocked.status, blocked.body["error"]) == (503, "unavailable"), blocked
        assert blocked.headers["retry-after"].isdigit()
        assert ACTOR_TIMEOUT_SECS <= waited < ACTOR_TIMEOUT_SECS + 2
        replay = stack.public.redeem(claimed_before[0])
        assert (replay.status, replay.body["token"]) == (200, tokens[claimed_before[0]])
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    check_claims(stack, book, tokens)
    check_status(stack, {})
    check_ingesting(stack)


# -- the restart budget -------------------------------------------------------------------------


def test_the_supervisor_gives_up_after_its_budget_and_the_daemon_exits_1(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    with running_stack(tmp_path, wallet, SUPERVISOR_MAX_RESTARTS="3") as stack:
        daemon, actors = stack.pipeline.daemon, stack.actors
        for restarts in range(1, 4):
            crash(actors, "abuse_metrics", "failing_tell")
            wait_restarted(actors, "abuse_metrics", restarts)
        assert daemon.exit_code == 0
        crash(actors, "abuse_metrics", "failing_tell")
        wait_for("the supervisor to give up", lambda: daemon.exit_code == 1, RECOVERY_SECS, 0.01)
        wait_for("the daemon to be told to stop", lambda: daemon.stop_requested, 5, 0.01)
        ref = actors.ref("abuse_metrics")
        assert ref is not None and not ref.is_alive(), "restarted beyond the budget"
        assert actors.health["abuse_metrics"].restarts == 3
        # The operator's view must not claim health for an actor that is down for good.
        health = stack.internal.request("GET", "/healthz", auth=False)
        assert health.status == 503, health
        status = stack.internal.request("GET", "/api/v1/status")
        assert status.body["actors"]["abuse_metrics"]["state"] != "running"


def test_a_restart_that_fails_to_start_the_actor_is_retried_within_the_budget(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    """Starting an actor can fail before Pykka runs any of our code: `Thread.start()` raises
    RuntimeError("can't start new thread") when the process is out of threads or memory. That failed
    restart must count against the budget and be tried again, not end supervision for good (which
    would leave the actor down, /healthz at 503, and the process running forever)."""
    config = pipeline_config(
        tmp_path / "at.db",
        wallet.url,
        MONITOR_START_HEIGHT="100",
        STATSD_PORT=str(unused_udp_port()),
    )
    daemon = Daemon(config)
    daemon.database.migrate()
    starts: list[str] = []

    def out_of_threads_once(real: Callable[[], Any]) -> Callable[[], Any]:
        def start() -> Any:
            starts.append("abuse_metrics")
            if len(starts) == 2:  # the first restart
                raise RuntimeError("can't start new thread")
            return real()

        return start

    specs = [
        ActorSpec(spec.name, out_of_threads_once(spec.start)) if spec.name == "abuse_metrics" else spec
        for spec in daemon.actor_specs()
    ]
    gave_up: list[str] = []
    supervisor = Supervisor(
        daemon.actors,
        specs,
        max_restarts=5,
        window_secs=60,
        ping_timeout_secs=30,
        on_give_up=gave_up.append,
    )
    supervisor.start_actors()
    try:
        supervisor.watch()
        crash(daemon.actors, "abuse_metrics", "failing_tell")
        wait_restarted(daemon.actors, "abuse_metrics", 2)
        assert len(starts) == 3
        assert not gave_up
    finally:
        supervisor.stop()
        daemon.close()


def test_the_budget_is_a_sliding_window(tmp_path: Path, wallet: FakeWallet) -> None:
    """Two restarts per 1.5 s allowed: three crashes spread over more than that are fine."""
    with running_stack(tmp_path, wallet, SUPERVISOR_MAX_RESTARTS="2", SUPERVISOR_WINDOW_SECS="1.5") as stack:
        daemon, actors = stack.pipeline.daemon, stack.actors
        crash(actors, "abuse_metrics", "failing_tell")
        first = wait_restarted(actors, "abuse_metrics", 1)
        wait_for("the first restart to leave the window", lambda: time.monotonic() - first > 1.7, 3, 0.01)
        crash(actors, "abuse_metrics", "failing_tell")
        wait_restarted(actors, "abuse_metrics", 2)
        crash(actors, "pid_cache", "failing_tell")
        wait_restarted(actors, "pid_cache", 1)
        assert daemon.exit_code == 0
        crash(actors, "abuse_metrics", "failing_tell")  # the third within the window
        wait_for("the supervisor to give up", lambda: daemon.exit_code == 1, RECOVERY_SECS, 0.01)


def test_a_transfer_amount_beyond_64_bits_is_a_bad_answer_not_a_crash(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    """The poller's own rule: a garbled wallet answer is expected trouble (report, back off, retry),
    not a bug. An amount no SQLite INTEGER holds is such an answer; it must not kill the poller."""
    with running_stack(tmp_path, wallet, SUPERVISOR_MAX_RESTARTS="3") as stack:
        book = book_of(stack, paid=2)
        tokens = {pid: stack.public.redeem(pid).body["token"] for pid in book.paid}
        odd = wallet.add_confirmed(
            payment_id=PaymentId.generate().chain_payment_id().hex(), amount=2**63, confirmations=20
        )
        report = stack.pipeline.poll()  # an ask: with the bug, the OverflowError comes back here
        assert not report.ok and report.error is not None
        assert stack.pipeline.daemon.published.wallet.last_error == report.error
        assert stack.actors.health["wallet_poller"].restarts == 0
        for pid in book.paid:
            answer = stack.public.redeem(pid)
            assert (answer.status, answer.body["token"]) == (200, tokens[pid])
        wallet.drop(odd)
        check_ingesting(stack)
        assert stack.pipeline.daemon.exit_code == 0


# -- the same, as a process ---------------------------------------------------------------------


def test_the_daemon_process_exits_1_when_its_restart_budget_is_exhausted(
    tmp_path: Path, wallet: FakeWallet
) -> None:
    """`python -m anon_ticket` serving, then its state is damaged under it (the singleton
    monitor_state row deleted, as a bad manual SQL statement would): the poller crashes at every poll,
    a restart cannot help, and after SUPERVISOR_MAX_RESTARTS restarts the process exits 1 so the
    service manager restarts it and the operator sees why. The claim made before is intact."""
    daemon = DaemonProcess(
        tmp_path,
        wallet_url=wallet.url,
        env={
            "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
            "MONITOR_START_HEIGHT": "100",
            "MONITOR_POLL_INTERVAL_SECS": "0.1",
            "SUPERVISOR_MAX_RESTARTS": "3",
            "SUPERVISOR_WINDOW_SECS": "60",
        },
    )
    try:
        daemon.start()
        pid, token = claim_token(daemon, wallet)
        assert daemon.health() == (200, {"status": "ok"})
        conn = connect(daemon.database_path)
        try:
            conn.execute("DELETE FROM monitor_state")
        finally:
            conn.close()
        code = daemon.wait_exit(30)
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert code == 1, daemon.log_tail()
    assert log.count("actor wallet_poller died; restarting it") == 3, daemon.log_tail()
    assert "3 actor restarts within 60 s" in log
    assert "stopped with exit code 1" in log
    assert token not in log and pid.hex() not in log
    conn = connect(daemon.database_path, query_only=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (digest,) = conn.execute("SELECT token_digest FROM claims").fetchone()
    finally:
        conn.close()
    assert bytes(digest) == hashlib.sha3_256(bytes.fromhex(token)).digest()
