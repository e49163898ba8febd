"""PostgreSQL backend (asyncpg pool): several gateway replicas share one store.

Every statement commits on its own, so one replica's write is visible to the others at
once. Claims use ``FOR UPDATE SKIP LOCKED``: concurrent workers never take the same
delivery. Migrations run under an advisory lock, so replicas starting together migrate once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from gateway.store.api import StoreUnavailable
from gateway.store.migrations import CREATE_VERSION_TABLE, plan
from gateway.store.sql import SqlStore

MIGRATION_LOCK = 0x6E69_6431  # pg_advisory_lock key: "nid1"
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class PostgresStore(SqlStore):
    backend = "postgresql"
    SKIP_LOCKED = "FOR UPDATE SKIP LOCKED"
    APPEND_ATTEMPT = "attempts || jsonb_build_array($2::jsonb)"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10, timeout: float = 5.0) -> PostgresStore:
        """Connect a pool to *dsn* and bring the schema up to date."""
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=pool_size, timeout=timeout, command_timeout=timeout
            )
        except (*_ERRORS, ValueError) as exc:
            raise StoreUnavailable(f"PostgreSQL store: cannot connect: {exc}") from exc
        store = cls(pool)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def _migrate(self) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
                try:
                    await conn.execute(CREATE_VERSION_TABLE)
                    current = await conn.fetchval("SELECT max(version) FROM schema_version")
                    for migration in plan(self.backend, current):
                        async with conn.transaction():
                            await conn.execute(migration.sql)
                            await conn.execute(
                                "INSERT INTO schema_version VALUES ($1, $2, $3)",
                                migration.version,
                                migration.name,
                                time.time(),
                            )
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        except _ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL store: migration failed: {exc}") from exc

    async def _rows(self, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]:
        try:
            rows: Sequence[Mapping[str, Any]] = await self._pool.fetch(sql, *args)
        except _ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL store: {exc}") from exc
        return rows

    async def ping(self) -> dict[str, Any]:
        """Writable: a primary, not a read-only standby."""
        rows = await self._rows("SELECT pg_is_in_recovery() AS standby")
        if rows[0]["standby"]:
            raise StoreUnavailable("PostgreSQL store: the server is a read-only standby")
        return {"backend": self.backend, "pool_size": self._pool.get_size()}

    async def close(self) -> None:
        if not self._pool.is_closing():
            await self._pool.close()
