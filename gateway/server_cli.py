"""Moved to :mod:`gateway.serving` (serve, workers, demo). These two names stay importable
from here for tests outside ``tests/cli/`` that still import them; new code imports from
:mod:`gateway.serving.lifecycle` and :mod:`gateway.serving.demo`."""

from pathlib import Path
from typing import Any

from gateway.serving.demo import DEMO_DIR, load_demo_request
from gateway.serving.lifecycle import build_ssl_context

__all__ = ["build_ssl_context", "seed_003_request"]


def seed_003_request() -> dict[str, Any]:
    """The seed 003 example request as the demo sends it (``requests/allowed.json``)."""
    source_tree = Path(__file__).resolve().parents[1]
    return load_demo_request(source_tree / DEMO_DIR / "requests" / "allowed.json")
