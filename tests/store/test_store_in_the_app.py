"""The store inside the running gateway: opened at start, reported by ``/readyz``, and a
gateway whose store cannot open does not start (fail closed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.observability.http import create_admin_app
from gateway.store.api import StoreUnavailable
from tests.fixtures.gateway import GatewayFactory
from tests.fixtures.store import Backend


async def store_check(aiohttp_client: AiohttpClient, app: Any) -> dict[str, Any]:
    admin = await aiohttp_client(create_admin_app(app))
    detail: dict[str, Any] = (await (await admin.get("/readyz")).json())["checks"]["store"]
    return detail


async def test_readyz_reports_the_configured_store_on_each_backend(
    make_gateway: GatewayFactory, aiohttp_client: AiohttpClient, store_backend: Backend
) -> None:
    where = (
        {"path": store_backend.location}
        if store_backend.name == "sqlite"
        else {"dsn": store_backend.location}
    )
    gateway = await make_gateway(store={"backend": store_backend.name, **where})
    detail = await store_check(aiohttp_client, gateway.client.app)
    assert detail["ok"] is True and detail["backend"] == store_backend.name
    assert await store_backend.raw("SELECT count(*) FROM abonnementen") == [(0,)]


async def test_readyz_says_not_ready_while_the_sqlite_file_is_not_writable(
    make_gateway: GatewayFactory, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    gateway = await make_gateway(store={"timeout": 0.2})
    path = tmp_path / "data" / "nid-gateway.sqlite3"  # the default: data/ beside gateway.yaml
    assert (await store_check(aiohttp_client, gateway.client.app))["path"] == str(path)
    other_writer = sqlite3.connect(path, isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        detail = await store_check(aiohttp_client, gateway.client.app)
        assert detail == {"ok": False, "error": f"SQLite store {path}: database is locked"}
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    assert (await store_check(aiohttp_client, gateway.client.app))["ok"] is True


async def test_a_gateway_whose_store_cannot_open_does_not_start(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("a file where the data folder should be")
    with pytest.raises(StoreUnavailable, match="blocked"):
        await make_gateway(store={"path": "blocked/nid-gateway.sqlite3"})


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"backend": "postgresql"}, "store backend postgresql needs dsn"),
        ({"dsn": "postgresql://db/nid"}, "dsn is for backend: postgresql"),
    ],
)
def test_store_configuration_mistakes_are_named(
    tmp_path: Path, store: dict[str, Any], message: str
) -> None:
    from gateway.config.errors import ConfigError
    from tests.fixtures.gateway import gateway_yaml, write_config

    data = gateway_yaml("http://127.0.0.1:9/", "http://127.0.0.1:9/", store=store)
    with pytest.raises(ConfigError, match=message):
        write_config(tmp_path, data)
