"""Every script in scripts/ still runs: each one's `--smoke` mode, a seconds-long pass through all of
its steps, so that a benchmark cannot silently rot (one once stopped at its own self-check for months).

A new script is picked up here by itself, and must offer `--smoke`. The figures a smoke run prints mean
nothing (tiny sizes, a loaded machine); only that it completes is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import REPO_ROOT

# Tools that are not benchmarks, each exercised by its own test: vendor_js.py --check re-vendors the
# buyer's page scripts from the lockfile and compares (tests/test_buyer_page_js.py).
TOOLS = {"vendor_js.py"}
SCRIPTS = sorted(path for path in (REPO_ROOT / "scripts").glob("*.py") if path.name not in TOOLS)


def test_there_are_scripts_to_smoke() -> None:
    assert {path.name for path in SCRIPTS} >= {"storage_size.py", "bench_public.py", "soak_crash.py"}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_the_script_runs_in_smoke_mode(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, f"{script.name} --smoke:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
