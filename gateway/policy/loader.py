"""Loading a policy set: files -> schema check -> data + overlay -> compiled policies.

Every problem in every file is collected (not just the first) and raised together as a
:class:`PolicyLoadError`, each as ``file:line:col: message (hint)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.config.errors import did_you_mean
from gateway.config.yamlsource import JsonPath, Source
from gateway.policy.audit_fields import AuditBlock, compile_audit
from gateway.policy.conditions import (
    CompileError,
    Cond,
    ConditionCompiler,
    DataCatalogue,
    literal,
)
from gateway.policy.engine import (
    DEFAULT_DENY_CODE,
    DEFAULT_DENY_STATUS,
    TEMPLATE_FIELDS,
    CompiledCheck,
    CompiledPolicy,
    MessageTemplate,
    PolicySet,
    Refusal,
)
from gateway.policy.errors import LoadIssue, PolicyLoadError
from gateway.policy.lookups import compile_lookups
from gateway.policy.source import read_source, schema_issues
from gateway.policy.tables import DataSchema, list_schema, list_values, table_schema

TEST_SUFFIX = ".test.yaml"
KINDS = ("policy", "catalogue", "overlay")


def policy_files(paths: Sequence[Path]) -> tuple[list[Path], list[LoadIssue]]:
    """Expand *paths*: a directory means every ``*.yaml`` below it except ``*.test.yaml``."""
    files: list[Path] = []
    issues: list[LoadIssue] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (".yaml", ".yml")
                and not p.name.endswith((TEST_SUFFIX, ".test.yml"))
            )
            if not found:
                issues.append(
                    LoadIssue(
                        str(path), 0, 0, "no policy files in directory", "expected *.yaml files"
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            issues.append(
                LoadIssue(
                    str(path),
                    0,
                    0,
                    "no such file or directory",
                    "check the policy path in the configuration",
                )
            )
    unique: list[Path] = []
    seen: set[Path] = set()
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique, issues


def content_version(files: Sequence[Path], environment: str | None) -> str:
    """``sha256:<hex>`` over every file's name and bytes, plus the environment."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda p: str(p.resolve())):
        digest.update(file.name.encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    digest.update(b"env:" + (environment or "").encode())
    return "sha256:" + digest.hexdigest()[:16]


@dataclass(slots=True)
class _Loaded:
    sources: dict[str, list[Source]]
    issues: list[LoadIssue]
    data_broken: bool = False
    """A file that may hold data (unreadable, or a catalogue or overlay with schema errors)
    was left out: checking the policies against the rest would only report knock-ons."""


def _read_all(files: Sequence[Path]) -> _Loaded:
    loaded = _Loaded({kind: [] for kind in KINDS}, [])
    for file in files:
        source, issues = read_source(file)
        if issues:
            loaded.issues.extend(issues)
            loaded.data_broken = True
            continue
        data = source.data
        kinds = [k for k in KINDS if isinstance(data, dict) and k in data]
        if len(kinds) != 1:
            loaded.issues.append(
                source.issue(
                    (),
                    "not a policy, catalogue or overlay file"
                    if not kinds
                    else f"a file is one kind only, found {' and '.join(kinds)}",
                    "start the file with policy:, catalogue: or overlay:",
                )
            )
            continue
        problems = schema_issues(source, kinds[0])
        if problems:
            loaded.issues.extend(problems)
            loaded.data_broken |= kinds[0] != "policy"
            continue
        loaded.sources[kinds[0]].append(source)
    return loaded


def _normalise_row(row: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: literal(v) for k, v in row.items()})


def _base_data(
    catalogues: list[Source], schema: DataSchema, issues: list[LoadIssue]
) -> DataCatalogue:
    data = DataCatalogue({}, {})
    where: dict[str, str] = {}
    for source in catalogues:
        for section in ("lists", "tables"):
            for name, values in (source.data.get(section) or {}).items():
                if name in data.lists or name in data.tables:
                    issues.append(
                        source.issue(
                            (section, name),
                            f"duplicate data name {name!r}",
                            f"already defined at {where[name]}",
                            key=True,
                        )
                    )
                    continue
                where[name] = source.location((section, name))
                schema.sources[name] = source
                if section == "lists":
                    items = list_values(values)
                    schema.lists[name] = list_schema(name, values)
                    at: JsonPath = (
                        (section, name, "values") if isinstance(values, dict) else (section, name)
                    )
                    schema.entries(source, at, name, items)
                    data.lists[name] = frozenset(str(literal(v)) for v in items)
                    continue
                rows = values["rows"] if isinstance(values, dict) else values
                columns = schema.tables[name] = table_schema(name, values, rows)
                prefix: JsonPath = (
                    (section, name, "rows") if isinstance(values, dict) else (section, name)
                )
                for n, row in enumerate(rows):
                    schema.row(source, (*prefix, n), name, row)
                data.columns[name] = tuple(columns)
                data.tables[name] = tuple(_normalise_row(r) for r in rows)
    return data


def _change(values: frozenset[str], change: Mapping[str, Any]) -> frozenset[str]:
    current = set(values)
    if "replace" in change:
        current = {str(literal(v)) for v in change["replace"]}
    current |= {str(literal(v)) for v in change.get("add", ())}
    current -= {str(literal(v)) for v in change.get("remove", ())}
    return frozenset(current)


def _apply_overlays(
    base: DataCatalogue,
    overlays: list[Source],
    environment: str | None,
    schema: DataSchema,
    issues: list[LoadIssue],
) -> DataCatalogue:
    """The data for *environment*. Every overlay's rows are checked against their table's
    columns; the values of the overlay that applies are checked too (by :class:`DataSchema`)."""
    lists = dict(base.lists)
    tables = dict(base.tables)
    for source in overlays:
        applies = source.data["overlay"] == environment
        for name, change in (source.data.get("lists") or {}).items():
            if name not in base.lists:
                issues.append(
                    source.issue(
                        ("lists", name),
                        f"overlay changes unknown list {name!r}",
                        did_you_mean(name, base.lists)
                        + "known lists: "
                        + ", ".join(sorted(base.lists)),
                        key=True,
                    )
                )
                continue
            if not applies:
                continue
            for verb in ("replace", "add"):
                schema.entries(source, ("lists", name, verb), name, list(change.get(verb, ())))
            lists[name] = _change(lists[name], change)
        for name, change in (source.data.get("tables") or {}).items():
            if name not in base.tables:
                issues.append(
                    source.issue(
                        ("tables", name),
                        f"overlay changes unknown table {name!r}",
                        did_you_mean(name, base.tables)
                        + "known tables: "
                        + ", ".join(sorted(base.tables)),
                        key=True,
                    )
                )
                continue
            for verb in ("replace", "add", "remove"):
                for n, row in enumerate(change.get(verb, ())):
                    schema.row(
                        source,
                        ("tables", name, verb, n),
                        name,
                        row,
                        complete=verb != "remove",
                        values=applies and verb != "remove",
                    )
            if not applies:
                continue
            rows = list(tables[name])
            if "replace" in change:
                rows = [_normalise_row(r) for r in change["replace"]]
            rows.extend(_normalise_row(r) for r in change.get("add", ()))
            for gone in change.get("remove", ()):
                want = _normalise_row(gone)
                rows = [r for r in rows if any(r.get(k) != v for k, v in want.items())]
            tables[name] = tuple(rows)
    return DataCatalogue(lists, tables, dict(base.columns))


def _refusal(
    source: Source,
    path: JsonPath,
    spec: Mapping[str, Any],
    defaults: Mapping[str, Any],
    issues: list[LoadIssue],
) -> Refusal:
    reason = spec.get("reason")
    if reason is None:
        # No reason: the set-wide default refusal (403 FORBIDDEN Policy Access Denied).
        return Refusal(
            int(spec.get("status", DEFAULT_DENY_STATUS)),
            str(spec.get("code", DEFAULT_DENY_CODE)),
            None,
            None,
        )
    template_text = spec.get("message", defaults.get("message"))
    template = None
    if template_text is not None:
        at = (*path, "message") if "message" in spec else ("refusal", "message")
        try:
            unknown = MessageTemplate.unknown_fields(template_text)
        except ValueError as exc:
            issues.append(
                source.issue(
                    at, f"bad message template: {exc}", "write {{ and }} for literal braces"
                )
            )
            unknown = []
        for name in unknown:
            issues.append(
                source.issue(
                    at,
                    f"unknown placeholder {{{name}}} in message template",
                    "placeholders: " + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS),
                )
            )
        template = MessageTemplate(template_text)
    return Refusal(
        int(spec.get("status", defaults.get("status", 400))),
        str(spec.get("code", defaults.get("code", "GRAPHQL_VALIDATION_FAILED"))),
        str(reason),
        template,
    )


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _selectors(applies_to: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The index keys a policy claims: ``(operation type, root field)`` for GraphQL,
    ``(METHOD, path template)`` for REST (methods are upper case, operation types lower
    case: the two kinds never share a key)."""
    if "rest" in applies_to:
        rest = applies_to["rest"]
        return tuple((m, p) for m in _listed(rest["method"]) for p in _listed(rest["path"]))
    graphql = applies_to["graphql"]
    return tuple((t, f) for t in _listed(graphql["operation"]) for f in _listed(graphql["field"]))


def _compile_policy(
    source: Source, data: DataCatalogue, issues: list[LoadIssue]
) -> CompiledPolicy | None:
    doc = source.data
    policy_id = str(doc["policy"])
    compiler = ConditionCompiler(source, data)
    selectors = _selectors(doc["applies_to"])
    defaults = doc.get("refusal") or {}
    checks: list[CompiledCheck] = []
    ids: dict[str, JsonPath] = {}
    before = len(issues)
    for n, spec in enumerate(doc.get("checks") or ()):
        path: JsonPath = ("checks", n)
        check_id = str(spec["id"])
        if check_id in ids:
            issues.append(
                source.issue(
                    (*path, "id"),
                    f"duplicate check id {check_id!r}",
                    f"first used at {source.location(ids[check_id])}",
                )
            )
            continue
        ids[check_id] = (*path, "id")
        when: Cond | None = None
        try:
            if "when" in spec:
                when = compiler.compile(spec["when"], (*path, "when"))
            require = compiler.compile(spec["require"], (*path, "require"))
        except CompileError as exc:
            issues.append(exc.issue)
            continue
        if when is not None and when.never:
            issues.append(
                source.issue(
                    (*path, "when"),
                    f"check {check_id!r} is unreachable: its when: can never match",
                    "check the lists and values it uses",
                )
            )
        if require.never:
            issues.append(
                source.issue(
                    (*path, "require"),
                    f"check {check_id!r} can never pass: every request would be refused",
                    "check the lists and values it uses",
                )
            )
        refusal = _refusal(source, path, spec, defaults, issues)
        checks.append(
            CompiledCheck(f"{policy_id}/{check_id}", source.location(path), when, require, refusal)
        )
    audit: AuditBlock | None = None
    if "audit" in doc:
        audit = compile_audit(compiler, doc["audit"], ("audit",), issues)
    lookups = compile_lookups(source, compiler, policy_id, issues)
    if len(issues) != before:
        return None
    return CompiledPolicy(
        policy_id, source.location(("policy",)), selectors, tuple(checks), audit, lookups
    )


def _compile(loaded: _Loaded, data: DataCatalogue, issues: list[LoadIssue]) -> list[CompiledPolicy]:
    policies: list[CompiledPolicy] = []
    ids: dict[str, str] = {}
    claimed: dict[tuple[str, str], str] = {}
    lookups: dict[str, str] = {}
    for source in loaded.sources["policy"]:
        policy_id = str(source.data["policy"])
        if policy_id in ids:
            issues.append(
                source.issue(
                    ("policy",),
                    f"duplicate policy id {policy_id!r}",
                    f"first used at {ids[policy_id]}",
                )
            )
            continue
        ids[policy_id] = source.location(("policy",))
        policy = _compile_policy(source, data, issues)
        if policy is None:
            continue
        for n, lookup in enumerate(policy.lookups):
            if lookup.name in lookups:
                issues.append(
                    source.issue(
                        ("lookups", n, "name"),
                        f"duplicate lookup name {lookup.name!r}",
                        f"first used at {lookups[lookup.name]}: facts are extra.<name>",
                    )
                )
            lookups.setdefault(lookup.name, lookup.location)
        for selector in policy.selectors:
            if selector in claimed:
                issues.append(
                    source.issue(
                        ("applies_to",),
                        f"policy {policy_id!r} is unreachable for "
                        f"{selector[0]} {selector[1]}: {claimed[selector]} already applies to it",
                        "one policy per operation: merge the checks into that policy",
                        key=True,
                    )
                )
            else:
                claimed[selector] = f"{policy_id!r} ({policy.location})"
        policies.append(policy)
    return policies


def load_policy_set(paths: Sequence[Path], *, environment: str | None = None) -> PolicySet:
    """Load, check and compile the policy set at *paths* for *environment*.

    A path is a file or a directory (every ``*.yaml`` below it except ``*.test.yaml``;
    catalogue and overlay files are recognised by their first key). Raises
    :class:`PolicyLoadError` listing every problem found.
    """
    files, issues = policy_files([Path(p) for p in paths])
    loaded = _read_all(files)
    issues.extend(loaded.issues)
    if loaded.data_broken:
        raise PolicyLoadError(sorted(issues, key=lambda i: (i.file, i.line, i.col)))
    schema = DataSchema()
    base = _base_data(loaded.sources["catalogue"], schema, issues)
    environments = tuple(sorted({str(s.data["overlay"]) for s in loaded.sources["overlay"]}))
    if environment is not None and environment not in environments:
        issues.append(
            LoadIssue(
                ", ".join(str(p) for p in paths),
                0,
                0,
                f"no overlay for environment {environment!r}",
                "environments in this set: " + (", ".join(environments) or "none"),
            )
        )
    data = _apply_overlays(base, loaded.sources["overlay"], environment, schema, issues)
    issues.extend(schema.check(data))
    policies = _compile(loaded, data, issues)
    if not loaded.sources["policy"] and not issues:
        issues.append(
            LoadIssue(
                ", ".join(str(p) for p in paths),
                0,
                0,
                "the set has no policy",
                "everything would be denied",
            )
        )
    if issues:
        raise PolicyLoadError(sorted(issues, key=lambda i: (i.file, i.line, i.col)))
    return PolicySet(
        version=content_version(files, environment),
        environment=environment,
        files=tuple(files),
        policies=tuple(policies),
        data=data,
        environments=environments,
    )


def _environments(paths: Sequence[Path]) -> list[str]:
    """The environments the overlays among *paths* name (read even when the set is broken)."""
    files, _ = policy_files(paths)
    names = {str(source.data["overlay"]) for source in _read_all(files).sources["overlay"]}
    return sorted(names)


def check_policy_set(paths: Sequence[Path]) -> tuple[PolicySet, list[str]]:
    """Load *paths* for no environment and for every environment an overlay names.

    Returns the base set and the names of the environments checked; raises
    PolicyLoadError with every problem of every environment: one found in the base load
    once, one that only an environment brings prefixed with ``[environment]``.
    """
    environments = _environments(paths)
    found: dict[str | None, list[LoadIssue]] = {}
    sets: dict[str | None, PolicySet] = {}
    for env in (None, *environments):
        try:
            sets[env] = load_policy_set(paths, environment=env)
        except PolicyLoadError as exc:
            found[env] = list(exc.issues)
    problems = list(found.get(None, []))
    for env in environments:
        problems.extend(
            LoadIssue(i.file, i.line, i.col, f"[{env}] {i.message}", i.hint)
            for i in found.get(env, [])
            if i not in problems
        )
    if problems:
        raise PolicyLoadError(problems)
    return sets[None], environments
