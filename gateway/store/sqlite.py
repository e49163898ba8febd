"""SQLite backend: one file, WAL, ``synchronous=FULL`` (fsync on every commit).

One connection owned by one thread (a single-worker executor), so the event loop never
waits on the disk and statements of this process run one at a time. Other processes on the
same file (``serve --workers``) take turns through SQLite's write lock, waiting up to
``store.timeout`` for it.

Writes commit in groups: the writes queued while the previous commit was on its way to the
disk run in one transaction, one fsync for all of them, and each caller returns only once
its write is committed (a failing write is then retried alone, so it fails only itself).
That keeps the async path's 202 durable without an fsync per request, and the worker's
records cheap (issue 15's benchmark: ``bench/bench_delivery.py``). Reads do not queue.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from gateway.store.api import StoreUnavailable
from gateway.store.migrations import CREATE_VERSION_TABLE, plan
from gateway.store.sql import SqlStore

T = TypeVar("T")
_PARAM = re.compile(r"\$(\d+)")


def _statements(script: str) -> list[str]:
    """*script* cut into complete statements (``executescript`` would commit midway)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    return statements


_Write = tuple[tuple[str, tuple[Any, ...]], "asyncio.Future[list[Any]]"]
"""A queued write: the statement with its parameters, and the caller's answer."""


def _settle(
    group: Sequence[_Write], results: list[list[Any]] | None, error: BaseException | None
) -> None:
    """Answer every caller of *group* not answered yet (a cancelled one is left alone)."""
    for index, (_, done) in enumerate(group):
        if done.done():
            continue
        if error is not None:
            done.set_exception(error)
        else:
            assert results is not None
            done.set_result(results[index])


class SqliteStore(SqlStore):
    backend = "sqlite"
    SKIP_LOCKED = ""
    APPEND_ATTEMPT = "json_insert(attempts, '$[#]', json($2))"

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nid-store")
        self._conn: sqlite3.Connection | None = None
        self._group: list[_Write] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, timeout: float = 5.0) -> SqliteStore:
        """Open (or create) the file at *path* and bring its schema up to date."""
        store = cls(path, timeout)
        try:
            await store._call(store._connect)
            await store._call(store._migrate)
        except BaseException:
            await store.close()
            raise
        return store

    async def _call(self, function: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        self._conn = conn

    def _migrate(self) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # the write lock: one process migrates at a time
        try:
            conn.execute(CREATE_VERSION_TABLE)
            current = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            for migration in plan(self.backend, current):
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return self._conn

    async def _rows(self, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]:
        sql = _PARAM.sub(r"?\1", sql)
        if sql.startswith("SELECT"):  # a reader never waits for the write lock (WAL)
            return await self._call(lambda: self._connection().execute(sql, args).fetchall())
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._group.append(((sql, args), done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_groups())
        return await done

    async def _commit_groups(self) -> None:
        """Commit the writes queued meanwhile, together, until none are left."""
        while self._group:
            group, self._group = self._group, []
            try:
                results = await self._call(partial(self._transaction, [s for s, _ in group]))
            except StoreUnavailable as exc:
                if len(group) == 1 or not isinstance(exc.__cause__, sqlite3.IntegrityError):
                    _settle(group, None, exc)  # e.g. the write lock not had in time: all fail
                    continue
                for entry in group:  # one write that breaks a constraint fails only itself
                    await self._commit_alone(entry)
            else:
                _settle(group, results, None)

    async def _commit_alone(self, entry: _Write) -> None:
        try:
            results = await self._call(partial(self._transaction, [entry[0]]))
        except StoreUnavailable as exc:
            _settle([entry], None, exc)
        else:
            _settle([entry], results, None)

    def _transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        """*statements* in one transaction: one commit, one fsync; the rows of each."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [conn.execute(sql, args).fetchall() for sql, args in statements]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    async def ping(self) -> dict[str, Any]:
        """Writable: take the write lock and let it go (waits at most ``store.timeout``)."""

        def probe() -> None:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")

        await self._call(probe)
        return {"backend": self.backend, "path": str(self.path)}

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)
