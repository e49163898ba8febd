"""The PEP's routes count their own requests in ``nid_gateway_http_requests_total``.

There is no request-metrics middleware (issue 17: with any middleware aiohttp builds a handler
chain and adds a coroutine level on every request): the other routes' handlers are wrapped by
``counted`` where they are registered, unmatched requests are counted on response prepare.
The scrape must read what the middleware wrote: one sample per request, by route template,
method and status, refusals included, and the latency histogram beside it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.http import METRICS_KEY, counted, counted_by_handler
from gateway.observability.metrics import GatewayMetrics
from gateway.pep.pipeline import RouteHandler
from tests.fixtures.gateway import ZK_5151, Gateway

REQUESTS = "nid_gateway_http_requests_total"
SECONDS = "nid_gateway_http_request_duration_seconds_count"
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"


async def samples(gateway: Gateway, name: str) -> dict[tuple[str, str, str], float]:
    """Every sample of *name* on the real ``/metrics``, by (route, method, status)."""
    text = await (await gateway.client.get("/metrics")).text()
    return {
        (s.labels["route"], s.labels.get("method", ""), s.labels.get("status", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_each_pep_request_is_counted_once_by_route_method_status(
    gateway: Gateway,
) -> None:
    token = gateway.token("ciz", [SCOPE])
    for _ in range(2):
        assert (await gateway.post(ZK_5151, token=token)).status == 200
    assert (await gateway.post(ZK_5151)).status == 401  # no token: refused, counted too
    assert (await gateway.client.get(ZK_5151)).status == 405
    assert (await gateway.client.request("PROPFIND", ZK_5151)).status == 405
    assert (await gateway.client.get("/healthz")).status == 200

    counted = await samples(gateway, REQUESTS)
    assert counted[(ZK_5151, "POST", "200")] == 2  # not twice each: the middleware skipped
    assert counted[(ZK_5151, "POST", "401")] == 1
    assert counted[(ZK_5151, "GET", "405")] == 1
    assert counted[(ZK_5151, "other", "405")] == 1  # unknown methods folded, as before
    assert sum(v for (route, _m, _s), v in counted.items() if route == ZK_5151) == 5
    timed = await samples(gateway, SECONDS)
    assert timed[(ZK_5151, "", "")] == 5
    # Other routes are still counted, by their wrapped handlers.
    assert counted[("/healthz", "GET", "200")] == 1


async def test_without_a_middleware_every_other_route_and_unmatched_request_is_counted(
    gateway: Gateway,
) -> None:
    assert not gateway.client.app.middlewares  # nothing wraps the PEP's routes
    assert (await gateway.client.get("/healthz")).status == 200
    assert (await gateway.client.head("/healthz")).status == 200
    assert (await gateway.client.get("/no/such/path")).status == 404
    assert (await gateway.client.post("/healthz")).status == 405  # no route allows POST
    assert (await gateway.client.request("PROPFIND", "/nowhere")).status == 404

    counted = await samples(gateway, REQUESTS)
    assert counted[("/healthz", "GET", "200")] == 1
    assert counted[("/healthz", "HEAD", "200")] == 1
    assert counted[("unmatched", "GET", "404")] == 1
    assert counted[("unmatched", "POST", "405")] == 1
    assert counted[("unmatched", "other", "404")] == 1
    timed = await samples(gateway, SECONDS)
    assert timed[("unmatched", "", "")] == 3


async def test_every_route_is_counted_by_its_handler(gateway: Gateway) -> None:
    # A route registered without counted() (and not a PEP route) would go uncounted.
    for route in gateway.client.app.router.routes():
        handler = route.handler
        if isinstance(getattr(handler, "__self__", None), RouteHandler):
            continue  # counts itself (counted_by_handler)
        assert hasattr(handler, "__wrapped__"), f"{route.method} {route.resource} not counted"


def _scraped(metrics: GatewayMetrics) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name == REQUESTS
    }


@pytest.mark.parametrize(
    ("raised", "status"),
    [(RuntimeError("bug"), "500"), (web.HTTPForbidden(), "403"), (asyncio.CancelledError(), "499")],
)
async def test_a_counted_handler_counts_exceptions_and_a_client_gone(
    raised: BaseException, status: str
) -> None:
    async def handler(_request: web.Request) -> web.Response:
        raise raised

    app = web.Application()
    app[METRICS_KEY] = metrics = GatewayMetrics()
    route = app.router.add_get("/r/{id}", counted(app, handler))
    request = make_mocked_request("GET", "/r/1", app=app)
    match_info = await app.router.resolve(request)
    assert match_info.route is route
    request._match_info = match_info  # as aiohttp's Application._handle sets it
    with pytest.raises(type(raised)):
        await route.handler(request)
    assert _scraped(metrics) == {("/r/{id}", "GET", status): 1.0}


def test_a_handler_on_an_app_without_request_metrics_counts_nothing() -> None:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    route = app.router.add_post("/r", handler)
    count = counted_by_handler(app, route)
    count("POST", 200, 0.001)  # no metrics on this app: nothing to record, no error
    assert not app.middlewares
