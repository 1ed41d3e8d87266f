"""`python -m anon_ticket` as a shell pipeline sees it: a reader that stops early is not an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_closed_pipe_ends_quietly_without_a_traceback(tmp_path: Path) -> None:
    # The read end is closed before the command starts, so its first line of output hits EPIPE,
    # as with `python -m anon_ticket token show - | head -1` once head has exited.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "anon_ticket", "client", "new"],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr
    assert b"BrokenPipeError" not in done.stderr
