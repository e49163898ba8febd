"""Errors of loading a policy set: every problem with its file, line and column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """One problem in a policy, catalogue or overlay file (1-based line/col; 0 = no position)."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class PolicyLoadError(Exception):
    """A policy set that cannot be used. ``errors`` lists every problem found, in file order.

    The gateway must not start (and a reload must not swap) on a set that raises this:
    fail closed.
    """

    def __init__(self, issues: Sequence[LoadIssue]) -> None:
        self.issues: tuple[LoadIssue, ...] = tuple(issues)
        self.errors: list[str] = [str(issue) for issue in self.issues]
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in policy set"
        super().__init__(head + ":\n" + "\n".join(self.errors))
