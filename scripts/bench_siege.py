#!/usr/bin/env python3
"""An honest buyer's success rate and latency while hostile connections hold each listener.

docs/PROTOCOL.md §8 sets the target, on 2 cores over loopback: while 1,000 attacking connections
are open on the public listener (200 on the internal one) — idle, dripping a byte at a time, or
stalled mid-body, each reconnecting when closed — an honest client keeps >= 99 % success with p95
latency <= 1 s.

The daemon runs as in production (`python -m anon_ticket`, real database, actors and listeners)
against the test suite's `FakeWallet` (a real JSON-RPC server in this process) seeded with paid PIDs.
The attackers run in a child process (`tests/support/attack.py`), so they do not share this
process's GIL with the honest client. The honest client opens a fresh connection per request, as a
Tor stream would: on the public listener it redeems one paid PID after another (200), on the
internal one it asks `GET /api/v1/status` with the bearer token (200). Each scenario is bounded in
time; a request not answered within 5 s is a failure.

    python scripts/bench_siege.py                          # 10 s per scenario, 1,000 / 200 connections
    python scripts/bench_siege.py --smoke                  # a few seconds, 100 / 40 connections
    python scripts/bench_siege.py --redeem-ratios --before 7ce702d
        # also bench_public.py's redeem ratios, on this tree and on the given git revision

Exit status 0 when every scenario meets the target (in --smoke: the success rate only, since a
loaded CI machine says little about latency).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anon_ticket.core.domain import PaymentId  # noqa: E402 - after the path set-up above
from tests.support.attack import Attack, connect, honest_redeem, read_answer  # noqa: E402
from tests.support.daemon import DaemonProcess, redeem_until  # noqa: E402
from tests.support.fake_wallet import FakeWallet  # noqa: E402

ATTACKS = ("idle", "drip", "stalled")
TARGET_SUCCESS = 0.99
TARGET_P95_SECS = 1.0
REQUEST_TIMEOUT_SECS = 5.0
INTERNAL_TOKEN = "bench-siege-internal-token-0123456789"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


# -- the attackers' process -----------------------------------------------------------------------------


def attack_process(
    target: tuple[str, int], kind: str, connections: int, pipe: multiprocessing.connection.Connection
) -> None:
    """Hold the attack until told to stop, then report what the server did to it."""
    raise_nofile()
    with Attack(target, kind, connections, drip_interval=1.0) as attack:
        with contextlib.suppress(AssertionError):
            attack.wait_open(timeout=30)
        pipe.send(attack.open_now)
        pipe.recv()  # stop
        stats = attack.stats
        pipe.send((stats.opened, stats.closed_by_server, dict(stats.answers), stats.connect_failures))


@contextlib.contextmanager
def attacking(target: tuple[str, int], kind: str, connections: int) -> Iterator[list[object]]:
    """Run an attack in a child process; yields a list that gets [open at start, stats...]."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=attack_process, args=(target, kind, connections, theirs), daemon=True)
    child.start()
    report: list[object] = []
    try:
        if not ours.poll(60):
            raise RuntimeError("the attack process did not start")
        report.append(ours.recv())
        yield report
        ours.send("stop")
        if ours.poll(60):
            report.extend(ours.recv())
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()


# -- the honest client ----------------------------------------------------------------------------------


@dataclass
class Honest:
    latencies: list[float]
    failures: int
    reasons: collections.Counter[str]

    @property
    def total(self) -> int:
        return len(self.latencies) + self.failures

    @property
    def success(self) -> float:
        return len(self.latencies) / self.total if self.total else 0.0

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_honest(request: Callable[[], int], seconds: float) -> Honest:
    """Requests one after another for `seconds`; a failure is anything but a 200 within the timeout."""
    latencies: list[float] = []
    reasons: collections.Counter[str] = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            status = request()
        except (OSError, ValueError) as exc:
            reasons[type(exc).__name__] += 1
            continue
        if status == 200:
            latencies.append(time.monotonic() - started)
        else:
            reasons[str(status)] += 1
    return Honest(latencies, sum(reasons.values()), reasons)


def redeemer(target: tuple[str, int], pids: list[PaymentId]) -> Callable[[], int]:
    turn = iter(range(1 << 62))

    def request() -> int:
        pid = pids[next(turn) % len(pids)]
        return honest_redeem(target, pid.hex(), timeout=REQUEST_TIMEOUT_SECS)[0]

    return request


def status_reader(target: tuple[str, int]) -> Callable[[], int]:
    raw = (
        f"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INTERNAL_TOKEN}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    def request() -> int:
        with connect(target, REQUEST_TIMEOUT_SECS) as sock:
            sock.sendall(raw)
            return read_answer(sock)[0]

    return request


# -- the run ---------------------------------------------------------------------------------------------


def cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def scenarios(options: argparse.Namespace) -> list[tuple[str, str | None, int]]:
    if options.smoke:
        return [
            ("public", None, 0),
            *(("public", kind, options.public) for kind in ATTACKS),
            ("internal", "idle", options.internal),
        ]
    rows: list[tuple[str, str | None, int]] = []
    for listener, count in (("public", options.public), ("internal", options.internal)):
        rows.append((listener, None, 0))
        rows.extend((listener, kind, count) for kind in ATTACKS)
    return rows


def describe(report: list[object]) -> tuple[str, str, str]:
    """(connections open when the honest client started, closed by the server, answers seen)."""
    if len(report) < 5:
        return (str(report[0]) if report else "-"), "-", "-"
    answers = report[3]
    assert isinstance(answers, dict)
    seen = ",".join(f"{status}x{n}" for status, n in sorted(answers.items()))
    return str(report[0]), str(report[2]), seen or "none"


def siege(options: argparse.Namespace) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="bench-siege-"))
    ok = True
    try:
        with FakeWallet(height=1_000) as wallet:
            pids = [PaymentId.generate() for _ in range(options.paid)]
            for pid in pids:
                wallet.add_confirmed(
                    payment_id=pid.chain_payment_id().hex(), amount=1_000_000, confirmations=20
                )
            env = {
                "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
                "MONITOR_START_HEIGHT": "100",
                "MIN_PAYMENT_AMOUNT": "1000000",
                "HTTP_REQUEST_DEADLINE_SECS": str(options.deadline),
                "LOG_LEVEL": "INFO",
                # The honest client replays each PID many times a minute on a quiet machine: the
                # abuse limits (30 a minute per PID) would answer it 429 by design. This measures
                # the HTTP layer, so they are lifted, as bench_public.py does.
                "ABUSE_PID_PER_MINUTE": "1000000",
                "ABUSE_STORAGE_RATE": "1000000",
                "ABUSE_STORAGE_BURST": "1000000",
            }
            with DaemonProcess(workdir, wallet_url=wallet.url, env=env) as daemon:
                daemon.wait_scanning(60)
                redeem_until(daemon, pids[-1], 200, timeout=60)
                public, internal = address(daemon.public_url), address(daemon.internal_url)
                print(
                    f"bench_siege: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
                    f"{options.seconds:g} s per scenario, request deadline {options.deadline:g} s, "
                    f"{options.paid} paid PIDs, descriptor limit here {raise_nofile()}",
                    flush=True,
                )
                header = (
                    f"{'listener':9} {'attack':8} {'held':>5} {'closed':>7} {'answers':18} "
                    f"{'honest':>6} {'success':>8} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
                    f"{'daemon cores':>12} verdict"
                )
                print(header)
                for listener, kind, count in scenarios(options):
                    target = public if listener == "public" else internal
                    request = redeemer(target, pids) if listener == "public" else status_reader(target)
                    log_before = daemon.log_path.stat().st_size
                    cpu_before, wall_before = cpu_secs(daemon.pid), time.monotonic()
                    report: list[object] = []
                    if kind is None:
                        honest = run_honest(request, options.seconds)
                    else:
                        with attacking(target, kind, count) as report:
                            honest = run_honest(request, options.seconds)
                    cores = (cpu_secs(daemon.pid) - cpu_before) / (time.monotonic() - wall_before)
                    grown = daemon.log_path.stat().st_size - log_before
                    good = honest.success >= TARGET_SUCCESS and (
                        options.smoke or honest.percentile(0.95) <= TARGET_P95_SECS
                    )
                    ok = ok and good
                    held, closed, answers = describe(report)
                    worst = max(honest.latencies, default=0.0)
                    print(
                        f"{listener:9} {kind or 'none':8} {held:>5} {closed:>7} {answers:18} "
                        f"{honest.total:>6} {honest.success:>8.2%} {honest.percentile(0.5) * 1e3:>7.1f} "
                        f"{honest.percentile(0.95) * 1e3:>7.1f} {worst * 1e3:>7.1f} "
                        f"{cores:>12.2f} {'PASS' if good else 'FAIL'}"
                        + (f" (log grew {grown} bytes)" if grown else "")
                        + (f" failures: {dict(honest.reasons)}" if honest.reasons else ""),
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ok


def redeem_ratios(options: argparse.Namespace) -> None:
    """bench_public.py's scenario lines, on this tree and (with --before) on an older revision."""
    trees: list[tuple[str, Path]] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-siege-before-"))
    try:
        if options.before:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", options.before], capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
            trees.append((f"before ({options.before})", scratch))
        trees.append(("after (this tree)", REPO))
        for label, tree in trees:
            print(
                f"\n== redeem ratios {label}: bench_public.py --seconds {options.ratio_seconds:g}", flush=True
            )
            done = subprocess.run(
                [
                    sys.executable,
                    str(tree / "scripts" / "bench_public.py"),
                    "--seconds",
                    str(options.ratio_seconds),
                    "--rounds",
                    "1",
                    "--no-screen-bench",
                    "--paid",
                    "20000",
                    "--server-threads",
                    str(options.ratio_threads),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            for line in done.stdout.splitlines():
                if line.lstrip().startswith(("baseline", "a.", "b.", "c.", "d.", "ratio", "target")):
                    print("  " + line.strip())
            if done.returncode not in (0, 1):
                print(f"  bench_public.py failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds: 100 / 40 connections, 1 s each")
    parser.add_argument("--seconds", type=float, default=10.0, help="honest client time per scenario")
    parser.add_argument("--public", type=int, default=1000, help="attacking connections, public listener")
    parser.add_argument("--internal", type=int, default=200, help="attacking connections, internal listener")
    parser.add_argument("--deadline", type=float, default=10.0, help="HTTP_REQUEST_DEADLINE_SECS")
    parser.add_argument("--paid", type=int, default=3000, help="paid PIDs the honest client redeems in turn")
    parser.add_argument("--redeem-ratios", action="store_true", help="also run bench_public.py")
    parser.add_argument("--ratio-seconds", type=float, default=5.0, help="bench_public.py --seconds")
    parser.add_argument("--before", metavar="REV", help="with --redeem-ratios: also measure this revision")
    parser.add_argument(
        "--ratio-threads",
        type=int,
        default=32,
        help="bench_public.py --server-threads, for both servers (default 32, the daemon's PUBLIC_THREADS)",
    )
    options = parser.parse_args()
    if options.smoke:
        options.seconds, options.public, options.internal, options.paid = 1.0, 100, 40, 200
    if not (0 < options.seconds <= 300 and 0 < options.public <= 20000 and 0 < options.internal <= 20000):
        parser.error("--seconds must be in (0, 300], connection counts in 1..20000")
    ok = siege(options)
    if options.redeem_ratios:
        redeem_ratios(options)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
