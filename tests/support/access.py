"""Helpers for the access gateway's tests: a raw HTTP client, a paid-for token, a served gateway."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from anon_ticket.access.lookups import CACHE_SECS
from anon_ticket.api.wsgi import WsgiApp
from anon_ticket.config import BindAddress
from anon_ticket.core.domain import PaymentId
from anon_ticket.daemon import ACCESS_FAULT_STATUS
from anon_ticket.httpd.listener import Listener
from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import Token, TokenChallenge, b64url_decode, b64url_encode
from tests.support.fake_wallet import FakeWallet
from tests.support.pipeline import MIN_AMOUNT, Pipeline


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request on a fresh connection, bytes in and out (no client library smoothing anything)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def seen_by_the_gateway() -> None:
    """Wait out the gateway's claim cache (access/lookups.py): a change made now counts after it."""
    time.sleep(CACHE_SECS + 0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claim_token(wallet: FakeWallet, pipeline: Pipeline, amount: int = MIN_AMOUNT) -> tuple[PaymentId, str]:
    """Pay `amount` to a new PID, let the poller count it, redeem: (pid, service token hex)."""
    pid = PaymentId.generate()
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=amount, confirmations=20)
    assert pipeline.poll().ok
    status, body = pipeline.redeem(pid)
    assert status == 200, body
    return pid, str(body["token"])


def top_up(wallet: FakeWallet, pipeline: Pipeline, pid: PaymentId, amount: int = MIN_AMOUNT) -> None:
    """Another transfer to the same address, counted by the next poll."""
    wallet.add_confirmed(payment_id=pid.chain_payment_id().hex(), amount=amount, confirmations=20)
    assert pipeline.poll().ok


def private_token(pipeline: Pipeline, service_token: str) -> Token:
    """One Privacy Pass token, issued the real way: a TokenRequest signed against the service token's
    allowance by the daemon's issuer (docs/PROTOCOL.md §12), finalised by our client."""
    issuer = pipeline.daemon.private_tokens()
    assert issuer is not None, "Privacy Pass is off"
    challenge = TokenChallenge.decode(b64url_decode(issuer.encoded_challenge))
    request, pending = client.prepare(b64url_decode(issuer.token_key), challenge)
    return pending.finalize(issuer.issue(f"Bearer {service_token}", request.encode()))


def private_header(token: Token) -> dict[str, str]:
    return {"Authorization": f'PrivateToken token="{b64url_encode(token.encode())}"'}


@contextlib.contextmanager
def served(
    app: WsgiApp, name: str = "access", threads: int = 4, request_deadline: float = 10.0
) -> Iterator[int]:
    """`app` on our HTTP server on a loopback port, as the daemon serves the gateway; yields the port."""
    listener = Listener(
        name,
        BindAddress("127.0.0.1", 0),
        app,
        threads=threads,
        fault_status=ACCESS_FAULT_STATUS,
        request_deadline=request_deadline,
    )
    listener.bind()
    listener.serve_in_thread()
    try:
        assert listener.bound_port is not None
        yield listener.bound_port
    finally:
        listener.stop()
