"""Five minutes of coverage-guided fuzzing of the Privacy Pass decoders (scripts/fuzz_privacypass.py):
a value or `PrivateTokenMalformed` for every input, and exact round trips. The slow suite only; the
default run fuzzes a few thousand inputs through the script's `--smoke` (tests/test_scripts_smoke.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_privacypass.py"


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_five_minutes_of_fuzzing_find_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "300", "--corpus", str(tmp_path / "corpus")],
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
