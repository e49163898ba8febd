"""Moved to :mod:`gateway.serving` (serve, workers, demo). These two names stay importable
from here for tests outside ``tests/cli/`` that still import them; new code imports from
:mod:`gateway.serving.lifecycle` and :mod:`gateway.serving.demo`."""

from gateway.serving.demo import seed_003_request
from gateway.serving.lifecycle import build_ssl_context

__all__ = ["build_ssl_context", "seed_003_request"]
