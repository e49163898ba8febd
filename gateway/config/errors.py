"""The one error a configuration mistake raises: where it is, what is wrong, what was expected."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A configuration mistake, rendered as ``file:line:col: message (hint)``.

    ``line`` and ``col`` are 1-based; they are 0 when the mistake has no position
    (e.g. a missing file).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        line: int = 0,
        col: int = 0,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file)
        self.line = line
        self.col = col
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text
