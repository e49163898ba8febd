"""Numbered SQL migrations per backend, applied once at start under a lock.

``migrations/<backend>/NNN_name.sql`` are applied in order; the ``schema_version`` table
records each one applied. Every backend runs :func:`plan` inside its own lock (SQLite: a
write transaction, PostgreSQL: an advisory lock), so concurrent starts apply each file
once. A store whose schema is newer than the files known here refuses to start
(:class:`~gateway.store.api.SchemaTooNew`): an older gateway must not write a newer schema.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

from gateway.store.api import SchemaTooNew

CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)
_NAME = re.compile(r"(\d{3})_(\w+)\.sql")


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: str) -> list[Migration]:
    """The migrations shipped for *backend*, in version order."""
    found = []
    for entry in (resources.files("gateway.store") / "migrations" / backend).iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            sql = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], sql))
    return sorted(found, key=lambda m: m.version)


def plan(backend: str, current: int | None) -> list[Migration]:
    """The migrations still to apply to a store at schema *current* (None: empty store)."""
    known = migrations(backend)
    latest = known[-1].version if known else 0
    if current is not None and current > latest:
        raise SchemaTooNew(
            f"the store's schema is version {current}, newer than this gateway knows"
            f" ({latest}): a newer nid-gateway migrated it; run that version (or restore a"
            " backup taken before the upgrade)"
        )
    return [m for m in known if m.version > (current or 0)]
