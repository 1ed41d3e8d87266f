"""The documents in docs/ stay true to the code: vectors, section citations, variables, self-containment.

docs/PROTOCOL.md is what client implementers in other languages rely on, and code comments cite its
sections by number; these checks fail when the two drift apart, instead of a reader finding out.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from anon_ticket.core.domain import PaymentId, TxId

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
_TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".sql",
    ".cfg",
    ".toml",
    ".json",
    ".txt",
    ".service",
    ".example",
    ".snippet",
    ".js",
}


@functools.cache
def _repo_text_files() -> tuple[Path, ...]:
    files = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder, name)
            if path.suffix in _TEXT_SUFFIXES or path.parent.name == "scripts":
                files.append(path)
    return tuple(files)


def _our_files() -> list[Path]:
    """Files we write (not vendored JavaScript or data), where citations of docs/ are looked for."""
    return [path for path in _repo_text_files() if path.suffix not in {".js", ".json", ".txt"}]


def _protocol() -> str:
    return (DOCS / "PROTOCOL.md").read_text(encoding="utf-8")


def _section(text: str, number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## \d+\. |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"docs/PROTOCOL.md has no section {number}"
    return match.group(0)


def test_protocol_has_sections_1_to_13_in_order() -> None:
    numbers = [int(n) for n in re.findall(r"^## (\d+)\. ", _protocol(), re.MULTILINE)]
    assert numbers == list(range(1, 14))


def test_every_cited_protocol_section_exists() -> None:
    headings = set(re.findall(r"^## (\d+)\. ", _protocol(), re.MULTILINE))
    cited: dict[str, set[str]] = {}
    for path in _our_files():
        for number in re.findall(
            r"docs/PROTOCOL\.md §(\d+)", path.read_text(encoding="utf-8", errors="replace")
        ):
            cited.setdefault(number, set()).add(str(path.relative_to(REPO)))
    assert cited, "nothing cites docs/PROTOCOL.md: the search is broken"
    missing = {n: sorted(files) for n, files in cited.items() if n not in headings}
    assert not missing


def test_every_cited_document_exists() -> None:
    cited = set()
    for path in _our_files():
        cited.update(re.findall(r"docs/([A-Z]+\.md)", path.read_text(encoding="utf-8", errors="replace")))
    assert {"PROTOCOL.md", "OPERATIONS.md", "ARCHITECTURE.md"} <= cited
    assert sorted(name for name in cited if not (DOCS / name).is_file()) == []


def test_no_file_refers_outside_the_repository() -> None:
    # Built from pieces so that this file does not match itself. The spec file's name, not the bare
    # word, which vendored licences use in their warranty disclaimers.
    forbidden = ["../" + "shared", "CON" + "TRACT.md", "STACK" + "-FACTS", "/work/" + "shared"]
    offenders = [
        f"{path.relative_to(REPO)}: {word}"
        for path in _repo_text_files()
        for word in forbidden
        if word in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []


def test_python_snippet_in_section_2_runs() -> None:
    """The stand-alone hashlib snippet for implementers asserts the vectors itself."""
    snippet = re.search(r"```python\n(.*?)```", _section(_protocol(), 2), re.DOTALL)
    assert snippet is not None
    exec(compile(snippet.group(1), "docs/PROTOCOL.md §2", "exec"), {})  # the document's own example


def test_vector_table_in_section_2_matches_the_code() -> None:
    section = _section(_protocol(), 2)
    one = PaymentId(bytes(31) + b"\x01")
    a3 = PaymentId(b"\xa3" * 32)
    token_one = one.service_token(TxId(bytes(range(32))))
    token_a3 = a3.service_token(TxId(b"\x5c" * 32))
    expected = [
        one.chain_payment_id().hex(),
        a3.chain_payment_id().hex(),
        token_one.hex(),
        token_a3.hex(),
        token_a3.digest().raw.hex(),
    ]
    for value in expected:
        assert f"`{value}`" in section


def _config_variables() -> set[str]:
    source = (REPO / "anon_ticket" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r'env\.get\(\s*"([A-Z0-9_]+)"', source))
    assert len(names) > 20, "the pattern no longer finds config.py's variables"
    return names


@pytest.mark.parametrize("name", sorted(_config_variables()))
def test_every_configuration_variable_is_documented(name: str) -> None:
    assert f"`{name}`" in _section(_protocol(), 6)
    example = (REPO / "conf" / "anon_ticket.env.example").read_text(encoding="utf-8")
    assert re.search(rf"^#?{name}=", example, re.MULTILINE), f"{name} is not in conf/anon_ticket.env.example"


def _readme_configuration_variables() -> set[str]:
    """The variables the README's configuration table names (first column of each row)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Configuration\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([A-Z0-9_]+)`", cell)}


def test_the_readme_configuration_table_is_the_configuration() -> None:
    """Every variable config.py reads has its row in the README, and the README names no other."""
    readme, config = _readme_configuration_variables(), _config_variables()
    assert config - readme == set(), (
        f"missing from README.md's configuration table: {sorted(config - readme)}"
    )
    assert readme - config == set(), f"in README.md but not read by config.py: {sorted(readme - config)}"


def test_every_statsd_metric_sent_is_documented() -> None:
    operations = (DOCS / "OPERATIONS.md").read_text(encoding="utf-8")
    sent = set()
    for path in [*(REPO / "actors").glob("*.py"), *(REPO / "anon_ticket").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        sent.update(re.findall(r'Event\(\s*"([a-z_.]+)"', source))
        sent.update(re.findall(r'pipe\.gauge\(\s*f?"([a-z_.{}]+)"', source))
    # Gauges start with `{node}`: empty on SQLite, `node.<NODE_NAME>.` on PostgreSQL (documented once).
    sent = {re.sub(r"\{[a-z_]+\}", "<name>", re.sub(r"^\{node\}", "", name)) for name in sent}
    assert {"wallet.poll_ok", "abuse_level", "actors.<name>.running", "poller.leader"} <= sent, sent
    assert "`node.<NODE_NAME>.<gauge>`" in operations
    undocumented = sorted(name for name in sent if f"`{name}`" not in operations and name not in operations)
    assert undocumented == []
