"""SIGKILL at random moments never costs a buyer a token or the operator a payment (docs/PROTOCOL.md §3, §4).

`python -m anon_ticket` runs as a real process against a fake monero-wallet-rpc living in the test
process. While buyers redeem from several threads (keep-alive connections, bounded timeouts) and new
payments keep arriving in the pool and being mined (the daemon polls every 0.1 s), the daemon is killed
with SIGKILL at seeded random moments (starting up, polling, claiming) and started again each time.
Afterwards:

- every token any client ever received is valid on the internal API, with the amount of every
  transfer of its payment, and is the token rebuilt from the PID and the stored claim txid;
- a PID always got the same token, whatever kill happened between its answers; one claim per payment;
- the transfers table holds exactly the wallet's transfers (none missing, none doubled, right amounts
  and heights), the scan cursor is the wallet's height, and `PRAGMA integrity_check` is ok;
- every answer a client got was one the contract lists (no 500, no hang);
- a SIGTERM under the same load still stops the daemon gracefully (exit 0).

`scripts/soak_crash.py` runs the same scenario for longer (`CrashRun` below does the work for both).
Set CRASH_SEED to replay a schedule.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anon_ticket.core.domain import PaymentId, TxId
from anon_ticket.core.payments import TransferFlag
from anon_ticket.storage.sqlite import connect
from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet
from tests.support.waiting import wait_for

MIN_AMOUNT = 1_000_000_000
CONFIRMATIONS = 2
INTERNAL_TOKEN = "crash-consistency-internal-token-0123456789"
REQUEST_TIMEOUT_SECS = 10.0  # above ACTOR_TIMEOUT_SECS: a timeout means a hung request
READY_TIMEOUT_SECS = 30.0  # to catch up with the wallet at the end
# What the contract allows here: no revocations, no reorgs, no abuse limit in reach.
ALLOWED_STATUSES = {200, 202, 402, 404, 503}


# -- HTTP -----------------------------------------------------------------------------------------


def exchange(
    conn: http.client.HTTPConnection, method: str, target: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """One request on a (keep-alive) connection: (status, lower-cased headers, JSON body)."""
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, target, body=payload, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    found = {k.lower(): v for k, v in response.getheaders()}
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"not_json": raw[:200].decode("latin-1")}  # a contract violation, reported as such
    return response.status, found, body


# The daemon as this harness and tests/test_power_loss.py cut it: polling the wallet every 0.1 s.
HARNESS_ENV = {
    "MONITOR_START_HEIGHT": "100",
    "MONITOR_POLL_INTERVAL_SECS": "0.1",
    "MONITOR_MIN_CONFIRMATIONS": str(CONFIRMATIONS),
    "MIN_PAYMENT_AMOUNT": str(MIN_AMOUNT),
    "ACTOR_TIMEOUT_SECS": "3",
    # Buyers here are a few threads on one address: the abuse limit is not under test.
    "ABUSE_STORAGE_RATE": "100000",
    "ABUSE_STORAGE_BURST": "100000",
    "ABUSE_PID_PER_MINUTE": "100000",
}


def daemon_for(workdir: Path, wallet_url: str) -> DaemonProcess:
    return DaemonProcess(
        workdir, wallet_url=wallet_url, env={"INTERNAL_API_TOKEN": INTERNAL_TOKEN, **HARNESS_ENV}
    )


# -- the buyers' side: payments and redeem clients ------------------------------------------------


@dataclass
class Payment:
    pid: PaymentId
    transfers: list[tuple[str, int]] = field(default_factory=list)  # (txid, amount)
    owed: int = 0  # the second half of a split payment, not sent yet

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.transfers)


class Payer:
    """Seeded wallet activity: new payments in the pool (some split in two), top-ups, mined blocks."""

    def __init__(self, wallet: FakeWallet, seed: int) -> None:
        self.wallet = wallet
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._payments: list[Payment] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payer", daemon=True)

    def payments(self) -> list[Payment]:
        with self._lock:
            return list(self._payments)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()

    def _send(self, payment: Payment, amount: int) -> None:
        txid = self.wallet.add_pool(payment_id=payment.pid.chain_payment_id().hex(), amount=amount)
        with self._lock:
            payment.transfers.append((txid, amount))

    def _run(self) -> None:
        rng = self._rng
        while not self._stop.wait(rng.uniform(0.01, 0.06)):
            self.step()

    def step(self) -> None:
        rng = self._rng
        roll = rng.random()
        owing = [p for p in self.payments() if p.owed]
        if roll < 0.4:
            payment = Payment(PaymentId(rng.randbytes(32)))
            with self._lock:
                self._payments.append(payment)
            if rng.random() < 0.25:  # split: half now, the rest later (402 or 202 meanwhile)
                payment.owed = MIN_AMOUNT - MIN_AMOUNT // 2
                self._send(payment, MIN_AMOUNT // 2)
            else:
                self._send(payment, MIN_AMOUNT + rng.randrange(1000))
        elif roll < 0.5 and owing:
            payment = rng.choice(owing)
            owed, payment.owed = payment.owed, 0
            self._send(payment, owed)
        elif roll < 0.55 and self._payments:
            self._send(rng.choice(self.payments()), 1 + rng.randrange(1000))  # a top-up
        else:
            self.wallet.mine(rng.choice((1, 1, 1, 2)))

    def settle(self) -> None:
        """Pay what is owed and mine until everything counts (call after `stop`)."""
        for payment in self.payments():
            if payment.owed:
                owed, payment.owed = payment.owed, 0
                self._send(payment, owed)
        self.wallet.mine(CONFIRMATIONS + 1)


class Buyers:
    """Client threads, each with one keep-alive connection, redeeming known PIDs until stopped."""

    def __init__(self, port: int, payer: Payer, seed: int, threads: int) -> None:
        self._port = port
        self._payer = payer
        self._seed = seed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.tokens: dict[PaymentId, set[str]] = defaultdict(set)
        self.claimed_answers: Counter[PaymentId] = Counter()
        self.statuses: Counter[int] = Counter()
        self.violations: list[str] = []
        self.connection_errors = 0
        self.timeouts = 0
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"buyer-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECS + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a buyer thread hangs"

    def requests(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def _choose(self, rng: random.Random) -> PaymentId | None:
        payments = self._payer.payments()
        if not payments:
            return None
        with self._lock:
            waiting = [p.pid for p in payments if p.pid not in self.tokens]
        if waiting and rng.random() < 0.7:
            return rng.choice(waiting)
        return rng.choice(payments).pid

    def _run(self, index: int) -> None:
        rng = random.Random(self._seed * 1000 + index)
        conn: http.client.HTTPConnection | None = None
        try:
            while not self._stop.is_set():
                pid = self._choose(rng)
                if pid is None:
                    self._stop.wait(0.02)
                    continue
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=REQUEST_TIMEOUT_SECS)
                try:
                    answer = exchange(conn, "POST", "/api/v1/redeem", {"pid": pid.hex()})
                except TimeoutError:
                    with self._lock:
                        self.timeouts += 1
                    conn.close()
                    conn = None
                    continue
                except (OSError, http.client.HTTPException):
                    # The daemon was killed (or closed an idle keep-alive connection): reconnect.
                    with self._lock:
                        self.connection_errors += 1
                    conn.close()
                    conn = None
                    self._stop.wait(rng.uniform(0.01, 0.05))
                    continue
                self._record(pid, *answer)
                self._stop.wait(rng.uniform(0.0, 0.01))
        finally:
            if conn is not None:
                conn.close()

    def _record(self, pid: PaymentId, status: int, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.statuses[status] += 1
            if status not in ALLOWED_STATUSES or not isinstance(body, dict) or "not_json" in body:
                self.violations.append(f"{status} {body}")
            elif headers.get("content-type") != "application/json; charset=utf-8":
                self.violations.append(f"{status} with content type {headers.get('content-type')}")
            elif status == 503 and not (
                body.get("error") == "unavailable" and headers.get("retry-after", "").isdigit()
            ):
                self.violations.append(f"503 without unavailable/Retry-After: {headers} {body}")
            elif status == 200:
                if body.get("status") not in ("claimed", "already_claimed") or "token" not in body:
                    self.violations.append(f"200 {body}")
                    return
                self.tokens[pid].add(body["token"])
                self.claimed_answers[pid] += body["status"] == "claimed"


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Summary:
    seed: int
    kills: int
    kills_before_ready: int
    seconds: float
    requests: int
    statuses: dict[int, int]
    connection_errors: int
    payments: int
    transfers: int
    tokens: int

    def lines(self) -> list[str]:
        return [
            f"seed {self.seed}: {self.kills} SIGKILLs ({self.kills_before_ready} before the daemon "
            f"was ready) in {self.seconds:.1f} s",
            f"{self.requests} redeem answers {dict(sorted(self.statuses.items()))}, "
            f"{self.connection_errors} connection errors (reconnected)",
            f"{self.payments} payments, {self.transfers} transfers, {self.tokens} tokens: "
            "every token valid, one per payment, every transfer stored exactly once, integrity ok",
        ]


class CrashRun:
    """One scenario: buyers and payments against a daemon that is SIGKILLed `kills` times."""

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int,
        kills: int,
        up_secs: tuple[float, float] = (0.1, 2.0),
        buyers: int = 4,
        max_secs: float | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.workdir = workdir
        self.seed = seed
        self.kills = kills
        self.max_secs = max_secs
        self.up_secs = up_secs
        self.buyer_threads = buyers
        self.log = log

    def run(self) -> Summary:
        started = time.monotonic()
        rng = random.Random(self.seed)
        with FakeWallet(height=200) as wallet:
            daemon = daemon_for(self.workdir, wallet.url)
            payer = Payer(wallet, self.seed + 1)
            port = urllib.parse.urlsplit(daemon.public_url).port
            assert port is not None
            buyers = Buyers(port, payer, self.seed + 2, self.buyer_threads)
            before_ready = 0
            killed = 0
            try:
                payer.start()
                buyers.start()
                for kill in range(1, self.kills + 1):
                    if self.max_secs is not None and time.monotonic() - started > self.max_secs:
                        break
                    daemon.start(wait=False)
                    up = rng.uniform(*self.up_secs)
                    deadline = time.monotonic() + up
                    was_ready = False
                    while time.monotonic() < deadline:
                        was_ready = was_ready or (daemon.health() or (0,))[0] == 200
                        time.sleep(0.02)
                    if not daemon.running:
                        raise AssertionError(f"the daemon exited by itself:\n{daemon.log_tail()}")
                    daemon.kill()
                    killed += 1
                    before_ready += not was_ready
                    self.log(
                        f"kill {kill}/{self.kills} after {up:.2f} s "
                        f"({'serving' if was_ready else 'starting'}), {buyers.requests()} answers so far"
                    )
                # A graceful stop under the same load: in-flight requests finish, exit code 0.
                daemon.start()
                served = buyers.requests()
                wait_for(
                    "answers from the restarted daemon",
                    lambda: True if buyers.requests() > served + 50 else None,
                    READY_TIMEOUT_SECS,
                    0.01,
                )
                code = daemon.stop()
                assert code == 0, f"SIGTERM under load should exit 0, got {code}:\n{daemon.log_tail()}"
                self.log(f"SIGTERM under load: exit {code}")
                daemon.start()
                payer.stop()
                payer.settle()
                self._wait_caught_up(daemon, wallet)
                buyers.stop()
                summary = self._verify(daemon, wallet, payer, buyers)
                code = daemon.stop()
                assert code == 0, f"SIGTERM should exit 0, got {code}:\n{daemon.log_tail()}"
                self._verify_database(daemon, wallet, payer, buyers)
            finally:
                with contextlib.suppress(Exception):
                    buyers.stop()
                with contextlib.suppress(Exception):
                    payer.stop()
                daemon.kill()
        summary.kills = killed
        summary.kills_before_ready = before_ready
        summary.seconds = time.monotonic() - started
        return summary

    def _wait_caught_up(self, daemon: DaemonProcess, wallet: FakeWallet) -> None:
        def caught_up() -> bool | None:
            status = daemon.status()
            done = status["scan_cursor"] == wallet.height and status["wallet"]["last_error"] is None
            return True if done else None

        wait_for("the daemon to catch up with the wallet", caught_up, READY_TIMEOUT_SECS)

    def _verify(self, daemon: DaemonProcess, wallet: FakeWallet, payer: Payer, buyers: Buyers) -> Summary:
        assert not buyers.violations, buyers.violations[:10]
        assert buyers.timeouts == 0, f"{buyers.timeouts} redeem requests hung"
        payments = payer.payments()
        doubled = {p.pid.hex()[:8]: buyers.tokens[p.pid] for p in payments if len(buyers.tokens[p.pid]) > 1}
        assert not doubled, f"a PID got several tokens across kills: {doubled}"
        twice = [pid.hex()[:8] for pid, n in buyers.claimed_answers.items() if n > 1]
        assert not twice, f"answered `claimed` twice: {twice}"
        final: dict[PaymentId, str] = {}
        for payment in payments:
            response = daemon.redeem(payment.pid)
            assert response.status_code == 200, response.text
            body = response.json()
            earlier = buyers.tokens.get(payment.pid)
            if earlier:
                assert {body["token"]} == earlier, "the token changed after a kill"
                assert body["status"] == "already_claimed"
            assert body["amount"] == payment.total
            final[payment.pid] = body["token"]
        for payment in payments:
            token = final[payment.pid]
            response = daemon.internal("GET", f"/api/v1/token/{token}")
            assert response.status_code == 200, response.text
            record = response.json()
            assert (record["token"], record["status"], record["amount"]) == (token, "active", payment.total)
        status = daemon.status()
        assert status["payments"]["claimed"] == len(payments)
        assert status["tokens"] == {"active": len(payments), "revoked": 0}
        self.final_tokens = final
        return Summary(
            seed=self.seed,
            kills=self.kills,
            kills_before_ready=0,
            seconds=0.0,
            requests=buyers.requests(),
            statuses=dict(buyers.statuses),
            connection_errors=buyers.connection_errors,
            payments=len(payments),
            transfers=sum(len(p.transfers) for p in payments),
            tokens=len(final),
        )

    def _verify_database(
        self, daemon: DaemonProcess, wallet: FakeWallet, payer: Payer, buyers: Buyers
    ) -> None:
        payments = payer.payments()
        listed = wallet.get_transfers(**{"in": True, "pool": True})
        assert "pool" not in listed, "settle() should have mined everything"
        heights = {entry["txid"]: entry["height"] for entry in listed["in"]}
        expected = {
            (p.pid.chain_payment_id().raw, bytes.fromhex(txid), amount, heights[txid], 0)
            for p in payments
            for txid, amount in p.transfers
        }
        conn = connect(daemon.database_path, query_only=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = [
                # Without the COUNTED bit, which storage adds to what the wallet reports.
                (bytes(pid), bytes(txid), amount, height, flags & ~TransferFlag.COUNTED)
                for pid, txid, amount, height, flags in conn.execute(
                    "SELECT payment_id, txid, amount, height, flags FROM transfers"
                )
            ]
            claims = {
                bytes(pid): (bytes(txid), bytes(digest))
                for pid, txid, digest in conn.execute(
                    "SELECT payment_id, claim_txid, token_digest FROM claims"
                )
            }
            cursor = conn.execute("SELECT scan_cursor FROM monitor_state").fetchone()[0]
        finally:
            conn.close()
        assert len(rows) == len(set(rows)) == len(expected) == len(wallet.known_txids())
        assert set(rows) == expected, "the transfers table differs from what the wallet reports"
        assert cursor == wallet.height
        assert len(claims) == len(payments)
        for payment in payments:
            claim_txid, digest = claims[payment.pid.chain_payment_id().raw]
            token = self.final_tokens[payment.pid]
            assert claim_txid.hex() in {txid for txid, _ in payment.transfers}
            assert payment.pid.service_token(TxId(claim_txid)).hex() == token
            assert digest == hashlib.sha3_256(bytes.fromhex(token)).digest()


def test_sigkill_at_random_moments_costs_no_token_and_no_payment(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", "20261128"))
    summary = CrashRun(tmp_path, seed=seed, kills=5).run()
    assert summary.kills == 5
    assert summary.tokens == summary.payments > 0
    assert summary.statuses.get(200, 0) > 0, summary
