"""Fixtures for the store on both backends: ``store_backend`` opens stores on one SQLite
file or one PostgreSQL database (fresh per test), ``store`` is one opened store.

PostgreSQL: ``NID_TEST_POSTGRES_DSN`` names a server (``.ci/run`` starts one with
``tests/postgres.sh``); without it the session starts its own private cluster with the same
script when PostgreSQL's binaries are installed. Under ``CI=1`` the variable is required:
the PostgreSQL tests must never quietly not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.store.api import Store
from tests.fixtures.store import Backend

POSTGRES_SH = Path(__file__).resolve().parents[1] / "postgres.sh"
DSN_VARIABLE = "NID_TEST_POSTGRES_DSN"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server's DSN (superuser: the tests create a database each)."""
    if dsn := os.environ.get(DSN_VARIABLE):
        yield dsn
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{DSN_VARIABLE} is not set: CI must run the PostgreSQL store tests"
            " (.ci/run starts a server with tests/postgres.sh)"
        )
    workdir = tempfile.mkdtemp(prefix="nid-pg-")
    try:
        started = subprocess.run(
            ["bash", str(POSTGRES_SH), "start", workdir],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            pytest.fail(
                f"cannot start a private PostgreSQL ({started.stderr.strip()});"
                f" install it (apt-get install postgresql) or set {DSN_VARIABLE}"
            )
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(POSTGRES_SH), "stop", workdir], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        backend = Backend("sqlite", str(tmp_path / "data" / "nid-gateway.sqlite3"))
        yield backend
    else:
        admin_dsn: str = request.getfixturevalue("postgres_dsn")
        database = f"nid_test_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f"CREATE DATABASE {database}")
        backend = Backend("postgresql", admin_dsn.rsplit("/", 1)[0] + f"/{database}")
        try:
            yield backend
        finally:
            for store in backend.opened:
                await store.close()
            await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
            await admin.close()
        return
    for store in backend.opened:
        await store.close()


@pytest.fixture
async def store(store_backend: Backend) -> Store:
    return await store_backend.open()
