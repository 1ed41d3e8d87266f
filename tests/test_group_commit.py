"""Claims are group-committed by the storage writer: many at once, each answered after its commit."""

from __future__ import annotations

import contextlib
import threading
import time

import pykka
import pytest

from anon_ticket.actors.storage_writer import request_claim
from anon_ticket.core.domain import PaymentId
from anon_ticket.storage.protocols import ClaimOutcome, ClaimRequest
from anon_ticket.storage.sqlite import connect
from tests.support import wal
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import CONFIRMATIONS, MIN_AMOUNT, Pipeline


def paid(wallet: FakeWallet, pipeline: Pipeline, count: int) -> list[PaymentId]:
    pids = [PaymentId.generate() for _ in range(count)]
    for pid in pids:
        wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    assert pipeline.poll().ok
    return pids


def ask(pipeline: Pipeline, pid: PaymentId) -> pykka.Future[ClaimOutcome | None]:
    ref = pipeline.daemon.actors.ref("storage_writer")
    assert ref is not None
    return request_claim(ref, ClaimRequest(pid, 1_800_000_000, MIN_AMOUNT, CONFIRMATIONS))


def test_claims_queued_together_commit_together_and_each_payment_once(
    wallet: FakeWallet, pipeline: Pipeline
) -> None:
    pids = paid(wallet, pipeline, 40)
    with wal.snapshot(pipeline.path):
        before = wal.commits(pipeline.path)
        # Hold the database's write lock so that every claim queues up behind the first one.
        blocker = connect(pipeline.path)
        blocker.execute("BEGIN IMMEDIATE")
        # Each ask is in the writer's inbox when it returns; whichever claim the writer took first waits
        # for the lock (its busy timeout), and the others queue behind it: no need to wait here.
        futures = [ask(pipeline, pid) for pid in pids for _ in range(2)]  # each PID twice, in one batch
        blocker.execute("COMMIT")
        blocker.close()
        outcomes = [future.get(timeout=30) for future in futures]
        transactions = wal.commits(pipeline.path) - before
    # 40 fresh claims in a handful of transactions (the first alone, the queue together), not 40.
    assert 1 <= transactions <= 4, transactions
    assert all(outcome is not None for outcome in outcomes)
    by_pid: dict[bytes, list[ClaimOutcome]] = {}
    for pid, outcome in zip([p for p in pids for _ in range(2)], outcomes, strict=True):
        assert outcome is not None
        by_pid.setdefault(pid.raw, []).append(outcome)
    for pid in pids:
        first, second = by_pid[pid.raw]
        assert (first.fresh, second.fresh) == (True, False)
        assert first.token == second.token
        assert pipeline.claim_of(pid) is not None


def test_concurrent_redeems_each_get_their_own_token(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pids = paid(wallet, pipeline, 60)
    answers: dict[bytes, list[str]] = {pid.raw: [] for pid in pids}
    barrier = threading.Barrier(12)

    def buyer(share: list[PaymentId]) -> None:
        barrier.wait()
        for pid in share:
            status, body = pipeline.redeem(pid)
            assert status == 200, body
            answers[pid.raw].append(str(body["token"]))

    threads = [threading.Thread(target=buyer, args=(pids[i::6],)) for i in range(6)]
    threads += [threading.Thread(target=buyer, args=(pids[i::6][::-1],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for pid in pids:
        tokens = answers[pid.raw]
        assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_a_claim_waiting_when_the_writer_stops_fails_at_once(wallet: FakeWallet, pipeline: Pipeline) -> None:
    [pid] = paid(wallet, pipeline, 1)
    blocker = connect(pipeline.path)
    blocker.execute("BEGIN IMMEDIATE")
    first = ask(pipeline, PaymentId.generate())  # the writer is now stuck waiting for the lock
    waiting = ask(pipeline, pid)
    ref = pipeline.daemon.actors.ref("storage_writer")
    assert ref is not None
    ref.stop(block=False)
    blocker.execute("COMMIT")
    blocker.close()
    started = time.monotonic()
    with pytest.raises(pykka.ActorDeadError):
        waiting.get(timeout=30)
    assert time.monotonic() - started < 5  # not the caller's whole timeout
    assert pipeline.claim_of(pid) is None
    # The first claim either committed alone (nothing to claim: None) or was still waiting too.
    with contextlib.suppress(pykka.ActorDeadError):
        assert first.get(timeout=30) is None
