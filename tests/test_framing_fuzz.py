"""The fuzz target of the request framing (scripts/fuzz_framing.py) and its seed corpus.

The default run checks the invariants on every seed (fast) and that the checker does catch a reader
whose outcome depends on the split; the slow suite (`-m soak`) fuzzes for two minutes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anon_ticket.httpd import framing
from tests.support.daemon import REPO_ROOT
from tests.support.framing_invariants import check
from tests.support.hostile_http import corpus

SEEDS = REPO_ROOT / "scripts" / "fuzz_framing_corpus"
SOAK_SECS = 120


def seeds() -> list[Path]:
    return sorted(SEEDS.iterdir())


def test_every_seed_keeps_the_invariants() -> None:
    assert len(seeds()) >= 300
    for seed in seeds():
        check(seed.read_bytes())


def test_the_seeds_are_the_hostile_corpus() -> None:
    """`python scripts/fuzz_framing.py --write-seeds` after the corpus changes."""
    expected = {
        f"{name}-{hashlib.sha256(data).hexdigest()[:12]}" for name, data in corpus() if len(data) <= 4096
    }
    assert {seed.name for seed in seeds()} == expected


def test_the_checker_catches_a_limit_that_holds_only_while_the_crlf_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug a fuzzer found before issue 20: the same request accepted whole, refused split."""

    def lenient(buffer: bytearray, limit: int, too_long: object) -> bytes | None:
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > limit:
                raise framing.FramingError(400, "invalid_request", "too long")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        return line

    monkeypatch.setattr(framing, "take_line", lenient)
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;e=" + b"x" * 1100 + b"\r\nx\r\n0\r\n\r\n"
    with pytest.raises(AssertionError, match="differently"):
        check(data)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECS + 120)
def test_minutes_of_fuzzing_find_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    (tmp_path / "new").mkdir()  # libFuzzer writes the inputs it finds here, and wants it to exist
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "fuzz_framing.py"),
            str(tmp_path / "new"),
            str(SEEDS),
            f"-max_total_time={SOAK_SECS}",
            f"-dict={REPO_ROOT / 'scripts' / 'fuzz_framing.dict'}",
            "-max_len=20000",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SOAK_SECS + 90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert not list(tmp_path.glob("crash-*"))
