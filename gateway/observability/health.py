"""Readiness checks: each room registers what must be true before traffic is sent.

``/readyz`` runs every registered check and answers 200 only when all pass; the detail of
each check is served as JSON on the admin listener only. A check returns ``(ok, detail)``;
an exception counts as not ready (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

READINESS_CHECKS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("readiness_checks")


def add_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Register a readiness check under *name* (e.g. ``keys``, ``policies``, ``upstream:/x``)."""
    app.setdefault(READINESS_CHECKS, {})[name] = check
