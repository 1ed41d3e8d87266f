"""A Privacy Pass client's two requests to a running daemon (docs/PROTOCOL.md §12), spelled once for
the tests that fetch tokens over HTTP: the issuer's published key and challenge, and an issuance
request paid for by a service token."""

from __future__ import annotations

import requests

from anon_ticket.privacypass.wire import TokenChallenge, b64url_decode
from tests.support.daemon import DaemonProcess

ISSUE_PATH = "/api/v1/private-token/issue"
REQUEST_TYPE = "application/private-token-request"


def published(daemon: DaemonProcess) -> tuple[bytes, TokenChallenge]:
    """The token key (SPKI) and the challenge `/api/v1/info` publishes."""
    info = daemon.public("GET", "/api/v1/info").json()["private_token"]
    return b64url_decode(info["token_key"]), TokenChallenge.decode(b64url_decode(info["challenge"]))


def issue(daemon: DaemonProcess, service_token: str, body: bytes, **headers: str) -> requests.Response:
    """POST `body` (an encoded TokenRequest, or anything a test sends instead) with the token as Bearer;
    `headers` add to or replace the two the request carries."""
    sent = {"Content-Type": REQUEST_TYPE, "Authorization": f"Bearer {service_token}", **headers}
    return daemon.public("POST", ISSUE_PATH, data=body, headers=sent)
