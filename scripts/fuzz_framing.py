#!/usr/bin/env python3
"""Coverage-guided fuzzing of the HTTP request framing (anon_ticket/httpd/framing.py) with atheris.

Each input is the bytes a client could send on one connection. The target
(`tests/support/framing_invariants.check`) frames them whole, split at points derived from the
input, and one byte at a time, and fails on anything but a clean refusal (`FramingError`): another
exception, a buffer holding more than one unfinished line, a request over the raw-byte bound, or an
outcome that depends on the split. A failure leaves `crash-*` in the working folder; replay it with
`python scripts/fuzz_framing.py crash-...`.

    python scripts/fuzz_framing.py NEW_DIR scripts/fuzz_framing_corpus -max_total_time=600 \\
        -dict=scripts/fuzz_framing.dict          # minutes of fuzzing; new inputs go to NEW_DIR
    python scripts/fuzz_framing.py --smoke       # a few seconds over the seed corpus (the suite)

Any libFuzzer option works after the folders (`-jobs=2`, `-max_len=20000`, `-runs=N`). The seeds in
`scripts/fuzz_framing_corpus/` come from the hostile corpus of the llhttp differential test
(`tests/support/hostile_http.py`); `--write-seeds` writes them again.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import atheris  # noqa: E402 - after the path set-up above

SEEDS = REPO / "scripts" / "fuzz_framing_corpus"
DICTIONARY = REPO / "scripts" / "fuzz_framing.dict"
SEED_MAX_BYTES = 4096

with atheris.instrument_imports(include=["anon_ticket.httpd.framing"]):
    from anon_ticket.httpd import framing  # noqa: F401 - instrumented for coverage
    from tests.support.framing_invariants import check
from tests.support.hostile_http import corpus  # noqa: E402


def one_input(data: bytes) -> None:
    check(data)


def write_seeds() -> int:
    SEEDS.mkdir(exist_ok=True)
    for old in SEEDS.iterdir():
        old.unlink()
    written = 0
    for name, data in corpus():
        if len(data) <= SEED_MAX_BYTES:
            digest = hashlib.sha256(data).hexdigest()[:12]
            (SEEDS / f"{name}-{digest}").write_bytes(data)
            written += 1
    print(f"{written} seeds in {SEEDS}")
    return 0


def main(argv: list[str]) -> int:
    if "--write-seeds" in argv:
        return write_seeds()
    if "--smoke" in argv:
        scratch = tempfile.mkdtemp(prefix="fuzz-framing-")
        argv = [argv[0], scratch, str(SEEDS), "-max_total_time=5", f"-dict={DICTIONARY}", "-max_len=8192"]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
