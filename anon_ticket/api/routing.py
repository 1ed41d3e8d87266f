"""One dispatch for both listeners: a route table of path → method → handler (docs/PROTOCOL.md §4, §5).

404, 405 with `Allow`, HEAD, errors as JSON, counting and bounded logging are done here once, so the
public and internal apps only say which paths they serve. HEAD is answered by the GET handler with
its headers (Content-Length included) and no body — whatever the handler, or a mounted app such as
the admin panel, returned (RFC 9110 §9.3.2; a WSGI server sends whatever body the app gives).

Every answer is counted as `<listener>.<outcome>` (a route's name, what a handler set in
`environ[OUTCOME]`, or the error code), which the abuse metrics actor turns into statsd counters.
A client's mistakes are summarised in the log at most once a minute; a failing component's detail
and an unexpected exception's traceback are logged at most once a minute each. Nothing a client sends
decides how many bytes are logged.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from anon_ticket.api.wsgi import (
    Environ,
    StartResponse,
    WsgiApp,
    respond_error,
)
from anon_ticket.errors import AnonTicketError, MethodNotAllowed, NotFound, Unavailable
from anon_ticket.httpd.incidents import ClientErrorSummary, OncePerInterval

log = logging.getLogger(__name__)

OUTCOME = "anon_ticket.outcome"  # environ key a handler may set to name its outcome for statsd
ROUTING_ARGS = "wsgiorg.routing_args"  # (positional, named) path parameters, the wsgiorg convention
_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    """The methods one path serves; `name` is its outcome in statsd when the handler sets none."""

    name: str
    methods: dict[str, WsgiApp]
    allow: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = list(self.methods)
        if "GET" in names and "HEAD" not in names:
            names.insert(names.index("GET") + 1, "HEAD")
        object.__setattr__(self, "allow", tuple(names))

    def handler(self, method: str) -> WsgiApp:
        found = self.methods.get(method) or (self.methods.get("GET") if method == "HEAD" else None)
        if found is None:
            raise MethodNotAllowed(self.allow)
        return found


class _Recorder:
    """start_response that remembers the status, and may be called again to replace an answer."""

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self.status: int | None = None

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        if self.status is not None and exc_info is None:
            exc_info = sys.exc_info()  # replacing an answer not yet sent: WSGI wants exc_info
        self.status = int(status[:3])
        return self._start_response(status, headers, exc_info)


class Router:
    """A WSGI app dispatching on the path, then the method, to the handlers of a route table."""

    def __init__(
        self,
        listener: str,
        *,
        count: Callable[[str], None] | None = None,
        guard: Callable[[Environ, str], None] | None = None,
        access_log: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        """`guard(environ, path)` runs before routing and may raise (the internal API's bearer check);
        `access_log(method, path, status)` is called after every request (the internal listener's)."""
        self.listener = listener
        self._count = count
        self._guard = guard
        self._access_log = access_log
        self._exact: dict[str, Route] = {}
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        self._mounts: list[tuple[str, Route]] = []
        self._client_errors = ClientErrorSummary(log, listener)
        self._once = OncePerInterval()

    def add(self, path: str, name: str, **methods: WsgiApp) -> None:
        """Serve `path` (which may hold `{param}` segments, matched as one segment) with `methods`."""
        route = Route(name, dict(methods))
        if "{" not in path:
            self._exact[path] = route
            return
        parts, start = [], 0
        for param in _PARAM.finditer(path):
            parts += [re.escape(path[start : param.start()]), f"(?P<{param.group(1)}>[^/]*)"]
            start = param.end()
        parts.append(re.escape(path[start:]))
        self._templates.append((re.compile("".join(parts)), route))

    def mount(self, prefix: str, app: WsgiApp, name: str) -> None:
        """Hand every method under `prefix` (and `prefix` without its slash) to `app` itself."""
        self._mounts.append((prefix, Route(name, {"*": app})))

    # -- the request ------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        answer = _Recorder(start_response)
        try:
            result, outcome = self._dispatch(environ, answer, method, path)
        except AnonTicketError as error:
            outcome = self._failed(error)
            result = respond_error(answer, _client_facing(error))
        except Exception:
            outcome = "internal_error"
            self._defect()
            result = respond_error(answer, Unavailable("internal error", component="internal"))
        if method == "HEAD":
            result = _discard(result)
        if self._count is not None:
            self._count(f"{self.listener}.{outcome}")
        if self._access_log is not None:
            self._access_log(method, path, answer.status)
        return result

    def _dispatch(
        self, environ: Environ, answer: StartResponse, method: str, path: str
    ) -> tuple[Iterable[bytes], str]:
        if self._guard is not None:
            self._guard(environ, path)
        route = self._exact.get(path)
        if route is None:
            route = self._match(environ, path)
        mounted = route.methods.get("*")
        if mounted is not None and method == "HEAD":
            environ = {**environ, "REQUEST_METHOD": "GET"}  # a mounted app answers HEAD as GET too
        handler = mounted or route.handler(method)
        result = handler(environ, answer)
        return result, str(environ.get(OUTCOME) or route.name)

    def _match(self, environ: Environ, path: str) -> Route:
        for prefix, route in self._mounts:
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return route
        for pattern, route in self._templates:
            found = pattern.fullmatch(path)
            if found is not None:
                environ[ROUTING_ARGS] = ((), found.groupdict())
                return route
        raise NotFound("no such path")

    def _failed(self, error: AnonTicketError) -> str:
        """Log what the operator needs about a refused request, boundedly; returns its outcome."""
        if error.status < 500:
            self._client_errors.note(error.code)
            return error.code
        if error.status != 503:
            self._defect()
            return "internal_error"
        kind = getattr(error, "component", "actor")
        held = self._once.admit(f"unavailable:{kind}")
        if held is not None:
            log.warning(
                "%s listener: answering 503 (%s unavailable): %s (%d more held back in the last minute)",
                self.listener,
                kind,
                error,
                held,
            )
        return error.code

    def _defect(self) -> None:
        """An exception nobody meant: a bug. Its traceback is logged, once a minute at most."""
        held = self._once.admit("defect")
        if held is not None:
            log.exception(
                "%s listener: unexpected error (%d more held back in the last minute)", self.listener, held
            )


def _client_facing(error: AnonTicketError) -> AnonTicketError:
    """A 5xx that is not a component's 503 is a defect: the client sees a generic 503 all the same."""
    if error.status >= 500 and error.status != 503:
        return Unavailable("internal error", component="internal")
    return error


def _discard(result: Iterable[bytes]) -> list[bytes]:
    """Drop a body computed for HEAD: run it out (an app may start its answer lazily), then close it."""
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return []
