"""Keep secrets out of core dumps: the first thing every command does (docs/OPERATIONS.md).

A core dump of the daemon would hold PIDs in flight, service tokens and the internal API token.
`RLIMIT_CORE` 0 stops the kernel writing one, and `PR_SET_DUMPABLE` 0 also keeps other processes of
the same user from attaching with ptrace or reading `/proc/PID/mem`. Both are inherited by threads,
so this runs before any thread is started. On a platform without `prctl` (not Linux) the limit is
still set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource
import sys

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def forbid_core_dumps() -> list[str]:
    """Set RLIMIT_CORE to 0 and the process not dumpable; returns what could not be done (if anything)."""
    problems = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        problems.append(f"RLIMIT_CORE: {exc}")
    libc = _libc()
    if libc is None:
        problems.append("prctl(PR_SET_DUMPABLE) is not available on this platform")
    elif libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        problems.append(f"prctl(PR_SET_DUMPABLE, 0) failed with errno {ctypes.get_errno()}")
    return problems


def dumpable() -> bool | None:
    """Whether the kernel would dump this process (None where it cannot be asked)."""
    libc = _libc()
    if libc is None:
        return None
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
