"""docs/PROTOCOL.md §12, "unlinkable for real": several buyers fetch private tokens, the tokens are spent
in shuffled order, and then everything the operator keeps — every table and column of the database
(and its raw file bytes), the daemon's log, every statsd datagram — is searched for anything that
pairs a spend with an issuance.

What each side could carry is known to the test, which played both: at issuance the service token,
its digest, the payment id, each TokenRequest, its blinded message, the blinded message's digest and
the blind signature; at a spend the token, its nonce, the nonce's digest and the authenticator. None of
the spend side may appear on the issuance side or the other way round; the raw values of either side
may appear nowhere at all (only their digests, each on its own side); rows keep no times and no
insertion order; the log and statsd carry no per-event value whatsoever.
"""

from __future__ import annotations

import base64
import hashlib
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.core.domain import ServiceToken
from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import Token, b64url_encode
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.private_tokens import issue, published
from tests.support.statsd_sink import StatsdSink
from tests.support.waiting import wait_for

BUYERS = 4
TOKENS_EACH = 3
ISSUANCE_TABLES = {"private_token_issuance", "private_token_requests"}
SPEND_TABLES = {"private_token_spends"}


@dataclass
class Seen:
    """Every value one side of the exchange had in hand, as bytes."""

    values: set[bytes] = field(default_factory=set)

    def add(self, *values: bytes) -> None:
        self.values.update(values)


def renderings(value: bytes) -> set[bytes]:
    """The forms a value could take in a log line or a datagram: hex (and a 12-digit prefix of it),
    base64url, base64 — and the raw bytes themselves for a database file."""
    hexed = value.hex()
    return {
        value,
        hexed.encode(),
        hexed.upper().encode(),
        hexed[:12].encode(),
        b64url_encode(value).encode(),
        base64.b64encode(value).rstrip(b"="),
    }


wallet = module_wallet()


@dataclass
class Exchange:
    daemon: DaemonProcess
    statsd: StatsdSink
    issuance: Seen
    spends: Seen
    key_id: bytes
    spend_order: list[bytes]


def play(daemon: DaemonProcess, wallet: FakeWallet, sink: StatsdSink) -> Exchange:
    """Several buyers fetch tokens, then every token is spent, in shuffled order; the daemon stops."""
    issuance, spends = Seen(), Seen()
    daemon.wait_scanning()
    wait_for("the address", lambda: True if daemon.public("GET", "/api/v1/info").ok else None, 15)
    spki, challenge = published(daemon)
    tokens: list[Token] = []
    for _ in range(BUYERS):
        pid, service_token = claim_token(daemon, wallet)
        digest = ServiceToken.parse(service_token).digest().raw
        issuance.add(bytes.fromhex(service_token), digest, pid.chain_payment_id().raw)
        for _ in range(TOKENS_EACH):
            request, pending = client.prepare(spki, challenge)
            answer = issue(daemon, service_token, request.encode())
            assert answer.status_code == 200, answer.text
            issuance.add(
                request.encode(),
                request.blinded_msg,
                hashlib.sha256(request.blinded_msg).digest(),
                answer.content,
            )
            tokens.append(pending.finalize(answer.content))
    random.Random(21).shuffle(tokens)
    for token in tokens:
        spends.add(token.encode(), token.nonce, hashlib.sha256(token.nonce).digest(), token.authenticator)
        spent = daemon.internal(
            "POST", "/api/v1/private-token/spend", json={"token": b64url_encode(token.encode())}
        )
        assert spent.status_code == 200, spent.text
    wait_for(
        "the spends counted in statsd",
        lambda: True if any(".private_token.spent:" in line for line in sink.lines()) else None,
        15,
    )
    daemon.stop()  # a clean stop: SQLite's WAL is checkpointed into the file, nothing left in memory
    return Exchange(daemon, sink, issuance, spends, tokens[0].token_key_id, [t.nonce for t in tokens])


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, wallet: FakeWallet) -> Iterator[Exchange]:
    sink = StatsdSink()
    env = {"STATSD_PORT": str(sink.port), "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    daemon = DaemonProcess(tmp_path_factory.mktemp("unlinkable"), wallet_url=wallet.url, env=env)
    daemon.start()
    try:
        yield play(daemon, wallet, sink)
    finally:
        daemon.kill()
        sink.close()


def database_rows(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    conn = sqlite3.connect(path)
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = {}
        for name in names:
            cursor = conn.execute(f"SELECT * FROM {name}")
            tables[name] = ([c[0] for c in cursor.description], [tuple(row) for row in cursor])
        return tables
    finally:
        conn.close()


def cells(rows: list[tuple[Any, ...]]) -> set[bytes]:
    found = set()
    for row in rows:
        for value in row:
            if isinstance(value, bytes):
                found.add(value)
            elif value is not None:
                found.add(str(value).encode())
    return found


def test_the_two_halves_of_the_database_share_no_value(exchange: Exchange) -> None:
    tables = database_rows(exchange.daemon.database_path)
    spend_side = set().union(*(cells(tables[name][1]) for name in SPEND_TABLES))
    everything_else = set().union(
        *(cells(rows) for name, (_, rows) in tables.items() if name not in SPEND_TABLES)
    )
    # What a spend keeps: the one key id (the same for every buyer) and one digest per nonce.
    ((_, spend_rows),) = [tables[name] for name in SPEND_TABLES]
    assert {row[0] for row in spend_rows} == {exchange.key_id}
    assert {row[1] for row in spend_rows} == {hashlib.sha256(n).digest() for n in exchange.spend_order}
    assert not spend_side & everything_else
    # Nothing the buyer's issuance carried is in the spend table, and nothing of the spends elsewhere.
    assert not spend_side & exchange.issuance.values
    assert not everything_else & exchange.spends.values


def test_no_raw_value_of_either_side_is_anywhere_in_the_database_file(exchange: Exchange) -> None:
    """Only digests (and the claim's own payment id) are kept; the values themselves are in no byte of
    the file, not even in free pages."""
    path = exchange.daemon.database_path
    raw = path.read_bytes() + b"".join(
        p.read_bytes() for p in path.parent.glob(path.name + "-*") if p.is_file()
    )
    kept = set().union(*(cells(rows) for _, rows in database_rows(path).values()))
    for value in exchange.issuance.values | exchange.spends.values:
        if value in kept:
            assert len(value) in (8, 32)  # a payment id or a digest, on its own side (test above)
            continue
        assert value not in raw, len(value)
    never_kept = [v for v in exchange.issuance.values | exchange.spends.values if len(v) not in (8, 32)]
    # Per token: its request, blinded message and blind signature; the token and its authenticator.
    assert len(never_kept) == 5 * BUYERS * TOKENS_EACH


def test_rows_keep_no_time_and_no_order_of_arrival(exchange: Exchange) -> None:
    tables = database_rows(exchange.daemon.database_path)
    columns, spend_rows = tables["private_token_spends"]
    assert columns == ["key_id", "nonce_digest"]
    # Stored in key order (WITHOUT ROWID), not in the order they were spent.
    assert spend_rows == sorted(spend_rows)
    assert [row[1] for row in spend_rows] != [hashlib.sha256(n).digest() for n in exchange.spend_order]
    columns, request_rows = tables["private_token_requests"]
    assert columns == ["payment_id", "request_digest"] and request_rows == sorted(request_rows)
    assert tables["private_token_issuance"][0] == ["payment_id", "issued"]
    assert {row[1] for row in tables["private_token_issuance"][1]} == {TOKENS_EACH}
    days = tables["private_token_days"][1]
    assert sum(row[2] for row in days) == sum(row[3] for row in days) == BUYERS * TOKENS_EACH


def test_the_log_carries_no_value_of_either_side(exchange: Exchange) -> None:
    log = exchange.daemon.log_text().encode()
    for value in exchange.issuance.values | exchange.spends.values:
        for form in renderings(value):
            assert form not in log, (len(value), form[:16])
    # The spends left identical lines (the internal access log), nothing per token.
    spend_lines = {line for line in log.splitlines() if b"private-token/spend" in line}
    assert len({line.split(b'"message"')[-1] for line in spend_lines}) <= 1


def test_statsd_carries_only_counts(exchange: Exchange) -> None:
    datagrams = "\n".join(exchange.statsd.lines()).encode()
    assert b"private_token.issued" in datagrams and b"private_token.spent" in datagrams
    for value in exchange.issuance.values | exchange.spends.values:
        for form in renderings(value):
            assert form not in datagrams


def test_on_postgresql_too_the_halves_share_no_value(
    request: pytest.FixtureRequest, tmp_path: Path, wallet: FakeWallet
) -> None:
    """The same exchange on a PostgreSQL schema: every table and column read back, as above."""
    import psycopg  # noqa: PLC0415

    from tests.test_storage_postgres import fresh_schema_url  # noqa: PLC0415

    url = fresh_schema_url(request.config)
    sink = StatsdSink()
    env = {
        "DATABASE_URL": url,
        "INTERNAL_API_TOKEN": "unlinkable-on-postgresql-0123",
        "STATSD_PORT": str(sink.port),
        "MONITOR_START_HEIGHT": "100",
    }
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url, env=env)
    daemon.start()
    try:
        played = play(daemon, wallet, sink)
    finally:
        daemon.kill()
        sink.close()
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(url) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ]
        for name in names:
            tables[name] = [tuple(row) for row in conn.execute(f"SELECT * FROM {name}".encode())]
    spend_side = cells(tables["private_token_spends"])
    everything_else = set().union(*(cells(rows) for name, rows in tables.items() if name not in SPEND_TABLES))
    assert {row[0] for row in tables["private_token_spends"]} == {played.key_id}
    assert not spend_side & everything_else
    assert not spend_side & played.issuance.values
    assert not everything_else & played.spends.values
    kept = spend_side | everything_else
    never_kept = [v for v in played.issuance.values | played.spends.values if len(v) not in (8, 32)]
    assert len(never_kept) == 5 * BUYERS * TOKENS_EACH
    assert not set(never_kept) & kept  # requests, blinded messages, signatures, tokens: never stored
    nonces = {hashlib.sha256(nonce).digest() for nonce in played.spend_order}
    assert not set(played.spend_order) & kept  # nonces: only their digests
    assert {row[1] for row in tables["private_token_spends"]} == nonces
    assert sum(int(row[2]) for row in tables["private_token_days"]) == BUYERS * TOKENS_EACH
    assert sum(int(row[3]) for row in tables["private_token_days"]) == BUYERS * TOKENS_EACH
