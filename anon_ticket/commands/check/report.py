"""What a check found: a verdict, what it is about, what was seen and, for a problem, the fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    OK = "ok"
    WARNING = "warning"  # holds, but deserves a look; does not fail the check
    PROBLEM = "problem"  # the deployment is wrong: the command exits 1
    SKIPPED = "skipped"  # could not be checked here (says why)


@dataclass(frozen=True, slots=True)
class Finding:
    verdict: Verdict
    subject: str
    seen: str
    fix: str = ""

    def line(self) -> str:
        """One line: `problem  wallet view-only: it can spend … — fix: …`."""
        text = f"{self.verdict.value:<8} {self.subject}: {self.seen}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return text


def ok(subject: str, seen: str) -> Finding:
    return Finding(Verdict.OK, subject, seen)


def warning(subject: str, seen: str, fix: str = "") -> Finding:
    return Finding(Verdict.WARNING, subject, seen, fix)


def problem(subject: str, seen: str, fix: str) -> Finding:
    return Finding(Verdict.PROBLEM, subject, seen, fix)


def skipped(subject: str, why: str) -> Finding:
    return Finding(Verdict.SKIPPED, subject, why)
