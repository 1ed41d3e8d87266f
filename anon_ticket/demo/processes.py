"""Child processes (monerod, monero-wallet-rpc, the demo's daemon, the tests' tor): started in a
session of their own with their output in a file, stopped by pid (SIGTERM, then SIGKILL).

Used by the demo and by the test suite's harnesses alike (tests/support/processes.py re-exports it).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STOP_GRACE = 5.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` asking Linux to SIGTERM the child when its parent dies (`prctl`).

    libc is loaded here, in the parent, so the forked child only makes the one call. The signal is
    tied to the *thread* that forks, so only the demo's main thread spawns with it.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return preexec


def spawn(
    argv: Sequence[str],
    output: Path,
    *,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `output`, in a session of its own: a Ctrl-C in
    the terminal reaches the parent only, which then stops the child by pid. With `die_with_parent`
    the child also gets SIGTERM if the parent is killed outright (nothing left running by a kill -9)."""
    with output.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(  # noqa: S603 (argv is built by this package, never from input)
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else dict(env),
            preexec_fn=_die_with_parent() if die_with_parent else None,  # noqa: PLW1509 (see above)
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


def in_parallel(calls: Sequence[Callable[[], object]]) -> None:
    """Run the calls in threads (slow set-up steps side by side); re-raise the first error once all
    have finished, so no thread is left working on what the caller is about to tear down."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class ProcessGroup:
    """Children started together and stopped together, by pid, with the directories they wrote.

    `stop()` is idempotent and registered to run at interpreter exit from construction on (so a
    subclass calls `__init__` last, once `children()` can answer), and a harness that fails half-way
    through booting, or a run cut short, leaves no process behind.
    """

    def __init__(self, what: str, *workdirs: Path) -> None:
        self._what = what
        self._workdirs = workdirs
        self._lock = threading.Lock()
        self._stopped = False
        atexit.register(self.stop)

    def children(self) -> list[subprocess.Popen[bytes] | None]:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every child: SIGTERM to all, then SIGKILL to any still running after a grace period."""
        with self._lock:
            stop_all(self.children())
            self._stopped = True
        atexit.unregister(self.stop)

    def remove_workdir(self) -> None:
        """Delete the work directories (data, logs). Only after `stop()`."""
        if not self._stopped:
            raise RuntimeError(f"stop the {self._what} before removing its files")
        for workdir in self._workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
