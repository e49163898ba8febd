"""The parts of ``gateway/`` import one another only along the arrows of docs/architecture.md.

The table in docs/architecture.md is the one place the arrows are written; these tests read it
and compare it with the imports found by parsing every module of ``gateway/`` (module level,
inside functions and under ``TYPE_CHECKING`` alike).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GATEWAY = REPO / "gateway"
ARCHITECTURE = REPO / "docs" / "architecture.md"
COMMAND_LAYER = "cli"


def allowed_arrows() -> dict[str, list[str]]:
    """Part -> the parts it may import, in the table's order (leaves first)."""
    text = ARCHITECTURE.read_text()
    table = text.split("<!-- arrows: begin -->")[1].split("<!-- arrows: end -->")[0]
    arrows: dict[str, list[str]] = {}
    for line in table.strip().splitlines()[2:]:
        part, _what, may_import = (cell.strip() for cell in line.strip().strip("|").split("|"))
        arrows[part.strip("`")] = re.findall(r"`([^`]+)`", may_import)
    return arrows


def part_of(module: str) -> str:
    """The part a module of ``gateway`` belongs to (a part's ``cli.py`` is the command layer)."""
    names = module.split(".")
    if names[-1] == "cli":
        return COMMAND_LAYER
    return names[1] if len(names) > 1 else "gateway"


def module_name(path: Path) -> str:
    names = path.relative_to(REPO).with_suffix("").parts
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Every ``gateway`` module *path* imports, with the line, wherever the import stands."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                # `from gateway.policy import cli` imports the module gateway.policy.cli.
                submodule = f"{base}.{alias.name}"
                yield (submodule if is_module(submodule) else base), node.lineno


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> where, for every import between two parts."""
    graph: dict[tuple[str, str], list[str]] = {}
    for path in sorted(GATEWAY.rglob("*.py")):
        source = part_of(module_name(path))
        for target, line in imported_modules(path):
            if target != "gateway" and not target.startswith("gateway."):
                continue
            arrow = (source, part_of(target))
            where = f"{path.relative_to(REPO)}:{line}"
            if arrow[0] != arrow[1] and where not in graph.setdefault(arrow, [where]):
                graph[arrow].append(where)
    return graph


def parts_in_gateway() -> set[str]:
    return {part_of(module_name(path)) for path in GATEWAY.rglob("*.py")}


def find_cycle(arrows: set[tuple[str, str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that ends where it starts, or None."""
    following: dict[str, list[str]] = {}
    for source, target in sorted(arrows):
        following.setdefault(source, []).append(target)
    done: set[str] = set()

    def visit(part: str, path: list[str]) -> list[str] | None:
        if part in path:
            return [*path[path.index(part) :], part]
        if part in done:
            return None
        for target in following.get(part, []):
            cycle = visit(target, [*path, part])
            if cycle:
                return cycle
        done.add(part)
        return None

    for part in sorted(following):
        cycle = visit(part, [])
        if cycle:
            return cycle
    return None


def test_every_part_of_gateway_has_a_row_in_the_architecture_table() -> None:
    arrows = allowed_arrows()
    assert parts_in_gateway() - set(arrows) == set()
    assert {target for targets in arrows.values() for target in targets} - set(arrows) == set()


def test_the_table_lists_every_part_below_the_parts_it_may_import() -> None:
    # Leaves first, every arrow pointing up: the allowed graph itself has no cycle.
    order = list(allowed_arrows())
    upward = {
        (part, target)
        for part, targets in allowed_arrows().items()
        for target in targets
        if order.index(target) >= order.index(part)
    }
    assert upward == set()


def test_imports_between_parts_follow_the_arrows_of_the_architecture() -> None:
    arrows = allowed_arrows()
    forbidden = {
        f"{source} -> {target}": where
        for (source, target), where in import_graph().items()
        if target not in arrows.get(source, [])
    }
    assert forbidden == {}


def test_imports_between_parts_have_no_cycle() -> None:
    assert find_cycle(set(import_graph())) is None


def test_config_and_observability_are_leaves() -> None:
    arrows = set(import_graph())
    assert {target for source, target in arrows if source == "config"} <= {"refusals"}
    assert {target for source, target in arrows if source == "observability"} <= {"config"}


def test_package_inits_define_nothing() -> None:
    # A docstring, re-exports from gateway and __all__ (the root also holds __version__).
    definitions = []
    for path in sorted(GATEWAY.rglob("__init__.py")):
        body = ast.parse(path.read_text()).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        for node in body:
            re_export = isinstance(node, ast.ImportFrom) and (
                node.module == "__future__" or (node.module or "").startswith("gateway.")
            )
            dunder = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in {"__all__", "__version__"} for t in node.targets
            )
            if not (re_export or dunder):
                definitions.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert definitions == []


def test_importing_the_policy_engine_loads_neither_aiohttp_authlib_nor_the_config_loader() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import gateway.policy.engine, sys; print(sorted(sys.modules))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = ast.literal_eval(loaded)
    assert "gateway.policy.engine" in modules
    heavy = [
        m
        for m in modules
        if m.split(".")[0] in {"aiohttp", "authlib", "pydantic"} or m == "gateway.config.loader"
    ]
    assert heavy == []
