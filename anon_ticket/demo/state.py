"""Where a running demo tells `demo pay` how to reach it: one JSON file in a private folder.

The folder is `$XDG_RUNTIME_DIR/anon_ticket-demo` (the user's own runtime folder, mode 0700 by the
login manager) or, without one, `/tmp/anon_ticket-demo-$UID`. It is created with mode 0700, and an
existing one is used only if it belongs to this user and nobody else can enter it: in /tmp another
user could have made it first, to feed `demo pay` a wallet of their choosing.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from anon_ticket.errors import DemoError

STATE_FILE = "state.json"
FOLDER_MODE = 0o700


@dataclass(frozen=True, slots=True)
class DemoState:
    """What `demo pay` needs: whose demo (pid), the payer's wallet-rpc, and what to print."""

    pid: int
    folder: str
    payer_url: str
    public_url: str
    block_secs: float


def state_folder(environ: Mapping[str, str]) -> Path:
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "anon_ticket-demo"
    return Path("/tmp") / f"anon_ticket-demo-{os.getuid()}"  # noqa: S108 (checked: ours, mode 0700)


def _private_folder(folder: Path) -> Path:
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=FOLDER_MODE)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DemoError(
            f"{folder} is not a private folder of this user (it must be a directory owned by uid "
            f"{os.getuid()} with mode 0700); remove it and start the demo again"
        )
    return folder


def write(environ: Mapping[str, str], state: DemoState) -> Path:
    """Record the running demo (replacing a file left by one that was killed outright)."""
    path = _private_folder(state_folder(environ)) / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle)
    partial.replace(path)
    return path


def read(environ: Mapping[str, str]) -> DemoState:
    """The running demo's state; `DemoError` saying how to start one when none runs."""
    folder = state_folder(environ)
    path = folder / STATE_FILE
    try:
        if folder.exists():
            _private_folder(folder)  # refuses a folder someone else could have written
        raw = json.loads(path.read_text(encoding="utf-8"))
        state = DemoState(**raw)
    except FileNotFoundError:
        raise DemoError(f"no demo is running (no {path}): start one with scripts/demo") from None
    except (ValueError, TypeError) as exc:
        raise DemoError(f"{path} is not a demo's state file ({exc}); start the demo again") from None
    if not _alive(state.pid):
        raise DemoError(
            f"the demo that wrote {path} (pid {state.pid}) is not running: start one with scripts/demo"
        )
    return state


def remove(environ: Mapping[str, str], pid: int) -> None:
    """Remove the state file if it is this demo's (a newer demo's file is left alone)."""
    path = state_folder(environ) / STATE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") != pid:
            return
    except (OSError, ValueError, AttributeError):
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
