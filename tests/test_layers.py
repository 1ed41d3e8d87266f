"""The layers import only downwards, checked on the source by AST (no module is imported here).

pure domain < storage < actors < service < http and panel < daemon. The pure modules are plain
functions and values that a test can run without threads; the service layer is where use cases
combine the store and the actors; only the daemon wires everything. An import that points up a
layer (say `domain.py` importing pykka, or an actor importing a service) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "pure domain",
        (
            "anon_ticket.domain",
            "anon_ticket.payments",
            "anon_ticket.ingest",
            "anon_ticket.abuse",
            "anon_ticket.pid_screen",
            "anon_ticket.privacypass",
        ),
    ),
    ("storage", ("anon_ticket.storage",)),
    ("actors", ("actors", "pykka")),
    ("service", ("anon_ticket.service",)),
    ("http and panel", ("anon_ticket.http", "anon_ticket.panel", "cherrypy")),
    ("daemon", ("anon_ticket.daemon",)),
]


def layer_of(module: str) -> int | None:
    """The layer's index, or None for modules outside the layering (errors, config, timefmt…)."""
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return None


def imported_modules(source: str, module: str) -> list[str]:
    """Every module `source` imports, anywhere in it (inside functions too), as absolute names."""
    names = []
    package = module.rsplit(".", 1)[0]
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


def upward_imports(source: str, module: str) -> list[str]:
    own = layer_of(module)
    if own is None:
        return []
    return sorted(
        {
            name
            for name in imported_modules(source, module)
            if (target := layer_of(name)) is not None and target > own
        }
    )


def project_modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("anon_ticket", "actors"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


@pytest.mark.parametrize(("module", "path"), project_modules(), ids=str)
def test_no_module_imports_a_layer_above_its_own(module: str, path: Path) -> None:
    assert upward_imports(path.read_text("utf-8"), module) == [], f"{module} imports up a layer"


def test_every_layer_has_modules_here() -> None:
    """A renamed package would silently leave the rule checking nothing."""
    layers = {layer_of(module) for module, _ in project_modules()}
    assert layers >= set(range(len(LAYERS)))


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        ("anon_ticket.domain", "import pykka\n", ["pykka"]),
        ("anon_ticket.payments", "def f():\n    from actors.locator import wait\n", ["actors.locator"]),
        ("anon_ticket.pid_screen", "from anon_ticket.storage import base\n", ["anon_ticket.storage"]),
        ("actors.pid_cache", "from anon_ticket.service import redeem\n", ["anon_ticket.service"]),
        ("anon_ticket.service.redeem", "from ..http import wsgi\n", ["anon_ticket.http"]),
        ("anon_ticket.storage.sqlite", "import cherrypy\n", ["cherrypy"]),
        ("anon_ticket.http.public", "from anon_ticket import daemon\n", ["anon_ticket.daemon"]),
        ("anon_ticket.service.tokens", "from actors.locator import wait\nimport pykka\n", []),
    ],
)
def test_the_check_finds_upward_imports(module: str, source: str, found: list[str]) -> None:
    result = upward_imports(source, module)
    if found:
        assert set(found) <= set(result), result
    else:
        assert result == []
