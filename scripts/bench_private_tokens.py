#!/usr/bin/env python3
"""Privacy Pass issuances and spends per second on the real daemon, as ratios to redeems in the same run.

    python scripts/bench_private_tokens.py              # ~1 minute on 2 cores
    python scripts/bench_private_tokens.py --tokens 4000 --threads 16
    python scripts/bench_private_tokens.py --smoke      # seconds: every step, figures meaningless

One daemon (SQLite, a fake wallet on a real socket) serves three loads in turn, each from `--threads`
client threads on keep-alive connections:

- redeems: `POST /api/v1/redeem` of claimed PIDs (answered `already_claimed`: a read), the baseline;
- issuances: `POST /api/v1/private-token/issue`, every request a new blinded message, so each one is
  a blind signature (checked before it is sent) and a durable count, group-committed by the writer;
- spends: `POST /api/v1/private-token/spend` of the finalised tokens, each a signature check and a
  durable insert.

The buyer's own work (building requests, finalising tokens) is done before and between the timed
loads, so only the daemon is measured; it shares the 2 cores with the client threads, as a real
deployment shares them with tor. No target is enforced: the figures are for the closing note and for
sizing (docs/OPERATIONS.md §16).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anon_ticket.core.domain import PaymentId
from anon_ticket.privacypass import client
from anon_ticket.privacypass.wire import TokenChallenge, b64url_decode, b64url_encode
from tests.support.daemon import DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet

INTERNAL_TOKEN = "bench-private-tokens-0123456789"


def timed(
    threads: int, jobs: list[Callable[[http.client.HTTPConnection], int]], port: int
) -> tuple[float, int]:
    """Run `jobs` from `threads` threads on keep-alive connections; (per second, failures)."""
    lock = threading.Lock()
    queue = list(reversed(jobs))
    failures = [0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not queue:
                    break
                job = queue.pop()
            if job(conn) != 200:
                with lock:
                    failures[0] += 1
        conn.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return len(jobs) / (time.perf_counter() - start), failures[0]


def post(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers=headers)
    answer = conn.getresponse()
    return answer.status, answer.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=2000, help="issuances (and spends) to time")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--smoke", action="store_true", help="a pass through every step; no figures")
    args = parser.parse_args(argv)
    count = 20 if args.smoke else args.tokens
    buyers = 4

    with tempfile.TemporaryDirectory() as folder, FakeWallet(height=200) as wallet:
        env = {
            "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
            "PRIVACY_PASS_TOKENS_PER_PAYMENT": str(10 * count),
            "PRIVACY_PASS_ISSUE_PER_MINUTE": str(100 * count),
            "ABUSE_PID_PER_MINUTE": str(100 * count),
            "ABUSE_STORAGE_RATE": "1000000",
            "ABUSE_STORAGE_BURST": "1000000",
            "LOG_LEVEL": "WARNING",
        }
        with DaemonProcess(Path(folder), wallet_url=wallet.url, env=env) as daemon:
            claims = [claim_token(daemon, wallet) for _ in range(buyers)]
            public = int(daemon.public_url.rpartition(":")[2])
            internal = int(daemon.internal_url.rpartition(":")[2])
            info = daemon.public("GET", "/api/v1/info").json()["private_token"]
            spki = b64url_decode(info["token_key"])
            challenge = TokenChallenge.decode(b64url_decode(info["challenge"]))

            def redeem_job(pid: PaymentId) -> Callable[[http.client.HTTPConnection], int]:
                body = json.dumps({"pid": pid.hex()}).encode()
                return lambda conn: post(conn, "/api/v1/redeem", body, {"Content-Type": "application/json"})[
                    0
                ]

            redeems, redeem_failures = timed(
                args.threads, [redeem_job(claims[i % buyers][0]) for i in range(count)], public
            )

            prepared = [(claims[i % buyers][1], *client.prepare(spki, challenge)) for i in range(count)]
            signatures: list[bytes | None] = [None] * count

            def issue_job(index: int) -> Callable[[http.client.HTTPConnection], int]:
                service_token, request, _ = prepared[index]
                headers = {
                    "Content-Type": "application/private-token-request",
                    "Authorization": f"Bearer {service_token}",
                }

                def job(conn: http.client.HTTPConnection) -> int:
                    status, body = post(conn, "/api/v1/private-token/issue", request.encode(), headers)
                    signatures[index] = body if status == 200 else None
                    return status

                return job

            issuances, issue_failures = timed(args.threads, [issue_job(i) for i in range(count)], public)

            tokens = [
                b64url_encode(pending.finalize(signature).encode())
                for (_, _, pending), signature in zip(prepared, signatures, strict=True)
                if signature is not None
            ]
            auth = {"Content-Type": "application/json", "Authorization": f"Bearer {INTERNAL_TOKEN}"}

            def spend_job(token: str) -> Callable[[http.client.HTTPConnection], int]:
                body = json.dumps({"token": token}).encode()
                return lambda conn: post(conn, "/api/v1/private-token/spend", body, auth)[0]

            spends, spend_failures = timed(args.threads, [spend_job(token) for token in tokens], internal)

    failures = redeem_failures + issue_failures + spend_failures
    print(f"threads {args.threads}, {count} requests of each kind, SQLite, one daemon on this machine")
    print(f"redeems (already claimed)  {redeems:8.0f}/s   1.00x")
    print(f"issuances (new message)    {issuances:8.0f}/s   {issuances / redeems:.2f}x of redeems")
    print(f"spends (first use)         {spends:8.0f}/s   {spends / redeems:.2f}x of redeems")
    print(f"failed requests            {failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
