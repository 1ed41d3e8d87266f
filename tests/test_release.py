"""A release an operator installs and runs without our source tree.

From a clean clone of this repository at HEAD (so it tests what is committed: uncommitted changes are
not in it), build the sdist and, from the sdist, the wheel, as `python -m build` does; install the
wheel into a fresh virtualenv outside the repository; then, from an unrelated directory and without
the checkout on PYTHONPATH, run `migrate`, `serve`, a real claim through the public API, and SIGTERM;
and `check` and the demo (its buyer's page answers, Ctrl-C ends it).
Takes about a minute (a venv and pip installing from its cache), hence the `release` marker.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from anon_ticket.storage import migrations
from tests.support.daemon import REPO_ROOT, DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet
from tests.support.services import require

pytestmark = [pytest.mark.release, pytest.mark.timeout(900)]

SQL_FILES = sorted(
    f"{backend}/{path.name}"
    for backend in ("sqlite", "postgresql")
    for path in (REPO_ROOT / "sql" / backend).glob("*.sql")
)


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path
    python: Path  # the fresh venv's interpreter, with the wheel installed


def _run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    root = tmp_path_factory.mktemp("release")
    require("a git checkout", (REPO_ROOT / ".git").exists(), f"{REPO_ROOT} is not a git repository")
    head = _run(["git", "rev-parse", "HEAD"], REPO_ROOT).stdout.strip()
    clone = root / "clone"
    _run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], root)
    _run(["git", "checkout", "--quiet", "--detach", head], clone)
    dist = root / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(clone)], root)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], root)
    yield Release(sdist, wheel, python)


def test_the_sdist_carries_the_migrations_at_the_top_and_in_the_package(release: Release) -> None:
    with tarfile.open(release.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for sql in SQL_FILES:
        assert f"sql/{sql}" in names
        assert f"anon_ticket/sql/{sql}" in names
    assert "anon_ticket/api/openapi.json" in names
    assert {"conf/anon_ticket.env.example", "conf/anon_ticket.service", "MANIFEST.in"} <= names


def test_the_wheel_carries_every_asset_and_nothing_of_the_checkout(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as archive:
        names = set(archive.namelist())
    assert {f"anon_ticket/sql/{sql}" for sql in SQL_FILES} <= names
    assert "anon_ticket/api/openapi.json" in names
    # One top-level name: the repository's actors/ travels inside the package (through the link
    # anon_ticket/actors, as sql/ does), so nothing generic such as `actors` lands in site-packages.
    tops = {name.split("/", 1)[0] for name in names if not name.startswith("anon_ticket-")}
    assert tops == {"anon_ticket"}
    assert {"anon_ticket/actors/__init__.py", "anon_ticket/actors/supervisor.py"} <= names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    # Every distribution the code imports is declared, directly or as an extra of a declared one
    # (psycopg[pool] brings psycopg-pool).
    declared = declared_distributions(
        line.partition(": ")[2]
        for line in archive_metadata(release.wheel)
        # The daemon's own requirements and its `postgresql` extra; the test tools do not count.
        if line.startswith("Requires-Dist: ") and not re.search(r'extra == "(test|dev)"', line)
    )
    imported = imported_distributions()
    assert {"pykka", "cherrypy", "pycryptodomex"} <= imported  # the scan sees what it must
    # CherryPy depends on cheroot; our own code serves HTTP itself (anon_ticket.httpd) and does not.
    assert "cheroot" not in imported and "cheroot" not in declared
    assert imported <= declared, imported - declared


def declared_distributions(requirements: Iterable[str]) -> set[str]:
    """The distributions `requirements` name, and those their extras (`name[extra]`) bring."""
    found: set[str] = set()
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", requirement)
        assert match, requirement
        name = match.group(1).lower().replace("_", "-")
        found.add(name)
        for extra in filter(None, (e.strip() for e in (match.group(2) or "").split(","))):
            for line in importlib.metadata.requires(name) or []:
                if re.search(rf"extra\s*==\s*[\"']{re.escape(extra)}[\"']", line):
                    found.add(re.split(r"[\s\[;<>=!~(]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return found


def imported_distributions() -> set[str]:
    """The installed distributions that anon_ticket/ and actors/ import (absolute imports, any depth).

    A bare `import actors` would be a name the wheel does not have, so it counts as missing."""
    modules: set[str] = set()
    for package in ("anon_ticket", "actors"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
                elif (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", "") == "import_module"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    modules.add(str(node.args[0].value).split(".")[0])
    owners = importlib.metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - {"anon_ticket", "__future__"}
    missing = {name for name in third_party if name not in owners}
    assert not missing, f"imported but not installed here: {missing}"
    return {owners[name][0].lower().replace("_", "-") for name in third_party}


def archive_metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


def test_the_installed_release_migrates_serves_a_claim_and_stops_from_an_unrelated_directory(
    release: Release, tmp_path: Path, wallet: FakeWallet
) -> None:
    elsewhere = tmp_path / "operator"
    elsewhere.mkdir()
    where = _run([str(release.python), "-c", "import anon_ticket; print(anon_ticket.__file__)"], elsewhere)
    assert Path(where.stdout.strip()).is_relative_to(release.python.parent.parent)  # the venv, not the repo
    daemon = DaemonProcess(elsewhere, wallet_url=wallet.url, python=release.python)
    assert "PYTHONPATH" not in daemon.env
    migrate = _run([str(release.python), "-m", "anon_ticket", "migrate"], elsewhere, env=daemon.env)
    assert migrate.stdout.strip() == str(migrations.available("sqlite")[-1].version)
    assert daemon.database_path.is_file()
    with daemon:
        _, token = claim_token(daemon, wallet)
        record = daemon.internal("GET", f"/api/v1/token/{token}")
        assert record.status_code == 200 and record.json()["status"] == "active"
        assert daemon.stop() == 0
    log = daemon.log_text()
    assert "Traceback" not in log
    assert "stopped with exit code 0" in log


@pytest.mark.regtest
def test_the_installed_release_runs_the_demo_and_check_from_an_unrelated_directory(
    release: Release, tmp_path: Path
) -> None:
    """The demo's chain and `check` are package code: the wheel alone runs them (monero installed)."""
    require("monero", shutil.which("monerod") is not None, "install the Debian package `monero`")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    checked = subprocess.run(
        [str(release.python), "-m", "anon_ticket", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr  # no database, no wallet here
    assert "problem  database:" in checked.stdout and "Traceback" not in checked.stderr
    demo = subprocess.Popen(
        [str(release.python), "-m", "anon_ticket", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        url = None
        for line in demo.stdout:
            found = re.search(r"https?://\S+", line)
            if found:
                url = found.group(0)
                break
        assert url is not None and re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(url, timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
        assert demo.stdout is not None
        demo.stdout.close()
