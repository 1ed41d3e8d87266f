"""docs/PROTOCOL.md §12's 503: issuance and spends while the storage writer is gone answer a generic
`unavailable` with `Retry-After`, take nothing from the allowance and spend nothing; the real actors,
database and public listener run in-process, so the test can take the writer away."""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PaymentId
from anon_ticket.errors import Unavailable
from anon_ticket.httpd.listener import Listener
from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import TokenChallenge, b64url_decode, b64url_encode
from anon_ticket.service.private_tokens import SpendResult
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline, pipeline_config


@pytest.fixture
def pipeline(tmp_path: Path, wallet: FakeWallet) -> Iterator[Pipeline]:
    running = Pipeline(pipeline_config(tmp_path / "at.db", wallet.url, MONITOR_START_HEIGHT="100"))
    yield running
    running.close()


def test_no_writer_means_503_and_nothing_taken_or_spent(wallet: FakeWallet, pipeline: Pipeline) -> None:
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=MIN_AMOUNT, confirmations=20)
    assert pipeline.poll().ok
    status, body = pipeline.redeem(pid)
    assert status == 200
    service_token = str(body["token"])
    issuer = pipeline.daemon.private_tokens()
    assert issuer is not None
    published = issuer.info()
    key = b64url_decode(published["token_key"])
    challenge = TokenChallenge.decode(b64url_decode(published["challenge"]))
    request, pending = client.prepare(key, challenge)
    token = pending.finalize(issuer.issue(f"Bearer {service_token}", request.encode()))

    listener = Listener("public", BindAddress("127.0.0.1", 0), pipeline.daemon.public_app(), threads=2)
    listener.bind()
    listener.serve_in_thread()
    try:
        writer = pipeline.daemon.actors.ref("storage_writer")
        assert writer is not None
        writer.stop()
        conn = http.client.HTTPConnection("127.0.0.1", listener.bound_port or 0, timeout=10)
        fresh, _ = client.prepare(key, challenge)
        conn.request(
            "POST",
            "/api/v1/private-token/issue",
            body=fresh.encode(),
            headers={
                "Content-Type": "application/private-token-request",
                "Authorization": f"Bearer {service_token}",
            },
        )
        answer = conn.getresponse()
        refused = json.loads(answer.read())
        conn.close()
    finally:
        listener.stop()
    assert answer.status == 503
    assert refused == {"error": "unavailable", "message": "storage unavailable, retry later"}
    assert answer.getheader("Retry-After", "").isdigit()
    with pytest.raises(Unavailable):
        issuer.spend(b64url_encode(token.encode()))
    assert issuer.spend("not a token") is SpendResult.INVALID  # a refusal needs no writer
    database = sqlite3.connect(pipeline.path)
    try:
        assert database.execute("SELECT issued FROM private_token_issuance").fetchall() == [(1,)]
        assert database.execute("SELECT count(*) FROM private_token_spends").fetchone() == (0,)
    finally:
        database.close()
