#!/usr/bin/env python3
"""Crash soak: SIGKILL the daemon at random moments for a while, then prove nothing was lost.

The longer form of tests/test_crash_consistency.py (same scenario, same checks): a real
`python -m anon_ticket` against a fake monero-wallet-rpc, buyers redeeming from several threads,
payments arriving and being mined every few tens of milliseconds, and SIGKILL at seeded random moments,
restarting the daemon each time. At the end every token any buyer received must be valid with the right
amount, one per payment, every wallet transfer stored exactly once, and the database intact.

    scripts/soak_crash.py                          # 60 s or 40 kills, whichever comes first
    scripts/soak_crash.py --duration 600 --kills 300 --seed 7 --buyers 8
    scripts/soak_crash.py --keep                   # keep the work folder (database, daemon.log)
    scripts/soak_crash.py --smoke                  # seconds: 3 kills, the same final checks

Exit 0 when every check passed, 1 with the failed check otherwise. Needs the test extra (`monero`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_crash_consistency import CrashRun

MAX_DURATION_SECS = 6 * 3600
MAX_KILLS = 10_000
MAX_BUYERS = 64


def _bounded(low: float, high: float, kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=_bounded(1, MAX_DURATION_SECS, float),
        default=60.0,
        help="stop killing after this many seconds (default 60, at most 6 h)",
    )
    parser.add_argument(
        "--kills",
        type=_bounded(1, MAX_KILLS, int),
        default=40,
        help="stop after this many SIGKILLs (default 40)",
    )
    parser.add_argument("--seed", type=int, default=int(time.time()), help="replay a schedule (default: now)")
    parser.add_argument(
        "--buyers", type=_bounded(1, MAX_BUYERS, int), default=4, help="concurrent redeem clients (default 4)"
    )
    parser.add_argument(
        "--min-up",
        type=_bounded(0.05, 60, float),
        default=0.1,
        help="shortest life of the daemon before a kill, seconds (default 0.1)",
    )
    parser.add_argument(
        "--max-up",
        type=_bounded(0.05, 600, float),
        default=2.0,
        help="longest life of the daemon before a kill, seconds (default 2)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--smoke", action="store_true", help="a seconds-long run: 3 kills within 3 s, 2 buyers, same checks"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.kills, args.buyers = 3.0, 3, 2
    if args.max_up < args.min_up:
        parser.error("--max-up must be at least --min-up")

    workdir = Path(tempfile.mkdtemp(prefix="anon_ticket-soak-"))
    print(f"seed {args.seed}, work folder {workdir}", flush=True)
    run = CrashRun(
        workdir,
        seed=args.seed,
        kills=args.kills,
        up_secs=(args.min_up, args.max_up),
        buyers=args.buyers,
        max_secs=args.duration,
        log=lambda line: print(line, flush=True),
    )
    try:
        summary = run.run()
    except AssertionError as exc:
        print(f"FAILED (seed {args.seed}, kept {workdir}): {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
