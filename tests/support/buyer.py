"""The buyer's side of the end-to-end tests: the real client as a child process, and the token a
buyer must end up holding (docs/PROTOCOL.md §2), shared by the regtest, Tor and browser tests."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from anon_ticket.core.domain import PaymentId, TxId

REPO = Path(__file__).resolve().parents[2]


def run_client(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`python -m anon_ticket client ARGS` to its end; its exit code and output, never raising on failure."""
    return subprocess.run(
        [sys.executable, "-m", "anon_ticket", "client", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_client(*args: str) -> subprocess.Popen[str]:
    """The same command left running (e.g. `wait`), its output in pipes; the caller ends it."""
    return subprocess.Popen(
        [sys.executable, "-m", "anon_ticket", "client", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_token(pid: PaymentId, txid: str) -> str:
    """docs/PROTOCOL.md §2 twice: through anon_ticket.core.domain, and spelled out with hashlib."""
    token = pid.service_token(TxId.parse(txid)).hex()
    assert token == hashlib.sha3_256(pid.raw + b"|" + bytes.fromhex(txid)).hexdigest()
    return token
