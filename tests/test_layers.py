"""The layers import only downwards, checked on the source by AST (no module is imported here).

A module's layer is its folder under anon_ticket/ (the root modules are placed by name), from the
bottom up:

0. `core`, and `errors`, `config`, the package itself: pure rules and values, plain functions a test
   runs without threads, sockets or a database;
1. `wallet`, `storage`, `process`, `privacypass`: what touches the outside world (monero-wallet-rpc,
   the database, the operating system; Privacy Pass is pure cryptography and wire formats, but its
   issuer key is a file written with `process.durable`);
2. `actors`: the pykka actors that own the daemon's state;
3. `service`: the use cases, combining the store and the actors;
4. `httpd`: our HTTP server, which runs any WSGI application and knows none of ours;
5. `api`, `panel`, `access`, `client`: the applications (the public and internal APIs, the admin
   panel, the access gateway, the buyer's command-line client);
6. `daemon`: wires everything;
7. `commands`, `demo`, `__main__`: the command line, which runs the daemon among other things.

Frameworks belong to a layer too: pykka to the actors', CherryPy's web framework to the applications'.
CherryPy's process bus (`cherrypy.process`) is what the daemon runs under, so the process layer may
use it (the systemd notifier is a bus plugin). An import that points up a layer (say `core` importing
pykka, or an actor importing a service) fails here, and so does a folder that no layer names.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "anon_ticket"
LAYERS: list[tuple[str, ...]] = [
    ("core", "errors", "config", "__init__"),
    ("wallet", "storage", "process", "privacypass"),
    ("actors",),
    ("service",),
    ("httpd",),
    ("api", "panel", "access", "client"),
    ("daemon",),
    ("commands", "demo", "__main__"),
]
# Third-party frameworks that only a layer and those above it may import (longest prefix wins).
FRAMEWORKS = {"pykka": "actors", "cherrypy": "panel", "cherrypy.process": "process", "jinja2": "panel"}
# Data folders inside the package, not Python layers.
NOT_LAYERS = {"sql"}
RANK = {name: index for index, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> int | None:
    """The layer's index for a project module or a framework, None for anything else (stdlib…)."""
    parts = module.split(".")
    if parts[0] == "anon_ticket":
        return RANK["__init__"] if len(parts) == 1 else RANK.get(parts[1])
    framework = max(
        (f for f in FRAMEWORKS if module == f or module.startswith(f + ".")), key=len, default=None
    )
    return None if framework is None else RANK[FRAMEWORKS[framework]]


def imported_modules(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every module `source` imports, anywhere in it (inside functions too), as absolute names."""
    names = []
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    own = layer_of(module)
    assert own is not None, f"{module} is in no layer"
    return sorted(
        {
            name
            for name in imported_modules(source, module, is_package)
            if (target := layer_of(name)) is not None and target > own
        }
    )


def project_modules() -> list[tuple[str, Path, bool]]:
    """Every module of the installed package, actors/ included through its link anon_ticket/actors."""
    found = []
    for folder, dirs, files in os.walk(PACKAGE, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(f for f in files if f.endswith(".py")):
            parts = (Path(folder) / file).relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            found.append((".".join(parts[:-1] if is_package else parts), Path(folder) / file, is_package))
    return found


@pytest.mark.parametrize(("module", "path", "is_package"), project_modules(), ids=str)
def test_no_module_imports_a_layer_above_its_own(module: str, path: Path, is_package: bool) -> None:
    assert upward_imports(path.read_text("utf-8"), module, is_package) == [], f"{module} imports up a layer"


def test_every_folder_and_root_module_has_its_layer() -> None:
    """A new folder (or a loose module at the root) must be placed, or nothing checks it."""
    # A folder left holding only __pycache__ (after a move) is not part of the tree: git has no empty folders.
    folders = {
        p.name
        for p in PACKAGE.iterdir()
        if p.is_dir() and p.name != "__pycache__" and any(c.name != "__pycache__" for c in p.iterdir())
    } - NOT_LAYERS
    roots = {p.stem for p in PACKAGE.glob("*.py")}
    assert folders | roots <= set(RANK), (folders | roots) - set(RANK)
    assert all((PACKAGE / folder / "__init__.py").is_file() for folder in folders)


def test_the_actors_are_checked_as_part_of_the_package() -> None:
    modules = {module for module, _, _ in project_modules()}
    assert {"anon_ticket.actors", "anon_ticket.actors.supervisor"} <= modules
    assert not any(module.startswith("actors") for module in modules)


def test_the_applications_reach_the_actors_only_through_the_services() -> None:
    """The HTTP apps and the panel do the HTTP part; what touches the actors is a use case (service)."""
    for module, path, is_package in project_modules():
        if module.startswith(("anon_ticket.api", "anon_ticket.panel", "anon_ticket.httpd")):
            names = imported_modules(path.read_text("utf-8"), module, is_package)
            actors = [n for n in names if n == "anon_ticket.actors" or n.startswith("anon_ticket.actors.")]
            assert actors == [], f"{module} imports {actors}"


def test_the_buyers_client_stands_alone() -> None:
    """The client runs on a buyer's machine: of ours, only the pure rules, durable files, errors and the
    pure Privacy Pass crypto (`client tokens`)."""
    allowed = (
        "anon_ticket.client",
        "anon_ticket.core",
        "anon_ticket.process.durable",
        "anon_ticket.errors",
        "anon_ticket.privacypass",
    )
    for module, path, is_package in project_modules():
        if module.startswith("anon_ticket.client"):
            ours = [
                n
                for n in imported_modules(path.read_text("utf-8"), module, is_package)
                if n.startswith("anon_ticket")
            ]
            strays = [n for n in ours if n != "anon_ticket.process" and not n.startswith(allowed)]
            assert strays == [], f"{module} imports {strays}"


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        ("anon_ticket.core.domain", "import pykka\n", ["pykka"]),
        (
            "anon_ticket.core.payments",
            "def f():\n    from anon_ticket.actors.locator import wait\n",
            ["anon_ticket.actors.locator"],
        ),
        ("anon_ticket.core.pid_screen", "from anon_ticket.storage import base\n", ["anon_ticket.storage"]),
        ("anon_ticket.storage.sqlite", "from anon_ticket.wallet import rpc\n", []),
        ("anon_ticket.wallet.rpc", "from anon_ticket.actors import ticker\n", ["anon_ticket.actors"]),
        ("anon_ticket.actors.pid_cache", "from anon_ticket.service import redeem\n", ["anon_ticket.service"]),
        ("anon_ticket.service.redeem", "from ..api import wsgi\n", ["anon_ticket.api"]),
        ("anon_ticket.storage.sqlite", "import cherrypy\n", ["cherrypy"]),
        ("anon_ticket.process.systemd", "from cherrypy.process import plugins\n", []),
        ("anon_ticket.process.logs", "import cherrypy\n", ["cherrypy"]),
        (
            "anon_ticket.httpd.listener",
            "from anon_ticket.api.wsgi import WsgiApp\n",
            ["anon_ticket.api.wsgi"],
        ),
        ("anon_ticket.api.public", "from anon_ticket import daemon\n", ["anon_ticket.daemon"]),
        ("anon_ticket.daemon", "from anon_ticket.commands import cli\n", ["anon_ticket.commands"]),
        ("anon_ticket.service.tokens", "from anon_ticket.actors.locator import wait\nimport pykka\n", []),
        ("anon_ticket.errors", "from anon_ticket import config\n", []),
    ],
)
def test_the_check_finds_upward_imports(module: str, source: str, found: list[str]) -> None:
    result = upward_imports(source, module)
    if found:
        assert set(found) <= set(result), result
    else:
        assert result == []
