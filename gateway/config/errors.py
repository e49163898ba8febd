"""Mistakes in the files the gateway reads (configuration, policies), each where it is.

One located problem type (:class:`Located`), one exception carrying all the problems of a
file set (:class:`LocatedError`), and the one "did you mean" helper. Standard library only:
the policy engine imports this, and must stay cheap to import.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Located:
    """One problem at ``file:line:col`` (1-based; 0 when it has no position, e.g. a missing
    file), rendered as ``file:line:col: message (hint)``."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class LocatedError(Exception):
    """Every problem found in a set of files (``issues``, in file order), reported at once."""

    what = "input"

    def __init__(self, issues: Sequence[Located]) -> None:
        self.issues: tuple[Located, ...] = tuple(issues)
        self.errors: list[str] = [str(issue) for issue in self.issues]
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0]
        return f"{len(self.errors)} errors in {self.what}:\n" + "\n".join(self.errors)


class ConfigError(LocatedError):
    """A configuration that cannot be used; ``file``/``line``/``col``/``message``/``hint``
    are those of the first problem, ``issues`` holds them all."""

    what = "configuration"

    def __init__(
        self,
        message: str = "",
        *,
        file: str | Path = "",
        line: int = 0,
        col: int = 0,
        hint: str | None = None,
        issues: Sequence[Located] = (),
    ) -> None:
        super().__init__(issues or [Located(str(file), line, col, message, hint)])
        first = self.issues[0]
        self.file, self.line, self.col = first.file, first.line, first.col
        self.message, self.hint = first.message, first.hint


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the option closest to a mistyped *word*, else ``""``
    (the one suggestion helper of configuration and policy files)."""
    options = list(options)
    # Case first: ``kvk`` is too short for difflib to see ``KVK`` in it.
    near = [o for o in options if o.casefold() == word.casefold()]
    near = near or difflib.get_close_matches(word, options, n=1)
    return f"did you mean {near[0]!r}? " if near else ""
