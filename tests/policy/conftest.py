"""The policy tests' fixture: YAML files written under the test's tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.fixtures.policy import Writer


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write a dedented YAML file under tmp_path (sub-folders created)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write
