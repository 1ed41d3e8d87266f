#!/usr/bin/env python3
"""Is the node's PostgreSQL connection pool the bottleneck? Redeem throughput by pool size, as ratios.

One daemon (`python -m anon_ticket serve`, `PUBLIC_THREADS` 32) on a fresh PostgreSQL database, a
fake monero-wallet-rpc (tests/support/fake_wallet.py) holding `--pids` paid payments, and 32 client
connections (keep-alive). Each variant, in this order in one run:

  before     the daemon as it was before the pool (`--baseline-ref`, a git worktree of that commit
             made for the run): a connection per request thread
  pool N     this checkout with DATABASE_POOL_SIZE=N, for each N of `--sizes` (default 2, 6, 16, 40;
             40 is more than the daemon's threads: a pool in which no thread ever waits)

each measured `--rounds` times (default 3; every other round in reverse order), the medians shown,
and for each two scenarios:

  claims     every paid PID redeemed once (200 `claimed`: a read through the pool, then the storage
             writer's transaction on its own connection), `--connections` client threads
  replays    claimed PIDs redeemed again for `--seconds` (200 `already_claimed`: reads only), from
             the multi-process client of bench_public.py

The server's sessions on the run's database are sampled every 50 ms (`pg_stat_activity`); the peak
is shown, and the daemon's CPU time (all its threads, /proc) per request: on a shared machine
throughput swings with everyone else's load, CPU per request much less. Any answer but 200 is
counted and printed. Target: pool 6 within 0.9x of before in throughput on both scenarios (the
default must not be the bottleneck). Exit 1 when missed (never with `--smoke`).

    python scripts/bench_pool.py                       # 8 s per scenario, 3,000 PIDs
    python scripts/bench_pool.py --sizes 1,2,6 --seconds 5
    python scripts/bench_pool.py --smoke               # seconds, no verdict (run by the suite)

PostgreSQL is `ANON_TICKET_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/postgres, a
role that may create databases). With `--smoke` an unreachable server, or a checkout without the
baseline commit (a shallow clone), skips that part with a note, unless CI=true for the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

ADMIN_URL = os.environ.get("ANON_TICKET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# main just before the pool landed (the first parent of the merge of branch 'pgpool', issue 22): a
# connection per request thread, with everything else as in the pool's first version.
BASELINE_REF = "3d9a208^1"
TARGET = 0.9


@dataclass
class Variant:
    name: str
    checkout: Path
    pool_size: int | None  # None: the baseline, which has no pool
    claims_per_sec: float = 0.0
    replays_per_sec: float = 0.0
    claims_p99_ms: float = 0.0
    replays_p99_ms: float = 0.0
    peak_sessions: int = 0
    claims_cpu_ms: float = 0.0  # the daemon's CPU (all its threads) per request
    replays_cpu_ms: float = 0.0
    unexpected: Counter[str] = field(default_factory=Counter)


class SessionSampler:
    """The peak number of sessions on one database, sampled every 50 ms from an admin connection."""

    def __init__(self, database: str) -> None:
        import psycopg  # noqa: PLC0415

        self._conn = psycopg.connect(ADMIN_URL, autocommit=True)
        self._database = database
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self._database,)
            ).fetchone()
            self.peak = max(self.peak, int(row[0]) if row else 0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def admin_execute(statement: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(statement)


def database_url(name: str) -> str:
    parts = urllib.parse.urlsplit(ADMIN_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def baseline_checkout(ref: str, folder: Path) -> Path | None:
    """A git worktree of `ref` in `folder`, or None when this checkout does not have that commit."""
    result = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return folder if result.returncode == 0 else None


def remove_checkout(folder: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
        capture_output=True,
        check=False,
    )


def claim_all(port: int, pids: Sequence[str], connections: int) -> tuple[float, float, Counter[str]]:
    """Every PID once from `connections` threads; (redeems a second, p99 ms, unexpected answers)."""
    latencies: list[float] = []
    unexpected: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(mine: Sequence[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local: list[float] = []
        wrong: Counter[str] = Counter()
        for pid in mine:
            started = time.perf_counter()
            conn.request(
                "POST", "/api/v1/redeem", json.dumps({"pid": pid}), {"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            body = response.read()
            local.append(time.perf_counter() - started)
            if response.status != 200 or b'"claimed"' not in body:
                wrong[f"{response.status} {body[:60]!r}"] += 1
        conn.close()
        with lock:
            latencies.extend(local)
            unexpected.update(wrong)

    threads = [threading.Thread(target=worker, args=(pids[i::connections],)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = 1e3 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return len(pids) / elapsed, p99, unexpected


def measure(variant: Variant, pids_count: int, options: argparse.Namespace, workdir: Path) -> None:
    import bench_public  # noqa: PLC0415 (scripts/ is on sys.path: its seeding and load client)

    from tests.support.fake_wallet import FakeWallet  # noqa: PLC0415

    name = f"anon_ticket_bench_pool_{secrets.token_hex(4)}"
    admin_execute(f"CREATE DATABASE {name}")
    sampler: SessionSampler | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        with FakeWallet(height=bench_public.WALLET_HEIGHT) as wallet:
            pids = bench_public.seed_wallet(wallet, pids_count)
            port, internal = bench_public.free_port(), bench_public.free_port()
            env = bench_public.clean_environ()
            env.update(
                {
                    "PYTHONPATH": str(variant.checkout),
                    "DATABASE_URL": database_url(name),
                    "API_BIND_ADDRESS": f"127.0.0.1:{port}",
                    "INTERNAL_BIND_ADDRESS": f"127.0.0.1:{internal}",
                    "INTERNAL_API_TOKEN": bench_public.INTERNAL_TOKEN,
                    "MONERO_RPC_URL": wallet.url,
                    "MONITOR_START_HEIGHT": str(bench_public.START_HEIGHT),
                    "MONITOR_MIN_CONFIRMATIONS": "1",
                    "MONITOR_POLL_INTERVAL_SECS": "5",
                    "MIN_PAYMENT_AMOUNT": str(bench_public.MIN_AMOUNT),
                    "PUBLIC_THREADS": "32",
                    "LOG_LEVEL": "WARNING",
                    "ABUSE_STORAGE_RATE": "1000000",
                    "ABUSE_STORAGE_BURST": "1000000",
                    "ABUSE_PID_PER_MINUTE": "1000000",
                    # Redeems only: no issuer key (which PostgreSQL would put in the working folder).
                    "PRIVACY_PASS": "off",
                }
            )
            if variant.pool_size is not None:
                env["DATABASE_POOL_SIZE"] = str(variant.pool_size)
            log = workdir / f"{variant.name.replace(' ', '_')}.log"
            with log.open("wb") as out:
                folder = workdir / variant.name.replace(" ", "_")
                folder.mkdir(exist_ok=True)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "anon_ticket", "serve"],
                    cwd=folder,  # whatever the daemon writes beside a PostgreSQL database goes here
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started = proc

            def ready() -> bool:
                return bool(bench_public.internal_status(internal)["payments"]["redeemable"] == pids_count)

            try:
                bench_public.wait_until(f"{variant.name}: payments redeemable", ready, 120, started)
            except RuntimeError:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            sampler = SessionSampler(name)
            cpu = bench_public.cpu_seconds(started.pid)
            variant.claims_per_sec, variant.claims_p99_ms, variant.unexpected = claim_all(
                port, pids, options.connections
            )
            variant.claims_cpu_ms = 1e3 * (bench_public.cpu_seconds(started.pid) - cpu) / len(pids)
            cpu = bench_public.cpu_seconds(started.pid)
            replays = bench_public.run_python(
                "replays", port, "POST", "/api/v1/redeem", pids, options, options.seconds
            )
            cpu = bench_public.cpu_seconds(started.pid) - cpu
            variant.replays_cpu_ms = 1e3 * cpu / replays.requests if replays.requests else 0.0
            variant.replays_per_sec = replays.requests / replays.seconds if replays.seconds else 0.0
            variant.replays_p99_ms = replays.p99_ms
            for status, count in replays.statuses.items():
                if int(status) != 200:
                    variant.unexpected[f"replay {status}"] += count
            if replays.errors:
                variant.unexpected["replay connection errors"] += replays.errors
            variant.peak_sessions = sampler.peak
    finally:
        if sampler is not None:
            sampler.close()
        if proc is not None:
            bench_public.stop(proc, variant.name)
        admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_reachable(smoke: bool) -> bool:
    try:
        admin_execute("SELECT 1")
    except Exception as exc:
        if smoke and os.environ.get("CI") != "true":
            print(f"bench_pool: PostgreSQL skipped ({type(exc).__name__}: {exc})".strip(), flush=True)
            return False
        raise SystemExit(f"bench_pool: PostgreSQL at {ADMIN_URL} is required here: {exc}") from exc
    return True


def median_of(runs: list[Variant]) -> Variant:
    """One variant's rounds as one row: medians of the rates and latencies, the peak of the peaks."""
    first = runs[0]
    unexpected: Counter[str] = Counter()
    for run in runs:
        unexpected.update(run.unexpected)
    return Variant(
        first.name,
        first.checkout,
        first.pool_size,
        claims_per_sec=statistics.median(run.claims_per_sec for run in runs),
        replays_per_sec=statistics.median(run.replays_per_sec for run in runs),
        claims_p99_ms=statistics.median(run.claims_p99_ms for run in runs),
        replays_p99_ms=statistics.median(run.replays_p99_ms for run in runs),
        claims_cpu_ms=statistics.median(run.claims_cpu_ms for run in runs),
        replays_cpu_ms=statistics.median(run.replays_cpu_ms for run in runs),
        peak_sessions=max(run.peak_sessions for run in runs),
        unexpected=unexpected,
    )


def report(variants: list[Variant], smoke: bool) -> int:
    print()
    print(
        "| variant | claims/s | claims p99 ms | claim CPU ms | replays/s | replays p99 ms | replay CPU ms "
        "| peak sessions | not 200 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        wrong = sum(v.unexpected.values())
        print(
            f"| {v.name} | {v.claims_per_sec:,.0f} | {v.claims_p99_ms:.1f} | {v.claims_cpu_ms:.2f} | "
            f"{v.replays_per_sec:,.0f} | {v.replays_p99_ms:.1f} | {v.replays_cpu_ms:.2f} | {v.peak_sessions} "
            f"| {wrong} |"
        )
    for v in variants:
        if v.unexpected:
            print(f"  {v.name}: unexpected answers {dict(v.unexpected.most_common(5))}")
    before = [v for v in variants if v.pool_size is None]
    pooled = [v for v in variants if v.pool_size is not None]
    if not before:
        print("no baseline measured: no ratios")
        return 0
    claims, replays = before[0].claims_per_sec, before[0].replays_per_sec
    missed = []
    print()
    for v in pooled:
        ratio_claims = v.claims_per_sec / claims if claims else 0.0
        ratio_replays = v.replays_per_sec / replays if replays else 0.0
        cpu_claims = v.claims_cpu_ms / before[0].claims_cpu_ms if before[0].claims_cpu_ms else 0.0
        cpu_replays = v.replays_cpu_ms / before[0].replays_cpu_ms if before[0].replays_cpu_ms else 0.0
        print(
            f"{v.name}: throughput claims {ratio_claims:.2f}x, replays {ratio_replays:.2f}x; daemon CPU per "
            f"request claims {cpu_claims:.2f}x, replays {cpu_replays:.2f}x of before (medians)"
        )
        if v.pool_size == 6 and min(ratio_claims, ratio_replays) < TARGET:
            missed.append(v.name)
        if v.unexpected:
            missed.append(f"{v.name} answered other than 200")
    if smoke:
        print("smoke run: no verdict")
        return 0
    verdict = "MISSED: " + ", ".join(missed) if missed else "met"
    print(f"target (pool 6 within {TARGET}x of before, every answer 200): {verdict}")
    return 1 if missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="replay scenario length (default 8)")
    parser.add_argument("--pids", type=int, default=3000, help="paid PIDs per variant (default 3000)")
    parser.add_argument("--connections", type=int, default=32, help="client connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="client processes for replays (default 2)")
    parser.add_argument("--sizes", default="2,6,16,40", help="pool sizes (default 2,6,16,40)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="the commit before the pool")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per variant (default 3)")
    parser.add_argument("--smoke", action="store_true", help="seconds-long pass, no verdict")
    options = parser.parse_args(argv)
    if options.smoke:
        options.seconds, options.pids, options.connections, options.sizes = 1.0, 40, 4, "2"
        options.rounds = 1
    if not postgres_reachable(options.smoke):
        return 0
    sizes = [int(size) for size in options.sizes.split(",")]
    load = os.getloadavg()[0]
    print(
        f"bench_pool: {os.cpu_count()} CPUs, load average {load:.2f}, {options.pids:,} PIDs, "
        f"{options.connections} connections, replays {options.seconds:g} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench_pool_") as temp:
        workdir = Path(temp)
        base = baseline_checkout(options.baseline_ref, workdir / "baseline")
        if base is None:
            print(f"  no commit {options.baseline_ref} in this checkout (shallow?): no baseline", flush=True)
        try:
            specs: list[tuple[str, Path, int | None]] = []
            if base is not None:
                specs.append(("before", base, None))
            specs += [(f"pool {size}", REPO, size) for size in sizes]
            samples: dict[str, list[Variant]] = {name: [] for name, _, _ in specs}
            for round_number in range(options.rounds):
                # Every other round in reverse, so that a machine getting busier or quieter during the
                # run weighs on every variant alike.
                for name, checkout, size in specs if round_number % 2 == 0 else specs[::-1]:
                    variant = Variant(name, checkout, size)
                    measure(variant, options.pids, options, workdir)
                    samples[name].append(variant)
                    print(
                        f"  round {round_number + 1} {name}: claims {variant.claims_per_sec:,.0f}/s, replays "
                        f"{variant.replays_per_sec:,.0f}/s, peak sessions {variant.peak_sessions}",
                        flush=True,
                    )
        finally:
            if base is not None:
                remove_checkout(base)
    variants = [median_of(runs) for runs in samples.values()]
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return report(variants, options.smoke)


if __name__ == "__main__":
    sys.exit(main())
