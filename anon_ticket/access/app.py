"""The access gateway's WSGI application (docs/PROTOCOL.md §13): `/auth` for proxies, `/login` for people.

`/auth` answers any method with 200, 401 or 403 and nothing else, whatever the request holds and
whatever fails behind it: nginx's `auth_request` would turn any other status into a 500. A service
token's claim is read through `ClaimLookups` (each read reused for at most half a second, so a
revocation counts within that, on every node sharing the database); the end of the paid time is
compared with the clock at every decision. `/login` and anything else go through the same router as
the other listeners (404, 405, HEAD, bounded logging).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from anon_ticket.access import page
from anon_ticket.access.decision import (
    ALLOWED,
    MESSAGES,
    Bearer,
    Decision,
    PrivateToken,
    Reason,
    credential_of,
    judge_record,
    private_token_value,
)
from anon_ticket.access.lookups import ClaimLookups
from anon_ticket.access.redirect import HOME, safe_next
from anon_ticket.access.sessions import Sessions, cookie_header, cookie_value
from anon_ticket.api.routing import Router
from anon_ticket.api.wsgi import Environ, StartResponse, encode, read_body, respond_bytes, status_line
from anon_ticket.core.domain import ServiceToken
from anon_ticket.core.timefmt import rfc3339
from anon_ticket.errors import AnonTicketError, InvalidRequest, InvalidToken, UnsupportedMediaType
from anon_ticket.httpd.incidents import OncePerInterval
from anon_ticket.panel.throttle import LoginThrottle
from anon_ticket.privacypass.wire import Token
from anon_ticket.storage.protocols import Store

log = logging.getLogger(__name__)

AUTH_PATH = "/auth"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 8192
MAX_FORM_FIELDS = 8
RETRY_AFTER_SECS = 5
BEARER_CHALLENGE = 'Bearer realm="anon_ticket"'

# Verifies a Privacy Pass token and spends it once (docs/PROTOCOL.md §12): None when spent now, else
# why not (TOKEN_SPENT, INVALID_TOKEN, or UNAVAILABLE when the spend cannot be made durable now).
SpendPrivateToken = Callable[[Token], Reason | None]


@dataclass(frozen=True, slots=True)
class AccessSettings:
    session_secs: int
    policy: bool  # ACCESS_SECONDS_PER_PAYMENT is set: a token's paid time ends


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision and, when it opened one, the new session's cookie value."""

    decision: Decision
    new_session: str | None = None


class AccessApp:
    """Callable from any request thread; the sessions and the throttle are its only state."""

    def __init__(
        self,
        reader: Callable[[], Store],
        settings: AccessSettings,
        *,
        spend_private_token: SpendPrivateToken | None = None,
        private_token_challenge: str | None = None,
        count: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        throttle: LoginThrottle | None = None,
        lookups: ClaimLookups | None = None,
    ) -> None:
        """`private_token_challenge`: the value of the RFC 9577 `WWW-Authenticate` header
        (`PrivateToken challenge="…", token-key="…"`), None when Privacy Pass is off."""
        self._claims = lookups or ClaimLookups(reader)
        self._settings = settings
        self.sessions = Sessions(settings.session_secs, clock=clock)
        self._spend = spend_private_token
        self._challenges = [("WWW-Authenticate", BEARER_CHALLENGE)]
        if private_token_challenge is not None:
            # nginx passes on only the first WWW-Authenticate of a 401: the Privacy Pass one.
            self._challenges.insert(0, ("WWW-Authenticate", private_token_challenge))
        self._count = count
        self._clock = clock
        self._throttle = throttle or LoginThrottle()
        self._once = OncePerInterval()
        self.router = Router("access", count=count)
        self.router.add(page.LOGIN_PATH, "login", GET=self._login_page, POST=self._login)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == AUTH_PATH:
            return self._auth(environ, start_response)
        return self.router(environ, start_response)

    # -- the decision -----------------------------------------------------------------------------

    def decide(self, environ: Environ) -> Outcome:
        """Judge a request from its Authorization header, or else its session cookie; never raises."""
        try:
            credential = credential_of(str(environ.get("HTTP_AUTHORIZATION", "")))
            if isinstance(credential, Bearer):
                return Outcome(self._service_token(credential.token))
            if isinstance(credential, PrivateToken):
                return self._private_token(credential.token)
            return Outcome(self._session(str(environ.get("HTTP_COOKIE", ""))))
        except Exception:
            self._failed("defect", exc_info=True)
            return Outcome(Decision(Reason.UNAVAILABLE))

    def _service_token(self, token: ServiceToken | None) -> Decision:
        if token is None:
            return Decision(Reason.UNKNOWN_TOKEN)  # not 64 hex digits: no token we issued
        return self._judge_digest(token.digest().raw)

    def _judge_digest(self, digest: bytes) -> Decision:
        try:
            record = self._claims.claim(digest)
        except AnonTicketError as error:
            self._failed(f"storage: {error}")
            return Decision(Reason.UNAVAILABLE)
        return judge_record(record, self._settings.policy, self._clock())

    def _private_token(self, token: Token | None) -> Outcome:
        decision = self._spend_private(token)
        return Outcome(decision, self.sessions.open() if decision.allowed else None)

    def _spend_private(self, token: Token | None) -> Decision:
        """Spend a Privacy Pass token once (§12): allowed the first time, `token_spent` after."""
        if token is None or self._spend is None:
            return Decision(Reason.INVALID_TOKEN)
        refused = self._spend(token)
        if refused is Reason.UNAVAILABLE:
            self._failed("privacy pass: the spend cannot be recorded now")
        return ALLOWED if refused is None else Decision(refused)

    def _session(self, cookies: str) -> Decision:
        value = cookie_value(cookies)
        session = self.sessions.find(value) if value is not None else None
        if session is None:
            return Decision(Reason.NO_CREDENTIAL)
        if session.token_digest is None:
            return ALLOWED  # a Privacy Pass session: paid for when it was opened
        return self._judge_digest(session.token_digest)

    def _failed(self, what: str, *, exc_info: bool = False) -> None:
        """A component (or a bug) made the gateway fail closed: said once a minute at most."""
        kind = "defect" if exc_info else what.partition(":")[0]
        held = self._once.admit(kind)
        if held is not None:
            log.warning(
                "access gateway: answering 401 unavailable (%s; %d more in the last minute)",
                what,
                held,
                exc_info=exc_info,
            )

    # -- /auth ------------------------------------------------------------------------------------

    def _auth(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        outcome = self.decide(environ)
        decision = outcome.decision
        if self._count is not None:
            self._count(f"access.auth.{decision.reason or 'allowed'}")
        headers: list[tuple[str, str]] = []
        if decision.until is not None and decision.allowed:
            headers.append(("X-Access-Until", rfc3339(decision.until) or ""))
        if outcome.new_session is not None:
            headers.append(cookie_header(outcome.new_session, self._settings.session_secs))
        if decision.allowed:
            start_response(
                status_line(200), [("Content-Length", "0"), ("Cache-Control", "no-store"), *headers]
            )
            return []
        return respond_bytes(
            start_response, decision.status, self._refusal_body(decision), self._refusal(decision)
        )

    def _refusal(self, decision: Decision) -> list[tuple[str, str]]:
        assert decision.reason is not None
        headers = [("X-Access-Reason", decision.reason.value)]
        if decision.status == 401:
            headers += self._challenges
        if decision.reason is Reason.UNAVAILABLE:
            headers.append(("Retry-After", str(RETRY_AFTER_SECS)))
        return headers

    @staticmethod
    def _refusal_body(decision: Decision) -> bytes:
        assert decision.reason is not None
        body: dict[str, object] = {"error": decision.reason.value, "message": MESSAGES[decision.reason]}
        if decision.until is not None:
            body["access_until"] = rfc3339(decision.until)
        return encode(body)

    # -- /login -----------------------------------------------------------------------------------

    def _login_page(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """The form; `next` from the query, else the URI the proxy was asked for (X-Original-URI)."""
        try:
            query = urllib.parse.parse_qs(
                str(environ.get("QUERY_STRING", "")), max_num_fields=MAX_FORM_FIELDS
            )
        except ValueError:  # more fields than any sign-in link has: none of them is taken
            query = {}
        wanted = next(iter(query.get("next", [])), None) or environ.get("HTTP_X_ORIGINAL_URI")
        return self._page(start_response, 200, _next_of(wanted))

    def _login(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """A sign-in; while failures are throttled, a failure answers 429 and a good token still passes.

        The throttle is one for all clients (behind the proxy and Tor they have no address). Were
        a good token refused too, as on the panel, any anonymous client sending five junk forms a
        minute would keep every browser out of the site. Nothing is learnt by guessing here that
        `/auth` (never throttled) would not tell, and a 256-bit token cannot be guessed.
        """
        try:
            fields = _form_fields(environ)
        except AnonTicketError as error:
            return self._page(start_response, error.status, HOME, error.public_message())
        next_path = _next_of(fields.get("next"))
        wait = self._throttle.retry_after()
        decision, digest = self._sign_in(fields)
        if not decision.allowed:
            assert decision.reason is not None
            if wait:
                return self._throttled(start_response, wait)
            if decision.reason is not Reason.UNAVAILABLE:
                self._throttle.failed()
            return self._page(start_response, decision.status, next_path, MESSAGES[decision.reason])
        self._throttle.succeeded()
        value = self.sessions.open(digest)
        start_response(
            status_line(303),
            [
                ("Location", next_path),
                cookie_header(value, self._settings.session_secs),
                ("Content-Length", "0"),
                ("Cache-Control", "no-store"),
                ("Referrer-Policy", "no-referrer"),
            ],
        )
        return []

    def _throttled(self, start_response: StartResponse, wait: int) -> list[bytes]:
        if self._throttle.first_refusal():
            log.warning("access gateway: sign-ins throttled for %d s after repeated failures", wait)
        return self._page(
            start_response,
            429,
            HOME,
            "Too many failed sign-ins: wait a minute and try again.",
            [("Retry-After", str(wait))],
        )

    def _sign_in(self, fields: dict[str, str]) -> tuple[Decision, bytes | None]:
        """The form's decision, and the service token's digest for its session (None: Privacy Pass)."""
        token_text = fields.get("token", "").strip()
        private_text = fields.get("private_token", "").strip()
        if token_text:
            try:
                token = ServiceToken.parse(token_text.lower())
            except InvalidToken:
                return Decision(Reason.UNKNOWN_TOKEN), None
            digest = token.digest().raw
            return self._judge_digest(digest), digest
        if private_text:
            return self._spend_private(private_token_value(private_text)), None
        return Decision(Reason.NO_CREDENTIAL), None

    def _page(
        self,
        start_response: StartResponse,
        status: int,
        next_path: str,
        message: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[bytes]:
        body = page.render(next_path, message)
        start_response(
            status_line(status),
            [
                ("Content-Type", page.HTML_TYPE),
                ("Content-Length", str(len(body))),
                *page.SECURITY_HEADERS,
                *headers,
            ],
        )
        return [body]


def _next_of(wanted: object) -> str:
    """A safe `next`; the sign-in page itself is no destination."""
    path = safe_next(wanted if isinstance(wanted, str) else None)
    return HOME if path == page.LOGIN_PATH or path.startswith(page.LOGIN_PATH + "?") else path


def _form_fields(environ: Environ) -> dict[str, str]:
    """The sign-in form's fields (first value of each); 415, 413, 400 or 408 as errors."""
    media_type = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise UnsupportedMediaType(f"the form must be sent as {FORM_TYPE}")
    raw = read_body(environ, MAX_FORM_BYTES)
    try:
        text = raw.decode("ascii")
        parsed = urllib.parse.parse_qs(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form could not be read") from None
    return {name: values[0] for name, values in parsed.items() if values}
