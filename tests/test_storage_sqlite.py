"""What only the SQLite backend has: a real file's pragmas, its bytes, and a killed writer process.

The behaviour both backends share (claims, revocations, batches, binding…) is in
test_store_contract.py, which runs every assertion against SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from anon_ticket.storage.database import Database
from anon_ticket.storage.sqlite import SqliteStore, connect
from tests.support.stores import CONF, MIN, paid


def test_a_schema_is_in_place_with_wal_and_normal_sync(database: Database) -> None:
    conn = connect(database.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"transfers", "claims", "monitor_state", "schema_migrations"} <= tables
    conn.close()


def test_no_pid_or_token_bytes_reach_the_database_files(database: Database, store: SqliteStore) -> None:
    pids = [paid(store, txid=bytes([i]) * 32) for i in range(1, 20)]
    tokens = []
    for pid in pids:
        outcome = store.claim(pid, 10, MIN, CONF)
        assert outcome is not None
        tokens.append(outcome.token)
    store.revoke(tokens[0].digest().raw, "x", 11)
    files = b"".join(
        p.read_bytes() for p in database.path.parent.iterdir() if p.name.startswith("anon_ticket.db")
    )
    for pid, token in zip(pids, tokens, strict=True):
        for needle in (pid.raw, token.raw, pid.hex().encode(), token.hex().encode()):
            assert needle not in files
    # …while what must be there, is.
    assert tokens[1].digest().raw in files


CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from anon_ticket.storage.sqlite import SqliteStore
    store = SqliteStore(Path(sys.argv[1]))
    conn = store._conn
    for i in range(50):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO transfers (payment_id, txid, amount, height) VALUES (?, ?, 1, 5)",
                     (i.to_bytes(8, "big"), bytes(32)))
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    for i in range(1000, 200000):
        conn.execute("INSERT INTO transfers (payment_id, txid, amount, height) VALUES (?, ?, 1, 5)",
                     (i.to_bytes(8, "big"), bytes(32)))
        if i == 5000:
            print("mid-transaction", flush=True)
    """
)


def test_a_process_killed_mid_transaction_loses_nothing_committed(database: Database) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(database.path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "mid-transaction"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    conn = connect(database.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM transfers").fetchone()[0] == 50
    conn.close()
