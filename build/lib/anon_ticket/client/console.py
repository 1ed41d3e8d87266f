"""The three streams a command talks to, passed in rather than taken from `sys`, so tests and
library callers can capture them. Results go to stdout (what scripts read); everything meant for
the human (progress, warnings, errors) goes to stderr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Console:
    stdin: TextIO | None  # None when the process was started with standard input closed
    stdout: TextIO
    stderr: TextIO

    def result(self, line: str) -> None:
        print(line, file=self.stdout, flush=True)

    def note(self, line: str) -> None:
        print(line, file=self.stderr, flush=True)

    def warn(self, line: str) -> None:
        self.note(f"warning: {line}")
