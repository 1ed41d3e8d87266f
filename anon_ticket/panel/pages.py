"""The panel's pages: exposed handler classes, dispatched by CherryPy, rendered by Jinja2 templates.

Each handler reads what it shows through the same services as the internal API (`StatusService`,
`TokenService` for records and revocation, so the panel never disagrees with the API and revokes
durably) and the read-only store for the figures. Method rules and the sign-in requirement sit on
each handler as CherryPy config (`_cp_config`), so no URL can reach a handler without them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import cherrypy
import jinja2

from anon_ticket.api.internal import MAX_REASON_CHARS, InternalApp
from anon_ticket.core.domain import ServiceToken
from anon_ticket.errors import AnonTicketError, InvalidRequest, InvalidToken, Unauthorized
from anon_ticket.panel import charts, figures, tools
from anon_ticket.panel.throttle import LoginThrottle
from anon_ticket.service.metrics import Metrics, MinuteSample
from anon_ticket.service.status import StatusService
from anon_ticket.service.tokens import OperatorSettings, TokenService
from anon_ticket.storage.protocols import Store

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
REPORT_LIMIT = 200
GET = ["GET", "HEAD"]
POST = ["POST"]


def config(**settings: object) -> Callable[[F], F]:
    """CherryPy config on one handler (`_cp_config`), keys written with `__` for dots."""

    def apply(func: F) -> F:
        vars(func).setdefault("_cp_config", {}).update(
            {key.replace("__", "."): value for key, value in settings.items()}
        )
        return func

    return apply


class Pages:
    """The root of `/admin/`. Every handler needs a signed-in session unless its config says otherwise."""

    def __init__(
        self,
        internal: InternalApp,
        tokens: TokenService,
        status: StatusService,
        metrics: Metrics,
        reader: Callable[[], Store],
        settings: OperatorSettings,
        templates: jinja2.Environment,
        throttle: LoginThrottle,
        stylesheet: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stylesheet = stylesheet
        self._internal = internal
        self._tokens = tokens
        self._status = status
        self._metrics = metrics
        self._reader = reader
        self._settings = settings
        self._templates = templates
        self._throttle = throttle
        self._clock = clock

    # -- rendering ------------------------------------------------------------------------------

    def render(self, template: str, **values: Any) -> str:
        data = tools.session_data()
        page = self._templates.get_template(template)
        return page.render(
            signed_in=data is not None,
            csrf=(data or {}).get("csrf", ""),
            section=template.removesuffix(".html"),
            max_reason=MAX_REASON_CHARS,
            **values,
        )

    def login_page(self, error: str = "") -> str:
        return self.render("login.html", error=error)

    # -- sign-in --------------------------------------------------------------------------------

    @cherrypy.expose
    @config(panel__signed_in__on=False, tools__allow__methods=GET)
    def index(self) -> str:
        if tools.session_data() is None:
            return self.login_page()
        # The same typed `Status` the internal API turns into its JSON.
        history = self._abuse_history()
        return self.render(
            "dashboard.html",
            status=self._status.status(),
            abuse_chart=_abuse_chart(history, int(self._clock())) if history is not None else None,
        )

    @cherrypy.expose
    @config(panel__signed_in__on=False, panel__csrf__on=False, tools__allow__methods=POST)
    def login(self, api_token: object = "", **_: object) -> str:
        response = cherrypy.serving.response
        if not tools.same_origin():
            raise cherrypy.HTTPError(403, "The sign-in form was sent from another site.")
        wait = self._throttle.retry_after()
        if wait:
            if self._throttle.first_refusal():
                log.warning("admin panel: too many failed sign-ins; refusing sign-ins for %d s", wait)
            response.status = 429
            response.headers["Retry-After"] = str(wait)
            return self.login_page(f"Too many failed sign-ins. Try again in {wait} seconds.")
        typed = api_token.strip() if isinstance(api_token, str) else ""
        try:
            self._internal.authenticate("Bearer " + typed)
        except Unauthorized:
            self._throttle.failed()
            log.warning("admin panel: sign-in refused (wrong token)")
            response.status = 401
            return self.login_page("Wrong token. Sign in with the internal API token.")
        self._throttle.succeeded()
        tools.sign_in()
        log.info("admin panel: signed in")
        raise cherrypy.HTTPRedirect(tools.COOKIE_PATH, 303)

    @cherrypy.expose
    @config(tools__allow__methods=POST)
    def logout(self, **_: object) -> None:
        tools.sign_out()
        raise cherrypy.HTTPRedirect(tools.COOKIE_PATH, 303)

    # -- tokens ---------------------------------------------------------------------------------

    @cherrypy.expose
    @config(tools__allow__methods=[*GET, *POST])
    def token(self, token: object = "", **_: object) -> str:
        if cherrypy.serving.request.method != "POST":
            return self.render("token.html", record=None, notice=None)
        try:
            record = self._tokens.record(_parse_token(token))
        except AnonTicketError as error:
            return self._token_error(error)
        return self.render("token.html", record=record, notice=None)

    @cherrypy.expose
    @config(tools__allow__methods=POST)
    def revoke(self, token: object = "", reason: object = "", confirm: object = "", **_: object) -> str:
        try:
            parsed = _parse_token(token)
            text = reason.strip() if isinstance(reason, str) else ""
            if not isinstance(reason, str) or len(text) > MAX_REASON_CHARS:
                raise InvalidRequest(f"The reason must be at most {MAX_REASON_CHARS} characters.")
            if confirm != "yes":
                raise InvalidRequest("Tick the confirmation box to revoke the token.")
            record = self._tokens.revoke(parsed, text or None)
        except AnonTicketError as error:
            return self._token_error(error)
        return self.render("token.html", record=record, notice=("ok", "The token is revoked."))

    def _token_error(self, error: AnonTicketError) -> str:
        response = cherrypy.serving.response
        response.status = error.status
        for name, value in error.headers():
            if name == "Retry-After":
                response.headers[name] = value
        return self.render("token.html", record=None, notice=("error", str(error)))

    # -- figures --------------------------------------------------------------------------------

    @cherrypy.expose
    @config(tools__allow__methods=GET)
    def figures(self) -> str:
        days = figures.daily_figures(self._reader(), int(self._clock()))
        return self.render(
            "figures.html",
            days=days,
            status=self._status.status(),
            claims_chart=charts.bar_chart(
                "Claims per day",
                [charts.Point(_day(d), d.claims, f"{d.claims} claims") for d in days],
                integers=True,
            ),
            counted_chart=charts.bar_chart(
                "XMR counted per day",
                [
                    charts.Point(_day(d), d.counted_amount / 10**12, f"{figures.xmr(d.counted_amount)} XMR")
                    for d in days
                ],
            ),
            waiting_chart=charts.bar_chart(
                "Payments waiting for confirmations (end of day)",
                [charts.Point(_day(d), d.waiting_payments, f"{d.waiting_payments} waiting") for d in days],
                integers=True,
            ),
            # docs/PROTOCOL.md §12: day totals, the only trace storage keeps of them.
            issued_chart=charts.bar_chart(
                "Private tokens issued per day",
                [
                    charts.Point(_day(d), d.private_tokens_issued, f"{d.private_tokens_issued} issued")
                    for d in days
                ],
                integers=True,
            ),
            spent_chart=charts.bar_chart(
                "Private tokens spent per day",
                [
                    charts.Point(_day(d), d.private_tokens_spent, f"{d.private_tokens_spent} spent")
                    for d in days
                ],
                integers=True,
            ),
        )

    @cherrypy.expose
    @config(tools__allow__methods=GET)
    def figures_csv(self) -> str:
        """`/admin/figures.csv` (CherryPy's dispatcher maps the dot to this name)."""
        days = figures.daily_figures(self._reader(), int(self._clock()))
        headers = cherrypy.serving.response.headers
        headers["Content-Type"] = "text/csv; charset=utf-8; header=present"
        first, last = days[0].day.isoformat(), days[-1].day.isoformat()
        headers["Content-Disposition"] = f'attachment; filename="anon_ticket-{first}-{last}.csv"'
        return figures.to_csv(days)

    @cherrypy.expose
    @config(tools__allow__methods=GET)
    def funds(self) -> str:
        store = self._reader()
        settings = self._settings
        height = store.monitor_state().wallet_height or 0
        return self.render(
            "funds.html",
            now=int(self._clock()),
            height=height,
            min_amount=settings.min_payment_amount,
            min_confirmations=settings.min_confirmations,
            underpaid=store.underpaid_payments(
                settings.min_confirmations, settings.min_payment_amount, REPORT_LIMIT
            ),
            never=store.never_counted(REPORT_LIMIT),
        )

    # -- the style sheet --------------------------------------------------------------------------

    @cherrypy.expose
    @config(panel__signed_in__on=False, tools__allow__methods=GET)
    def style_css(self) -> str:
        """`/admin/style.css`: the only style the CSP allows (`style-src 'self'`), no inline CSS."""
        cherrypy.serving.response.headers["Content-Type"] = "text/css; charset=utf-8"
        return self._stylesheet

    # -- helpers --------------------------------------------------------------------------------

    def _abuse_history(self) -> tuple[MinuteSample, ...] | None:
        return self._metrics.abuse_history()


def _day(day: figures.DayFigures) -> str:
    return day.day.strftime("%d %b")


def _parse_token(value: object) -> ServiceToken:
    """Lenient about the whitespace a paste brings; otherwise exactly the API's rule."""
    try:
        return ServiceToken.parse(value.strip() if isinstance(value, str) else "")
    except InvalidToken:
        raise InvalidToken("A service token is exactly 64 hex digits.") from None


def _abuse_chart(history: tuple[MinuteSample, ...], now: int) -> charts.BarChart:
    """The last 60 minutes, one bar per minute (suspicious answers), coloured by the worst level."""
    by_minute = {sample.minute: sample for sample in history}
    current = now // 60 * 60
    points = []
    for minute in range(current - 59 * 60, current + 60, 60):
        sample = by_minute.get(minute)
        label = time.strftime("%H:%M", time.gmtime(minute))
        if sample is None:
            points.append(charts.Point(label, 0, "no data", "none"))
        else:
            text = f"{sample.suspicious} suspicious answers, {sample.level.replace('_', ' ')}"
            points.append(charts.Point(label, sample.suspicious, text, sample.level))
    return charts.bar_chart("Suspicious answers per minute", points, label_every=10, integers=True)
