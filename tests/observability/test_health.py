"""``/healthz`` and ``/readyz`` over real HTTP: the public ``/readyz`` says only ready or not;
the admin listener's ``/readyz`` gives the detail of every check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from gateway.config.model import GatewayConfig
from gateway.observability.health import add_check
from gateway.observability.http import READINESS_TIMEOUT_KEY, create_admin_app
from tests.fixtures.observability import observability_app


async def passing() -> tuple[bool, dict[str, Any]]:
    return True, {"kid": "k1"}


async def failing() -> tuple[bool, dict[str, Any]]:
    return False, {"error": "no policy loaded"}


async def raising() -> tuple[bool, dict[str, Any]]:
    raise ConnectionRefusedError("upstream http://127.0.0.1:9/ refused")


async def leaking() -> tuple[bool, dict[str, Any]]:
    return False, {"upstream": "http://10.1.2.3:8000/graphql", "kid": "key-2026-11"}


async def hanging() -> tuple[bool, dict[str, Any]]:
    await asyncio.sleep(30)
    return True, {}


async def test_healthz_answers_ok(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    client = await aiohttp_client(observability_app(write_config()))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_without_checks_is_ready_when_config_loaded(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    client = await aiohttp_client(observability_app(write_config()))
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


async def test_readyz_without_config_is_not_ready(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    from gateway.observability.setup import setup_observability

    app = web.Application()
    setup_observability(app, write_config())  # CONFIG never stored on the app
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["status"] == "not_ready"


async def test_admin_readyz_all_checks_pass_gives_200_with_details(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    add_check(app, "keys", passing)
    add_check(app, "policies", passing)
    client = await aiohttp_client(create_admin_app(app))
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"keys": {"ok": True, "kid": "k1"}, "policies": {"ok": True, "kid": "k1"}},
    }


async def test_admin_readyz_one_failing_check_gives_503_with_its_error(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    add_check(app, "keys", passing)
    add_check(app, "policies", failing)
    client = await aiohttp_client(create_admin_app(app))
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["policies"] == {"ok": False, "error": "no policy loaded"}
    assert body["checks"]["keys"]["ok"] is True


async def test_admin_readyz_check_raising_counts_as_not_ready(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    add_check(app, "upstream:/x", raising)
    client = await aiohttp_client(create_admin_app(app))
    response = await client.get("/readyz")
    assert response.status == 503
    check = (await response.json())["checks"]["upstream:/x"]
    assert check["ok"] is False
    assert check["error"].startswith("ConnectionRefusedError")


async def test_admin_readyz_check_timing_out_counts_as_not_ready(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    app[READINESS_TIMEOUT_KEY] = 0.2
    add_check(app, "slow", hanging)
    add_check(app, "keys", passing)
    client = await aiohttp_client(create_admin_app(app))
    response = await client.get("/readyz")
    assert response.status == 503
    checks = (await response.json())["checks"]
    assert checks["slow"] == {"ok": False, "error": "timed out after 0.2s"}
    assert checks["keys"]["ok"] is True


async def test_readyz_runs_checks_concurrently(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    # Each check waits for the other to have started: run one after the other, both time out.
    first, second = asyncio.Event(), asyncio.Event()

    async def check_a() -> tuple[bool, dict[str, Any]]:
        first.set()
        await second.wait()
        return True, {}

    async def check_b() -> tuple[bool, dict[str, Any]]:
        second.set()
        await first.wait()
        return True, {}

    app = observability_app(write_config())
    app[READINESS_TIMEOUT_KEY] = 1.0
    add_check(app, "a", check_a)
    add_check(app, "b", check_b)
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 200


async def test_public_readyz_says_only_ready(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    add_check(app, "keys", passing)
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_public_readyz_not_ready_shows_no_upstream_url_or_key_id(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    add_check(app, "upstream:/deelnemers/uzovi/5151/graphql", leaking)
    add_check(app, "bad", raising)
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 503
    text = await response.text()
    assert await response.json() == {"status": "not_ready"}
    for detail in ("10.1.2.3", "key-2026-11", "127.0.0.1:9", "upstream", "deelnemers"):
        assert detail not in text


async def test_admin_app_serves_metrics_and_healthz_of_the_gateway_app(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    client = await aiohttp_client(create_admin_app(observability_app(write_config())))
    metrics = await client.get("/metrics")
    assert metrics.status == 200 and "nid_gateway_" in await metrics.text()
    assert (await client.get("/healthz")).status == 200
