"""The writer of generated Python functions: the facts function per query plan
(gateway/graphql/written.py) and the residual per policy (gateway/policy/fused.py).
Standard library only, so importing it loads nothing else."""

from __future__ import annotations

from typing import Any


class SourceWriter:
    """The source of one generated function: its lines, its constants (one name per object,
    ``_k0``, ``_k1``, ...: nothing of a request or query is ever written into the source)
    and its temporaries."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self._named: dict[int, str] = {}
        self.body: list[str] = []
        self.temps = 0

    def const(self, value: Any) -> str:
        """The name *value* is bound to in the function (one name per object)."""
        name = self._named.get(id(value))
        if name is None:
            name = self._named[id(value)] = f"_k{len(self.consts)}"
            self.consts[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def line(self, indent: str, text: str) -> None:
        self.body.append(indent + text)
