"""A storage writer that says what it committed: the storage-level half of the power-cut tests.

`python -m tests.support.durable_writer DB SEED [--unsynced]` migrates the SQLite database `DB` and
then, until it is killed, does what the daemon's storage writer does, in a seeded random order: polls
that record a payment (`synchronous=NORMAL`), claims, Privacy Pass issuances and spends (all three
durable), printing one line for every write *after* the store returned, i.e. the moment the daemon
would answer the client:

    claim TOKEN_DIGEST
    issue TOKEN_DIGEST REQUEST_DIGEST      (granted only)
    spend NONCE_DIGEST                     (a first spend only)

`--rescan` instead records a few polls, then one operator rescan (`rescan HEIGHT`), and waits.

The parent cuts the power at some point and then checks that every line it read is still true.
`--unsynced` runs the same with the durable transactions at `synchronous=OFF`
(tests/support/unsynced_claims.py), which the parent must catch losing lines.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from pathlib import Path

from anon_ticket.config import DatabaseUrl
from anon_ticket.core.domain import PaymentId
from anon_ticket.core.payments import Transfer
from anon_ticket.storage.database import Database
from anon_ticket.storage.protocols import IssueRequest, IssueVerdict, SpendRequest, TransferBatch
from anon_ticket.storage.sqlite import SqliteStore, connect

MIN_AMOUNT = 1000
CONFIRMATIONS = 2
TOKENS_PER_PAYMENT = 1000  # an allowance the test never exhausts
KEY_ID = bytes(32)
DAY = 20_000


def _claims(path: Path) -> list[bytes]:
    """The token digests of the claims that survived (a restarted writer issues against them too)."""
    conn = connect(path, query_only=True)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT token_digest FROM claims")]
    finally:
        conn.close()


def _paid(store: SqliteStore) -> PaymentId:
    """A poll that records one confirmed payment for a new PID (committed as polls are: NORMAL)."""
    state = store.monitor_state()
    if state.scan_cursor is None:
        state = store.start_scan(100)
    assert state.scan_cursor is not None
    height = state.scan_cursor + 1
    pid = PaymentId.generate()
    store.apply_batch(
        TransferBatch(
            upserts=((pid.chain_payment_id().raw, Transfer(secrets.token_bytes(32), MIN_AMOUNT, height)),),
            gone=(),
            wallet_height=height + CONFIRMATIONS,
            settle_at_or_below=0,
            expected_cursor=state.scan_cursor,
            new_cursor=height + CONFIRMATIONS,
            polled_at=1_800_000_000,
            min_confirmations=CONFIRMATIONS,
        )
    )
    return pid


def run(path: Path, seed: int) -> None:
    Database(DatabaseUrl("sqlite", path, None)).migrate()
    store = SqliteStore(path)
    digests = _claims(path)
    rng = random.Random(seed)
    while True:
        roll = rng.random()
        if roll < 0.3 or not digests:
            outcome = store.claim(_paid(store), 1_800_000_000, MIN_AMOUNT, CONFIRMATIONS)
            assert outcome is not None and outcome.fresh
            digests.append(outcome.record.token_digest)
            print("claim", outcome.record.token_digest.hex(), flush=True)
        elif roll < 0.65:
            digest = rng.choice(digests)
            request = IssueRequest(
                digest, secrets.token_bytes(32), DAY, TOKENS_PER_PAYMENT, MIN_AMOUNT, CONFIRMATIONS
            )
            if store.issue_many([request])[0].verdict is IssueVerdict.GRANTED:
                print("issue", digest.hex(), request.request_digest.hex(), flush=True)
        else:
            nonce_digest = secrets.token_bytes(32)
            if store.spend_many([SpendRequest(KEY_ID, nonce_digest, DAY)])[0]:
                print("spend", nonce_digest.hex(), flush=True)


def rescan_once(path: Path) -> None:
    """Record a few polls, then one operator rescan, print `rescan HEIGHT` once it returned, and wait."""
    Database(DatabaseUrl("sqlite", path, None)).migrate()
    store = SqliteStore(path)
    for _ in range(5):
        _paid(store)
    cursor = store.monitor_state().scan_cursor
    assert cursor is not None
    state = store.rescan_from(cursor - 7)
    print("rescan", state.scan_cursor, flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    if "--rescan" in sys.argv:
        rescan_once(Path(sys.argv[1]))
    if "--unsynced" in sys.argv:
        from tests.support.unsynced_claims import unsync_durable_transactions

        unsync_durable_transactions()
    run(Path(sys.argv[1]), int(sys.argv[2]))
