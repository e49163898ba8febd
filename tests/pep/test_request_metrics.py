"""The PEP's routes count their own requests in ``nid_gateway_http_requests_total``.

They skip the generic request-metrics middleware (issue 17: its timing and label look-up per
request); the scrape must read exactly what the middleware wrote: one sample per request, by
route template, method and status, refusals included, and the latency histogram beside it.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.http import counted_by_handler
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
    # Other routes are still counted by the middleware.
    assert counted[("/healthz", "GET", "200")] == 1


def test_a_handler_on_an_app_without_request_metrics_counts_nothing() -> None:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    route = app.router.add_post("/r", handler)
    count = counted_by_handler(app, route)
    count("POST", 200, 0.001)  # no metrics on this app: nothing to record, no error
    assert not app.middlewares
