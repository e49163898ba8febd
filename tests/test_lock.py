"""requirements/constraints.txt (the lock) is current: every dependency that pyproject.toml
names, with every extra and the build requirements, has an exact pin there that satisfies
its specifier. Editing pyproject.toml without ``make lock`` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)$")


def pins(text: str) -> dict[str, Version]:
    """``name==version`` lines of a pip-compile output (comments skipped)."""
    found: dict[str, Version] = {}
    for line in text.splitlines():
        if (m := PIN.match(line.strip())) is not None:
            found[canonicalize_name(m[1])] = Version(m[2])
    return found


def declared(pyproject: dict[str, Any]) -> list[Requirement]:
    """Every requirement of *pyproject*: dependencies, each extra, build-system.requires."""
    project = pyproject["project"]
    specs = [*project["dependencies"], *pyproject["build-system"]["requires"]]
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return [Requirement(spec) for spec in specs]


def stale(requirements: list[Requirement], locked: dict[str, Version]) -> list[str]:
    """The requirements the lock does not satisfy, each with what the lock has."""
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req}: not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req}: the lock pins {version}")
    return problems


def test_every_dependency_of_pyproject_has_a_fitting_pin_in_the_lock() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    problems = stale(declared(pyproject), pins(LOCK.read_text(encoding="utf-8")))
    assert not problems, (
        f"{LOCK.relative_to(REPO)} is out of date with pyproject.toml; run `make lock`:\n  "
        + "\n  ".join(problems)
    )


def test_a_dependency_the_lock_does_not_satisfy_is_named() -> None:
    locked = pins("aiohttp==3.14.5\n    # via nid-gateway\npyyaml==6.0.3\n")
    requirements = [Requirement("aiohttp>=3.15"), Requirement("PyYAML>=6"), Requirement("x>=1")]
    assert stale(requirements, locked) == [
        "aiohttp>=3.15: the lock pins 3.14.5",
        "x>=1: not in the lock",
    ]


def test_every_install_uses_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "LOCK   := requirements/constraints.txt" in makefile
    assert "pip install --quiet -c $(LOCK) -e '.[test,bench,otel]'" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")  # through make
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "PIP_CONSTRAINT=/src/requirements/constraints.txt" in dockerfile
