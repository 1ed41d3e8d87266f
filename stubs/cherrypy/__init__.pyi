# Local stub: CherryPy ships no type information. Only what anon_ticket uses: the process bus, and
# for the admin panel an Application served by WSGI, `expose`, tools, sessions and HTTP errors.
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from . import lib as lib

_F = TypeVar("_F", bound=Callable[..., Any])

@overload
def expose(func: _F) -> _F: ...
@overload
def expose(func: None = ..., alias: str | list[str] | None = ...) -> Callable[[_F], _F]: ...
@overload
def expose(func: list[str]) -> Callable[[_F], _F]: ...

class Application:
    root: Any
    config: dict[str, Any]
    log: Any
    toolboxes: dict[str, Any]
    relative_urls: bool | str
    def __init__(self, root: object, script_name: str = ..., config: dict[str, Any] | None = ...) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]: ...

class HTTPError(Exception):
    status: int
    code: int
    def __init__(self, status: int = ..., message: str | None = ...) -> None: ...
    def set_response(self) -> None: ...

class HTTPRedirect(Exception):
    def __init__(self, urls: str | list[str], status: int | None = ...) -> None: ...
    def set_response(self) -> None: ...

class Tool:
    def __init__(
        self, point: str, callable: Callable[..., Any], name: str | None = ..., priority: int = ...
    ) -> None: ...

class _Serving:
    request: Any
    response: Any
    session: Any

serving: _Serving
request: Any
response: Any
session: Any
tools: Any
