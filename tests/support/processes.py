"""The suite's child processes (monerod, wallet-rpc, tor): started in a session of their own with
their output in a file, stopped by pid (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

STOP_GRACE = 5.0


def spawn(argv: Sequence[str], output: Path) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `output`, in a session of its own: a Ctrl-C in
    the terminal reaches pytest only, which then stops the child by pid."""
    with output.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_all(popens: Sequence[subprocess.Popen[bytes] | None], grace: float = STOP_GRACE) -> None:
    """SIGTERM to every one first, then wait for each: the processes shut down side by side."""
    for popen in popens:
        terminate(popen)
    for popen in popens:
        reap(popen, grace)


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
