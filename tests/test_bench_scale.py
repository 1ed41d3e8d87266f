"""scripts/bench_scale.py without a PostgreSQL server: skipped (said so) in a developer's smoke run,
an error under CI=true, where the smoke test must not quietly measure SQLite alone. The full smoke run
is in tests/test_scripts_smoke.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import REPO_ROOT, free_ports

SCRIPT = REPO_ROOT / "scripts" / "bench_scale.py"


def run_without_postgres(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    nobody = f"postgresql://postgres@127.0.0.1:{free_ports(1)[0]}/postgres"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path), "ANON_TICKET_TEST_POSTGRES": nobody}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--backend", "postgresql"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(180)
def test_an_unreachable_postgresql_is_skipped_in_a_smoke_run(tmp_path: Path) -> None:
    result = run_without_postgres(tmp_path, ci=False)
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL skipped" in result.stdout
    assert "postgresql:" not in result.stdout  # no table: nothing was measured


@pytest.mark.timeout(180)
def test_an_unreachable_postgresql_fails_the_smoke_run_under_ci(tmp_path: Path) -> None:
    result = run_without_postgres(tmp_path, ci=True)
    assert result.returncode == 1
    assert "is required here" in result.stderr
    assert "Traceback" not in result.stderr
