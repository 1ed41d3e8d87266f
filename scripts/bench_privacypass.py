#!/usr/bin/env python3
"""The cost of Privacy Pass token type 2 cryptography, as ratios to `cryptography` (OpenSSL) in the same run.

    python scripts/bench_privacypass.py              # ~10 s per measurement
    python scripts/bench_privacypass.py --seconds 3
    python scripts/bench_privacypass.py --smoke      # seconds: every step, no verdict

Measured, one thread, with one RSA-2048 key:

- baseline: one RSA-PSS (SHA-384, salt 48) signature by `cryptography` (OpenSSL: CRT, blinding,
  constant time), and one verification;
- `issuer.blind_sign`: our BlindSign (gmpy2 `powmod_sec` CRT on a re-blinded input, then the check
  with e), the issuer's whole cost per token;
- `origin.verify_token`: key id, challenge digest and `cryptography`'s verify;
- `client.prepare` + `PendingToken.finalize`: the buyer's cost per token.

Target: a blind signature costs at most 4x an OpenSSL signature (the price of constant-time GMP in
place of OpenSSL's hand-tuned code, plus the extra blinding and the check), and a verification at
most 1.5x OpenSSL's verify. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from anon_ticket.privacypass import client, issuer, origin
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import TokenChallenge

SIGN_TARGET = 4.0
VERIFY_TARGET = 1.5
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def per_second(work: Callable[[], object], seconds: float, limit: int) -> tuple[float, int]:
    """Calls of `work` per second over about `seconds` (at most `limit` calls); and the count."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while count < limit and (count == 0 or time.perf_counter() < deadline):
        work()
        count += 1
    return count / (time.perf_counter() - start), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    parser.add_argument("--smoke", action="store_true", help="a pass through every step; no verdict")
    args = parser.parse_args(argv)
    seconds, limit = (0.2, 20) if args.smoke else (args.seconds, 1_000_000)

    key = IssuerKey.generate()
    private = key._private
    challenge = TokenChallenge("anon_ticket", b"", ("service.example.onion",))
    request, pending = client.prepare(key.spki, challenge)
    token = pending.finalize(issuer.blind_sign(key, request))
    message = token.authenticator_input()
    signature = private.sign(message, PSS, hashes.SHA384())

    def prepare_and_finalize() -> None:
        fresh, waiting = client.prepare(key.spki, challenge)
        waiting.finalize(issuer.blind_sign(key, fresh))

    figures = {
        "openssl_sign": per_second(
            lambda: private.sign(secrets.token_bytes(98), PSS, hashes.SHA384()), seconds, limit
        ),
        "blind_sign": per_second(lambda: issuer.blind_sign(key, request), seconds, limit),
        "openssl_verify": per_second(
            lambda: key.public_key.verify(signature, message, PSS, hashes.SHA384()), seconds, limit
        ),
        "verify_token": per_second(lambda: origin.verify_token(key, token, challenge), seconds, limit),
        "client_round": per_second(prepare_and_finalize, seconds, limit),
    }
    for name, (rate, count) in figures.items():
        print(f"{name:16} {rate:10.1f}/s  {1000 / rate:7.3f} ms each  ({count} calls)")
    sign_ratio = figures["openssl_sign"][0] / figures["blind_sign"][0]
    verify_ratio = figures["openssl_verify"][0] / figures["verify_token"][0]
    client_ratio = figures["openssl_sign"][0] / figures["client_round"][0]
    print(f"blind_sign costs {sign_ratio:.2f}x an OpenSSL RSA-PSS signature (target <= {SIGN_TARGET}x)")
    print(
        f"verify_token costs {verify_ratio:.2f}x an OpenSSL RSA-PSS verification (target <= {VERIFY_TARGET}x)"
    )
    print(f"a client's prepare + issuer + finalize costs {client_ratio:.2f}x an OpenSSL signature")
    if args.smoke:
        print("smoke run: figures mean nothing, no verdict")
        return 0
    missed = sign_ratio > SIGN_TARGET or verify_ratio > VERIFY_TARGET
    print("targets missed" if missed else "targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
