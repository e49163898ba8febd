"""The schema of catalogue data: each table's columns, which are required, and which values
a column (or a list) may hold, declared in the catalogue YAML itself.

A misspelt column or a wrong-case value in a catalogue row does not fail loudly at request
time: the row simply never matches, and traffic is refused (or let through) for a reason
nobody sees. So every row and list entry, of the catalogues and of the overlay an
environment applies, is checked at load against its table's schema, with "did you mean".
Allowed values come from the catalogues themselves (``values_from: instanties.instantie_type``),
after the environment's overlay is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.errors import did_you_mean
from gateway.config.yamlsource import JsonPath, Source
from gateway.policy.conditions import DataCatalogue, literal
from gateway.policy.errors import LoadIssue


@dataclass(frozen=True, slots=True)
class Column:
    """One declared column: required in every row (the default), and its allowed values
    (inline ``values:``, or ``values_from:`` a ``table.column`` or a list)."""

    required: bool = True
    values: frozenset[str] | None = None
    values_from: str | None = None
    at: JsonPath = ()
    """Where ``values_from`` is written (to report an unknown reference there)."""


def _column(spec: Any, at: JsonPath) -> Column:
    spec = spec or {}
    values = spec.get("values")
    return Column(
        bool(spec.get("required", True)),
        frozenset(str(literal(v)) for v in values) if values is not None else None,
        spec.get("values_from"),
        (*at, "values_from"),
    )


def table_schema(name: str, spec: Any, rows: list[Any]) -> dict[str, Column]:
    """The columns of catalogue table *name*: declared as a list of names or a mapping of
    name -> ``{required, values, values_from}``; a table written as bare rows has the
    columns of its first row, all required."""
    declared = spec.get("columns") if isinstance(spec, dict) else None
    if isinstance(declared, dict):
        return {c: _column(s, ("tables", name, "columns", c)) for c, s in declared.items()}
    names = declared if declared is not None else (rows[0] if rows else [])
    return {str(c): Column() for c in names}


def list_schema(name: str, spec: Any) -> Column:
    """A list's allowed values: ``{values_from: table.column, values: [...]}`` or none."""
    if isinstance(spec, dict):
        return Column(values_from=spec.get("values_from"), at=("lists", name, "values_from"))
    return Column()


def list_values(spec: Any) -> list[Any]:
    """A catalogue list's entries, whichever form it is written in."""
    return list(spec.get("values", ())) if isinstance(spec, dict) else list(spec)


@dataclass(slots=True)
class _Row:
    source: Source
    path: JsonPath
    table: str
    row: Mapping[str, Any]
    complete: bool
    """Every required column must be there (not so for a row an overlay removes)."""
    values: bool


@dataclass(slots=True)
class _Items:
    source: Source
    path: JsonPath
    name: str
    items: list[Any]


@dataclass(slots=True)
class DataSchema:
    """The schemas of a policy set's tables and lists, and every row and list entry to
    check against them (collected while the catalogues and overlays are read)."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    lists: dict[str, Column] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    """The catalogue each table and list is declared in."""
    rows: list[_Row] = field(default_factory=list)
    items: list[_Items] = field(default_factory=list)

    def row(
        self,
        source: Source,
        path: JsonPath,
        table: str,
        row: Mapping[str, Any],
        *,
        complete: bool = True,
        values: bool = True,
    ) -> None:
        """Remember *row* of *table* (at *path* in *source*) for :meth:`check`."""
        self.rows.append(_Row(source, path, table, row, complete, values))

    def entries(self, source: Source, path: JsonPath, name: str, items: list[Any]) -> None:
        """Remember the entries of list *name* (at ``(*path, n)``) for :meth:`check`."""
        self.items.append(_Items(source, path, name, items))

    def check(self, data: DataCatalogue) -> list[LoadIssue]:
        """Every row and list entry against its schema, allowed values taken from *data*."""
        issues: list[LoadIssue] = []
        allowed = self._references(data, issues)
        for row in self.rows:
            issues.extend(self._row_issues(row, allowed))
        for entry in self.items:
            column = self.lists.get(entry.name, Column())
            ref = allowed.get(column.values_from or "")
            for n, item in enumerate(entry.items):
                value = str(literal(item))
                if ref is not None and value not in ref:
                    issues.append(
                        entry.source.issue(
                            (*entry.path, n),
                            f"{value!r} in list {entry.name!r} is not in {column.values_from}",
                            _allowed_hint(value, ref),
                        )
                    )
        return issues

    def _references(
        self, data: DataCatalogue, issues: list[LoadIssue]
    ) -> dict[str, frozenset[str]]:
        """The allowed values of every ``values_from`` (an unknown reference is reported
        where it is written)."""
        known = {f"{t}.{c}": (t, c) for t, cols in self.tables.items() for c in cols}
        declared = [(name, c) for name, cols in self.tables.items() for c in cols.values()]
        declared += list(self.lists.items())
        allowed: dict[str, frozenset[str]] = {}
        for owner, column in declared:
            ref = column.values_from
            if ref is None or ref in allowed:
                continue
            if ref in known:
                table, name = known[ref]
                allowed[ref] = frozenset(
                    str(r[name]) for r in data.tables.get(table, ()) if name in r
                )
            elif ref in data.lists:
                allowed[ref] = data.lists[ref]
            else:
                options = [*known, *data.lists]
                issues.append(
                    self.sources[owner].issue(
                        column.at,
                        f"values_from {ref!r} names no table column or list",
                        did_you_mean(ref, options)
                        + "write table.column (e.g. "
                        + (next(iter(known), "instanties.instantie_type"))
                        + ") or a list name",
                    )
                )
        return allowed

    def _row_issues(self, row: _Row, allowed: dict[str, frozenset[str]]) -> list[LoadIssue]:
        columns = self.tables.get(row.table, {})
        issues: list[LoadIssue] = []
        unknown = [c for c in row.row if c not in columns]
        for name in unknown:
            issues.append(
                row.source.issue(
                    (*row.path, name),
                    f"unknown column {name!r} in table {row.table!r}",
                    did_you_mean(name, columns) + "columns: " + ", ".join(columns),
                    key=True,
                )
            )
        for name, column in columns.items():
            if name not in row.row:
                # A misspelt column is reported once, as unknown, not also as missing.
                if row.complete and column.required and not did_you_mean(name, unknown):
                    issues.append(
                        row.source.issue(
                            row.path,
                            f"row of table {row.table!r} has no {name!r}",
                            "every row needs: "
                            + ", ".join(c for c, s in columns.items() if s.required),
                        )
                    )
                continue
            value = str(literal(row.row[name]))
            permitted = (
                column.values
                if column.values is not None
                else (allowed.get(column.values_from) if column.values_from else None)
            )
            if row.values and permitted is not None and value not in permitted:
                where = column.values_from or "its values"
                issues.append(
                    row.source.issue(
                        (*row.path, name),
                        f"{value!r} is not an allowed {name!r} of table "
                        f"{row.table!r} (from {where})",
                        _allowed_hint(value, permitted),
                    )
                )
        return issues


def _allowed_hint(value: str, allowed: frozenset[str]) -> str:
    options = sorted(allowed)
    return did_you_mean(value, options) + "allowed: " + (", ".join(options) or "none")
