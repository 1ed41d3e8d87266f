#!/usr/bin/env python3
"""Requests per second through nginx with `auth_request` to the access gateway, as a ratio to nginx
serving the same file without it, measured in the same run (docs/PROTOCOL.md §13).

The daemon runs as in production (`python -m anon_ticket`, its own process, a real SQLite database and
actors, the gateway as its third listener), polling the test suite's fake monero-wallet-rpc, which
holds one payment; the script redeems it for a service token. nginx runs with conf/nginx-access.conf,
the snippet docs/OPERATIONS.md gives, in front of a small file that exists twice: `/a.txt` (no
gateway) and `/private/a.txt` (every request asks the gateway).

Scenarios (each `--seconds` long, default 10):
  baseline   GET /a.txt, nginx alone (measured before and after the others; the ratio uses the mean)
  bearer     GET /private/a.txt with `Authorization: Bearer <service token>`: a claim read per request
  session    GET /private/a.txt with the session cookie of a sign-in: a memory look-up, then the claim
  refused    GET /private/a.txt with no credential: 401 and the sign-in page (nginx's error_page)

Load generator: `wrk -t2 -c32` when installed (`apt-get install wrk`), else a threaded Python client
with keep-alive connections; either shares the machine's cores with nginx and the daemon.

    python scripts/bench_access.py                 # 10 s per scenario
    python scripts/bench_access.py --seconds 5 --client python
    python scripts/bench_access.py --smoke         # seconds: every step, figures mean nothing
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.daemon import DaemonProcess, claim_token, free_ports  # noqa: E402
from tests.support.fake_wallet import FakeWallet  # noqa: E402
from tests.support.proxies import SECRET, Nginx  # noqa: E402


@dataclass(frozen=True)
class Run:
    name: str
    requests_per_sec: float
    wrong_answers: int  # requests whose status was not the scenario's


def wrk_run(url: str, seconds: float, headers: dict[str, str], connections: int, threads: int) -> Run:
    wrk = shutil.which("wrk")
    assert wrk is not None
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found is not None, out
    wrong = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Run("", float(found.group(1)), int(wrong.group(1)) if wrong else 0)


def python_run(url: str, seconds: float, headers: dict[str, str], connections: int, expect: int) -> Run:
    parts = urllib.parse.urlsplit(url)
    counts = [0] * connections
    wrong = [0] * connections
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        while time.monotonic() < deadline:
            conn.request("GET", parts.path, headers=headers)
            response = conn.getresponse()
            response.read()
            counts[index] += 1
            wrong[index] += response.status != expect
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Run("", sum(counts) / (time.monotonic() - started), sum(wrong))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="every step for a second: figures mean nothing")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.smoke else args.seconds
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    connections = 4 if args.smoke else args.connections

    def measure(name: str, url: str, headers: dict[str, str], expect: int) -> Run:
        if use_wrk and expect == 200:
            run = wrk_run(url, seconds, headers, connections, 2)
        else:  # wrk counts 401 as a wrong answer: the refused scenario is counted by our own client
            run = python_run(url, seconds, headers, connections if not use_wrk else 8, expect)
        run = Run(name, run.requests_per_sec, run.wrong_answers)
        print(
            f"  {name:<10} {run.requests_per_sec:10.0f} req/s   wrong answers: {run.wrong_answers}",
            flush=True,
        )
        return run

    workdir = Path(tempfile.mkdtemp(prefix="bench_access_"))
    (port,) = free_ports(1)
    env = {"ACCESS_GATEWAY_BIND_ADDRESS": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
    try:
        with (
            FakeWallet(height=200) as wallet,
            DaemonProcess(workdir, wallet_url=wallet.url, env=env) as daemon,
            Nginx(f"127.0.0.1:{port}") as nginx,
        ):
            _, token = claim_token(daemon, wallet)
            signed_in = _sign_in(nginx, token)
            client = f"wrk -t2 -c{connections}" if use_wrk else f"python, {connections} connections"
            print(f"nginx + access gateway, {seconds:.0f} s per scenario, client: {client}")
            first = measure("baseline", nginx.url + "/a.txt", {}, 200)
            bearer = measure(
                "bearer", nginx.url + "/private/a.txt", {"Authorization": f"Bearer {token}"}, 200
            )
            session = measure("session", nginx.url + "/private/a.txt", {"Cookie": signed_in}, 200)
            refused = measure("refused", nginx.url + "/private/a.txt", {}, 401)
            last = measure("baseline", nginx.url + "/a.txt", {}, 200)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    baseline = statistics.mean([first.requests_per_sec, last.requests_per_sec])
    print(f"baseline (mean of both runs): {baseline:.0f} req/s")
    for run in (bearer, session, refused):
        print(f"ratio {run.name:<8} {run.requests_per_sec / baseline:6.3f} of nginx alone")
    wrong = sum(run.wrong_answers for run in (first, bearer, session, refused, last))
    if wrong and not args.smoke:
        print(f"FAIL: {wrong} answers had another status than their scenario's")
        return 1
    return 0


def _sign_in(nginx: Nginx, token: str) -> str:
    """A session cookie from the sign-in form, through nginx."""
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        body = urllib.parse.urlencode({"token": token, "next": "/private/a.txt"})
        conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        assert response.status == 303, response.status
        cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
    finally:
        conn.close()
    check = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        check.request("GET", "/private/a.txt", headers={"Cookie": cookie})
        assert check.getresponse().read() == SECRET
    finally:
        check.close()
    return cookie


if __name__ == "__main__":
    sys.exit(main())
