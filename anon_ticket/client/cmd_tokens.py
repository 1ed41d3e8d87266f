"""`client tokens`: trade the service token for single-use private tokens, and hand them out one by one.

Fetching reads the server's published challenge and token key from /api/v1/info, then for each token
builds a TokenRequest (anon_ticket/privacypass/client.py), posts it with the service token, finalises
the blind signature into a Token (checked with the published key) and appends it to the file before
asking for the next. A request that failed on the way (network, 429, 503) is posted again unchanged:
the server answers a known blinded message again and takes nothing (docs/PROTOCOL.md §12).

The service token is read from standard input or --token-file, never the command line.
"""

from __future__ import annotations

import argparse
import getpass
import time
from pathlib import Path
from urllib.parse import urljoin

from anon_ticket.client import transport
from anon_ticket.client.answers import busy_or_none, unexpected
from anon_ticket.client.api import ClientSession
from anon_ticket.client.console import Console
from anon_ticket.client.errors import ClientError, ExitCode, ServerError, UsageError
from anon_ticket.client.pidfile import readable_by_others
from anon_ticket.client.tokenfile import append_token, take_first
from anon_ticket.client.waiting import poll_until
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import InvalidToken, PrivateTokenIssuerAnswer, PrivateTokenMalformed
from anon_ticket.privacypass import client as privacypass
from anon_ticket.privacypass.wire import TokenChallenge, TokenRequest, b64url_decode, b64url_encode

REQUEST_TYPE = "application/private-token-request"
RESPONSE_TYPE = "application/private-token-response"
MAX_TOKEN_TEXT = 4096
DEFAULT_TIMEOUT = 600.0


class IssuanceRefused(ClientError):
    """401, 402 or 410 from the issuer: no more tokens for this service token as things stand."""

    code = "issuance_refused"
    exit_code = ExitCode.REFUSED


def run(args: argparse.Namespace, console: Console) -> int:
    if args.take is not None:
        if args.server is not None or args.out is not None or args.token_file is not None:
            raise UsageError("--take FILE goes alone: it only reads FILE")
        token = take_first(args.take)
        console.result(f'Authorization: PrivateToken token="{token}"')
        return ExitCode.OK
    if args.server is None or args.out is None or args.count is None:
        raise UsageError("fetching needs --server URL, --count N and --out FILE (or --take FILE)")
    session = ClientSession(args.server, args.proxy)  # a bad URL or proxy fails before the token is read
    with session:
        service_token = _read_service_token(args.token_file, console)
        for warning in transport.proxy_warnings(args.proxy):
            console.warn(warning)
        deadline = time.monotonic() + args.timeout
        fetcher = Fetcher(session, service_token, args.poll_interval)
        fetcher.load(deadline)
        fetched = 0
        try:
            for _ in range(args.count):
                encoded = fetcher.one(deadline)
                append_token(args.out, encoded)
                fetched += 1
        finally:
            if fetched:
                console.note(f"{fetched} private token(s) appended to {args.out}")
    console.result(str(fetched))
    return ExitCode.OK


class Fetcher:
    """One service token's issuance: the server's challenge and key, then one token per call."""

    def __init__(self, session: ClientSession, service_token: ServiceToken, poll_interval: float) -> None:
        self._session = session
        self._service_token = service_token
        self._poll_interval = poll_interval
        self._challenge: TokenChallenge | None = None
        self._token_key = b""
        self._url = ""

    def load(self, deadline: float) -> None:
        """Read `private_token` of /api/v1/info (retried through 503, 429 and network failures)."""
        session = self._session

        def attempt(timeout: float) -> object:
            reply = session.get("/api/v1/info", timeout=timeout)
            busy_or_none(reply.status, reply.body, reply.retry_after)
            if reply.status != 200 or not isinstance(reply.body, dict):
                raise unexpected(reply.status, reply.body)
            return reply.body

        info = poll_until(
            attempt, deadline, poll_interval=self._poll_interval, request_timeout=session.timeout
        )
        assert isinstance(info, dict)
        published = info.get("private_token")
        if not isinstance(published, dict):
            raise ServerError("the server publishes no private_token in /api/v1/info (Privacy Pass is off)")
        try:
            self._challenge = TokenChallenge.decode(b64url_decode(str(published.get("challenge", ""))))
            self._token_key = b64url_decode(str(published.get("token_key", "")))
        except PrivateTokenMalformed as exc:
            raise ServerError(f"the server's private_token is malformed: {exc}") from None
        uri = published.get("issuer_request_uri")
        if not isinstance(uri, str) or not uri.startswith("/"):
            raise ServerError("the server's issuer_request_uri is not a path on the same server")
        self._url = urljoin(session.server + "/", uri.lstrip("/"))

    def one(self, deadline: float) -> str:
        """A new token (base64url): one request, posted until answered; the same bytes on every retry."""
        assert self._challenge is not None, "load() first"
        try:
            request, pending = privacypass.prepare(self._token_key, self._challenge)
        except PrivateTokenMalformed as exc:
            raise ServerError(f"the server's token key is not an RFC 9578 key: {exc}") from None
        signature = poll_until(
            lambda timeout: self._post(request, timeout),
            deadline,
            poll_interval=self._poll_interval,
            request_timeout=self._session.timeout,
        )
        try:
            token = pending.finalize(signature)
        except PrivateTokenIssuerAnswer as exc:
            raise ServerError(str(exc)) from None
        return b64url_encode(token.encode())

    def _post(self, request: TokenRequest, timeout: float) -> bytes:
        reply = self._session.post_bytes(
            self._url,
            request.encode(),
            {
                "Content-Type": REQUEST_TYPE,
                "Accept": RESPONSE_TYPE,
                "Authorization": f"Bearer {self._service_token.hex()}",
            },
            timeout=timeout,
        )
        busy_or_none(reply.status, reply.body, reply.retry_after)
        if reply.status == 200 and reply.content_type.split(";")[0].strip() == RESPONSE_TYPE:
            return reply.raw
        fields = reply.body if isinstance(reply.body, dict) else {}
        if reply.status == 402:
            raise IssuanceRefused(
                f"the allowance is used up ({fields.get('issued')} of {fields.get('allowance')} issued); "
                "a further payment to the same PID raises it"
            )
        if reply.status == 410:
            raise IssuanceRefused("the service token was revoked")
        if reply.status == 401:
            raise IssuanceRefused("the server does not know this service token")
        raise unexpected(reply.status, reply.body)


def _read_service_token(path: Path | None, console: Console) -> ServiceToken:
    if path is not None and str(path) != "-":
        try:
            text = path.read_text(encoding="ascii")[:MAX_TOKEN_TEXT]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the service token from {path}: {exc}") from None
        if readable_by_others(path):
            console.warn(f"{path} is accessible to other users; `chmod 600 {path}` keeps the token yours")
        return _parse(text, str(path))
    if console.stdin is None or console.stdin.closed:
        raise UsageError("no --token-file and standard input is closed")
    if console.stdin.isatty():
        return _parse(getpass.getpass("service token (input hidden): ", stream=console.stderr), "the input")
    return _parse(console.stdin.read(MAX_TOKEN_TEXT), "standard input")


def _parse(text: str, source: str) -> ServiceToken:
    try:
        return ServiceToken.parse(text.strip())
    except InvalidToken:
        raise UsageError(f"{source} does not hold a service token (64 hex digits)") from None
