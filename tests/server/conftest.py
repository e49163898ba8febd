"""The serve tests' fixture: ``nid-gateway serve`` processes, killed at the end of the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.serve import ServeFactory, StartServe


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[StartServe]:
    """Start ``serve`` processes for one test (see :meth:`ServeFactory.start`)."""
    factory = ServeFactory(tmp_path)
    yield factory.start
    factory.close()
