"""The authorization server tests' fixtures: a real deployment on disk and the app built
from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from tests.fixtures.authserver import AuthClient, RecordingObserver, auth_app, write_deployment


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    return write_deployment(tmp_path)


@pytest.fixture
def config(deployment: Path) -> GatewayConfig:
    return load_config(deployment)


@pytest.fixture
async def auth_client(
    config: GatewayConfig,
    observer: RecordingObserver,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
) -> AuthClient:
    app, keystore = auth_app(config, observer)
    return await aiohttp_client(app), keystore
