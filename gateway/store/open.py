"""Open the store the configuration names: :func:`open_store`."""

from __future__ import annotations

from pathlib import Path

from gateway.config.model import GatewayConfig, StoreConfig
from gateway.store.api import Store

SQLITE_FILE = "nid-gateway.sqlite3"


def sqlite_path(config: GatewayConfig) -> Path:
    """``store.path``, else ``<data_dir>/nid-gateway.sqlite3`` (``data_dir`` defaults to
    ``data/`` beside ``gateway.yaml``)."""
    if config.store is not None and config.store.path is not None:
        return config.store.path
    data_dir = config.data_dir or config.source.resolve().parent / "data"
    return data_dir / SQLITE_FILE


async def open_store(config: GatewayConfig) -> Store:
    """Open (and migrate) the configured store; StoreUnavailable or SchemaTooNew if not."""
    settings = config.store or StoreConfig()
    if settings.backend == "postgresql":
        from gateway.store.postgresql import PostgresStore  # asyncpg only when used

        assert settings.dsn is not None  # StoreConfig requires it
        return await PostgresStore.open(
            settings.dsn, pool_size=settings.pool_size, timeout=settings.timeout
        )
    from gateway.store.sqlite import SqliteStore

    return await SqliteStore.open(sqlite_path(config), settings.timeout)
