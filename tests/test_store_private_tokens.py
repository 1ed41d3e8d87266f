"""Privacy Pass issuance counts and spends in storage, on SQLite and PostgreSQL alike (docs/PROTOCOL.md §12).

The allowance is `floor(amount × tokens per payment / minimum)` of the amount counted at each request;
a new blinded message takes one durably, the same one again takes nothing, and no interleaving of
writers (threads here, nodes in test_private_tokens_nodes.py) issues more than the allowance. Spends
are one row per nonce digest and key: the second is refused. The two halves share no column.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from typing import Any

import pytest

from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer
from anon_ticket.storage.backend_rules import allowance
from anon_ticket.storage.database import Database
from anon_ticket.storage.protocols import (
    IssueOutcome,
    IssueRequest,
    IssueVerdict,
    PrivateTokenDay,
    SpendRequest,
    Store,
)
from tests.support.stores import CONF, MIN, TX1, TX2, batch, paid
from tests.test_store_contract import db, rows_of, store  # noqa: F401 (the fixtures, parametrised by backend)

PER_PAYMENT = 5  # tokens per minimum payment in these tests
DAY = 20_000
KEY_ID = hashlib.sha256(b"an issuer key's SPKI").digest()


def claimed_token_digest(into: Store, amount: int = MIN) -> tuple[PaymentId, bytes]:
    pid = paid(into, amount)
    outcome = into.claim(pid, 1_800_000_000, MIN, CONF)
    assert outcome is not None
    return pid, outcome.record.token_digest


def ask(token_digest: bytes, request_digest: bytes | None = None, day: int = DAY) -> IssueRequest:
    return IssueRequest(
        token_digest=token_digest,
        request_digest=request_digest or secrets.token_bytes(32),
        day=day,
        tokens_per_payment=PER_PAYMENT,
        min_amount=MIN,
        min_confirmations=CONF,
    )


def issue(into: Store, request: IssueRequest) -> IssueOutcome:
    return into.issue_many([request])[0]


def spend(into: Store, nonce: bytes, key_id: bytes = KEY_ID, day: int = DAY) -> bool:
    return into.spend_many([SpendRequest(key_id, hashlib.sha256(nonce).digest(), day)])[0]


def in_parallel(writers: list[Store], run: Callable[[Store], None]) -> None:
    """`run(writer)` on a thread of its own for each writer (up to 60 s each), then every writer closed."""
    threads = [threading.Thread(target=run, args=(writer,)) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for writer in writers:
        writer.close()


def test_the_allowance_rule_is_integer_floor() -> None:
    assert allowance(MIN, 100, MIN) == 100
    assert allowance(MIN * 3 // 2, 100, MIN) == 150
    assert allowance(MIN - 1, 100, MIN) == 99
    assert allowance(10**19, 10**6, 1) == 10**25  # no float rounding, whatever the amounts


def test_new_blinded_messages_take_one_each_until_the_allowance_is_used(store: Store) -> None:  # noqa: F811
    _, digest = claimed_token_digest(store)
    outcomes = [issue(store, ask(digest)) for _ in range(PER_PAYMENT)]
    assert [o.verdict for o in outcomes] == [IssueVerdict.GRANTED] * PER_PAYMENT
    assert [o.issued for o in outcomes] == list(range(1, PER_PAYMENT + 1))
    assert {o.allowance for o in outcomes} == {PER_PAYMENT}
    refused = issue(store, ask(digest))
    assert refused == IssueOutcome(IssueVerdict.EXHAUSTED, PER_PAYMENT, PER_PAYMENT)


def test_the_same_blinded_message_again_takes_nothing_even_when_exhausted(store: Store) -> None:  # noqa: F811
    pid, digest = claimed_token_digest(store)
    first = ask(digest)
    assert issue(store, first).verdict is IssueVerdict.GRANTED
    again = issue(store, first)
    assert again == IssueOutcome(IssueVerdict.REPEATED, PER_PAYMENT, 1)
    for _ in range(PER_PAYMENT - 1):
        issue(store, ask(digest))
    assert issue(store, first).verdict is IssueVerdict.REPEATED
    assert store.issued_count(pid.chain_payment_id().raw, first.request_digest) == (PER_PAYMENT, True)


def test_one_batch_with_the_same_message_twice_counts_it_once(store: Store) -> None:  # noqa: F811
    _, digest = claimed_token_digest(store)
    request = ask(digest)
    outcomes = store.issue_many([request, request, ask(digest)])
    assert [o.verdict for o in outcomes] == [
        IssueVerdict.GRANTED,
        IssueVerdict.REPEATED,
        IssueVerdict.GRANTED,
    ]
    assert outcomes[-1].issued == 2


def test_a_blinded_message_is_per_service_token(store: Store) -> None:  # noqa: F811
    _, first = claimed_token_digest(store)
    _, second = claimed_token_digest(store)
    shared = secrets.token_bytes(32)
    assert issue(store, ask(first, shared)).verdict is IssueVerdict.GRANTED
    assert issue(store, ask(second, shared)).verdict is IssueVerdict.GRANTED  # another buyer's allowance


def test_a_later_payment_raises_the_allowance(store: Store) -> None:  # noqa: F811
    pid, digest = claimed_token_digest(store)
    for _ in range(PER_PAYMENT):
        issue(store, ask(digest))
    assert issue(store, ask(digest)).verdict is IssueVerdict.EXHAUSTED
    # Half a minimum more, counted: two and a half more tokens' worth, floored.
    batch(store, [(pid.chain_payment_id().raw, Transfer(TX2, MIN // 2, 150))])
    raised = [issue(store, ask(digest)) for _ in range(3)]
    assert [o.verdict for o in raised] == [IssueVerdict.GRANTED, IssueVerdict.GRANTED, IssueVerdict.EXHAUSTED]
    assert raised[-1].allowance == PER_PAYMENT * 3 // 2 == 7


def test_a_transfer_still_waiting_for_confirmations_does_not_count(store: Store) -> None:  # noqa: F811
    pid, digest = claimed_token_digest(store)
    batch(store, [(pid.chain_payment_id().raw, Transfer(TX2, MIN, 199))])  # 1 of 10 confirmations
    assert issue(store, ask(digest)).allowance == PER_PAYMENT


def test_unknown_and_revoked_service_tokens_take_nothing(store: Store) -> None:  # noqa: F811
    assert issue(store, ask(secrets.token_bytes(32))) == IssueOutcome(IssueVerdict.UNKNOWN)
    pid, digest = claimed_token_digest(store)
    request = ask(digest)
    issue(store, request)
    store.revoke(digest, None, 1_800_000_100)
    for refused in (issue(store, ask(digest)), issue(store, request)):
        assert refused.verdict is IssueVerdict.REVOKED
    assert store.issued_count(pid.chain_payment_id().raw) == (1, False)


def test_a_reorged_payment_is_revoked_for_issuance_too(store: Store) -> None:  # noqa: F811
    pid, digest = claimed_token_digest(store)
    batch(store, gone=[(pid.chain_payment_id().raw, TX1)], height=201)
    assert issue(store, ask(digest)).verdict is IssueVerdict.REVOKED


def test_threads_racing_for_one_allowance_never_exceed_it(db: Database, store: Store) -> None:  # noqa: F811
    """Several writers at once (as several nodes would be on PostgreSQL; SQLite serializes them)."""
    _, digest = claimed_token_digest(store)
    writers = [db.open_writer() for _ in range(4)]
    results: list[IssueVerdict] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(writers))

    def run(writer: Store) -> None:
        barrier.wait()
        for _ in range(4):
            outcomes = writer.issue_many([ask(digest) for _ in range(2)])
            with lock:
                results.extend(o.verdict for o in outcomes)

    in_parallel(writers, run)
    assert len(results) == 32
    assert results.count(IssueVerdict.GRANTED) == PER_PAYMENT
    assert results.count(IssueVerdict.EXHAUSTED) == 32 - PER_PAYMENT
    assert rows_of(db, "SELECT issued FROM private_token_issuance") == [(PER_PAYMENT,)]
    assert rows_of(db, "SELECT count(*) FROM private_token_requests") == [(PER_PAYMENT,)]


def test_a_nonce_is_spent_once_per_key(store: Store) -> None:  # noqa: F811
    nonce = secrets.token_bytes(32)
    assert spend(store, nonce) is True
    assert spend(store, nonce) is False
    assert spend(store, nonce, key_id=hashlib.sha256(b"the next key").digest()) is True
    request = SpendRequest(KEY_ID, hashlib.sha256(b"twice in one batch").digest(), DAY)
    assert store.spend_many([request, request]) == [True, False]


def test_racing_spends_of_one_nonce_succeed_once(db: Database) -> None:  # noqa: F811
    writers = [db.open_writer() for _ in range(4)]
    nonce = secrets.token_bytes(32)
    fresh: list[bool] = []
    barrier = threading.Barrier(len(writers))

    def run(writer: Store) -> None:
        barrier.wait()
        fresh.append(spend(writer, nonce))

    in_parallel(writers, run)
    assert sorted(fresh) == [False, False, False, True]


def test_figures_count_issued_and_spent_per_day(store: Store) -> None:  # noqa: F811
    _, digest = claimed_token_digest(store)
    store.issue_many([ask(digest, day=DAY), ask(digest, day=DAY), ask(digest, day=DAY + 1)])
    repeated = ask(digest, day=DAY + 1)
    issue(store, repeated)
    issue(store, repeated)  # a retry is not a new token
    spend(store, b"a" * 32, day=DAY + 1)
    spend(store, b"a" * 32, day=DAY + 1)  # refused: not counted
    spend(store, b"b" * 32, day=DAY + 2)
    assert store.private_token_days(DAY, DAY + 3) == [
        PrivateTokenDay(DAY, 2, 0),
        PrivateTokenDay(DAY + 1, 2, 1),
        PrivateTokenDay(DAY + 2, 0, 1),
    ]
    assert store.private_token_days(DAY + 1, DAY + 2) == [PrivateTokenDay(DAY + 1, 2, 1)]


def columns(db: Database, table: str) -> set[str]:  # noqa: F811 (db: the fixture's name)
    if db.backend == "sqlite":
        return {row[1] for row in rows_of(db, f"PRAGMA table_info({table})")}
    query = (
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = current_schema() AND table_name = '{table}'"
    )
    return {row[0] for row in rows_of(db, query)}


def test_the_issuance_and_spend_halves_share_no_column_and_keep_no_time(db: Database) -> None:  # noqa: F811
    issuance = columns(db, "private_token_issuance") | columns(db, "private_token_requests")
    spends = columns(db, "private_token_spends")
    assert issuance == {"payment_id", "issued", "request_digest"}
    assert spends == {"key_id", "nonce_digest"}
    assert not issuance & spends
    assert columns(db, "private_token_days") == {"day", "shard", "issued", "spent"}


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("private_token_spends (key_id, nonce_digest)", (b"k" * 31, b"n" * 32)),
        ("private_token_spends (key_id, nonce_digest)", (b"k" * 32, b"n" * 33)),
    ],
)
def test_the_schema_refuses_malformed_spends(db: Database, table: str, values: tuple[Any, ...]) -> None:  # noqa: F811
    placeholders = "?, ?" if db.backend == "sqlite" else "%s, %s"
    with pytest.raises(Exception, match=r"(?i)check"):
        raw_insert(db, f"INSERT INTO {table} VALUES ({placeholders})", values)


def raw_insert(db: Database, statement: str, values: tuple[Any, ...]) -> None:  # noqa: F811
    if db.backend == "sqlite":
        from anon_ticket.storage.sqlite import connect  # noqa: PLC0415

        conn = connect(db.path)
        try:
            conn.execute(statement, values)
        finally:
            conn.close()
        return
    import psycopg  # noqa: PLC0415

    assert db.url.postgres_dsn is not None
    with psycopg.connect(db.url.postgres_dsn.reveal()) as pg:
        pg.execute(statement.encode(), values)


def test_issued_count_reads_what_was_issued(store: Store) -> None:  # noqa: F811
    pid, digest = claimed_token_digest(store)
    payment_id = pid.chain_payment_id().raw
    assert store.issued_count(payment_id) == (0, False)
    request = ask(digest)
    issue(store, request)
    assert store.issued_count(payment_id, request.request_digest) == (1, True)
    assert store.issued_count(payment_id, secrets.token_bytes(32)) == (1, False)
    assert store.issued_count(secrets.token_bytes(8)) == (0, False)


# -- through the storage writer actor (every write in the daemon goes there) -----------------------


def test_the_writer_group_commits_issuances_and_answers_refusals_as_values(
    db: Database,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    from anon_ticket.actors.storage_writer import StorageWriter, request_issue, request_spend  # noqa: PLC0415

    _, digest = claimed_token_digest(store)
    ref = StorageWriter.start(db.open_writer)
    try:
        retried = ask(digest)
        futures = [request_issue(ref, retried)] + [request_issue(ref, ask(digest)) for _ in range(9)]
        futures.append(request_issue(ref, retried))
        outcomes = [future.get(timeout=30) for future in futures]
        verdicts = [outcome.verdict for outcome in outcomes]
        assert verdicts.count(IssueVerdict.GRANTED) == PER_PAYMENT
        assert verdicts.count(IssueVerdict.EXHAUSTED) == 10 - PER_PAYMENT
        assert verdicts[0] is IssueVerdict.GRANTED and verdicts[-1] is IssueVerdict.REPEATED
        nonce = hashlib.sha256(b"nonce").digest()
        spends = [request_spend(ref, SpendRequest(KEY_ID, nonce, DAY)) for _ in range(3)]
        assert [future.get(timeout=30) for future in spends] == [True, False, False]
        assert ref.is_alive()
    finally:
        ref.stop()
