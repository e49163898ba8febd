"""What the ``--workers`` supervisor prepares before it forks (gateway.serving.workers)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.loader import load_config
from gateway.graphql import schema as schema_module
from gateway.graphql.schema import route_schema
from gateway.serving.workers import share_before_fork

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo" / "gateway.yaml"


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfreeze")
def test_the_workers_find_every_graphql_routes_schema_loaded_before_the_fork(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_config(DEMO)
    monkeypatch.setattr(schema_module, "_cache", {})
    share_before_fork(config)
    built: list[Any] = []

    def build(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        raise AssertionError("a worker built a schema the supervisor should have loaded")

    monkeypatch.setattr(schema_module, "load_schema_text", build)
    graphql_routes = [route for route in config.routes if route.rest is None]
    assert graphql_routes
    for route in graphql_routes:
        route_schema(route)
    assert built == []
    assert gc.get_freeze_count() > 1000
