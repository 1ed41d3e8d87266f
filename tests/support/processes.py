"""Stopping the suite's child processes (monerod, wallet-rpc, tor) by pid: SIGTERM, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

STOP_GRACE = 5.0


def terminate(popen: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM by pid if the process still runs (no wait)."""
    if popen is not None and popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGTERM)


def reap(popen: subprocess.Popen[bytes] | None, grace: float = STOP_GRACE) -> None:
    """Wait for the exit after `terminate`; SIGKILL by pid after `grace` seconds."""
    if popen is None:
        return
    try:
        popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
        popen.wait()
