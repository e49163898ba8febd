"""Prometheus exposition, parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pytest_aiohttp import AiohttpClient

from gateway.appkeys import OBSERVER
from gateway.config.model import GatewayConfig
from gateway.observability.events import TokenEvent
from gateway.observability.metrics import LATENCY_BUCKETS, GatewayMetrics
from tests.fixtures.observability import ROUTE, decision, observability_app


async def scrape(client: object) -> dict[str, list[Sample]]:
    response = await client.get("/metrics")  # type: ignore[attr-defined]
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(await response.text())
    return {f.name: f.samples for f in families}


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


async def test_decisions_total_counts_one_per_decision_by_outcome_route_code_rule(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    observer = app[OBSERVER]
    observer.decision(decision())
    observer.decision(decision())
    observer.decision(
        decision(outcome="deny", status=400, code="GRAPHQL_VALIDATION_FAILED", rule="afzender_id")
    )
    observer.decision(decision(outcome="error", status=502, code="BAD_GATEWAY"))
    families = await scrape(await aiohttp_client(app))
    samples = families["nid_gateway_decisions"]
    name = "nid_gateway_decisions_total"
    assert value(samples, name, outcome="allow", route=ROUTE, code="none", rule="none") == 2
    assert value(samples, name, outcome="deny", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert value(samples, name, outcome="deny", rule="afzender_id") == 1
    assert value(samples, name, outcome="error", code="BAD_GATEWAY") == 1
    latency = families["nid_gateway_decision_duration_seconds"]
    assert value(latency, "nid_gateway_decision_duration_seconds_count", outcome="allow") == 2
    assert (
        value(
            families["nid_gateway_policy_duration_seconds"],
            "nid_gateway_policy_duration_seconds_count",
            route=ROUTE,
        )
        == 4
    )
    assert (
        value(
            families["nid_gateway_upstream_duration_seconds"],
            "nid_gateway_upstream_duration_seconds_count",
            route=ROUTE,
        )
        == 4
    )


async def test_unknown_route_label_is_folded_to_other_after_the_bound(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    for i in range(100):
        app[OBSERVER].decision(decision(route=f"/probe/{i}"))
    samples = (await scrape(await aiohttp_client(app)))["nid_gateway_decisions"]
    routes = {s.labels["route"] for s in samples if s.name == "nid_gateway_decisions_total"}
    assert "other" in routes
    assert len(routes) <= 22  # configured route + 20 admitted + other


async def test_http_requests_counted_by_route_template_method_status(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    client = await aiohttp_client(observability_app(write_config()))
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no/such/path")
    samples = (await scrape(client))["nid_gateway_http_requests"]
    name = "nid_gateway_http_requests_total"
    assert value(samples, name, route="/healthz", method="GET", status="200") == 2
    assert value(samples, name, route="unmatched", method="GET", status="404") == 1


async def test_token_parse_cache_jwks_reload_upstream_shadow_metrics(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    app = observability_app(write_config())
    o = app[OBSERVER]
    o.token(TokenEvent(outcome="issued", client_id="ciz", duration_ms=1.0))
    o.token(TokenEvent(outcome="invalid_client", client_id="attacker-chosen-id"))
    o.parse_cache(True)
    o.parse_cache(True)
    o.parse_cache(False)
    o.jwks_refresh("http://127.0.0.1:8080", "ok")
    o.policy_reload("ok", "sha256:one")
    o.policy_reload("refused", None)
    o.policy_reload("ok", "sha256:two")
    o.upstream_error(ROUTE, "refused")
    o.shadow_mismatch(ROUTE, "allow", "deny", "afzender_id")
    f = await scrape(await aiohttp_client(app))
    # Client ids not in the configuration never become label values.
    assert (
        value(
            f["nid_gateway_tokens"],
            "nid_gateway_tokens_total",
            client="other",
            outcome="invalid_client",
        )
        == 1
    )
    assert (
        value(f["nid_gateway_tokens"], "nid_gateway_tokens_total", client="other", outcome="issued")
        == 1
    )
    assert value(f["nid_gateway_parse_cache"], "nid_gateway_parse_cache_total", result="hit") == 2
    assert value(f["nid_gateway_parse_cache"], "nid_gateway_parse_cache_total", result="miss") == 1
    assert (
        value(
            f["nid_gateway_jwks_refreshes"],
            "nid_gateway_jwks_refreshes_total",
            issuer="http://127.0.0.1:8080",
            outcome="ok",
        )
        == 1
    )
    reloads = f["nid_gateway_policy_reloads"]
    assert value(reloads, "nid_gateway_policy_reloads_total", outcome="ok") == 2
    assert value(reloads, "nid_gateway_policy_reloads_total", outcome="refused") == 1
    loaded = f["nid_gateway_policy_loaded"]
    assert value(loaded, "nid_gateway_policy_loaded", version="sha256:two") == 1
    assert value(loaded, "nid_gateway_policy_loaded", version="sha256:one") == 0
    assert (
        value(
            f["nid_gateway_upstream_errors"],
            "nid_gateway_upstream_errors_total",
            route=ROUTE,
            kind="refused",
        )
        == 1
    )
    assert (
        value(
            f["nid_gateway_shadow_mismatches"],
            "nid_gateway_shadow_mismatches_total",
            route=ROUTE,
            active="allow",
            shadow="deny",
        )
        == 1
    )


async def test_each_app_has_its_own_registry(
    aiohttp_client: AiohttpClient, write_config: Callable[..., GatewayConfig]
) -> None:
    first = observability_app(write_config())
    second = observability_app(write_config())
    first[OBSERVER].decision(decision())
    samples = (await scrape(await aiohttp_client(second))).get("nid_gateway_decisions", [])
    assert value(samples, "nid_gateway_decisions_total", outcome="allow") is None


def test_the_hot_paths_tallies_expose_what_prometheus_own_children_would() -> None:
    # Single process: request/decision children are plain tallies pushed at scrape time.
    # The exposition must be the one prometheus' own observe()/inc() would give, also when
    # counts arrive between scrapes (each push adds only what is new).
    fast = GatewayMetrics(routes=frozenset({"/r"}))
    counter, seconds = fast.request_children("/r", "POST", 200)
    registry = CollectorRegistry()
    plain_counter = Counter("c", "c", registry=registry)
    plain_seconds = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=registry)
    observations = [0.0, 0.0005, 0.0007, 0.003, 0.3, 31.0, 0.0025, 1e-9]
    for round_ in (observations[:3], observations[3:], []):
        for amount in round_:
            counter.inc()
            seconds.observe(amount)
            plain_counter.inc()
            plain_seconds.observe(amount)
        fast.exposition()  # a scrape pushes
        expected = {
            (s.name.replace("h_", "x_"), s.labels.get("le"), s.value)
            for f in registry.collect()
            for s in f.samples
            if s.name in ("h_bucket", "h_sum", "h_count")
        }
        got = {
            (
                s.name.replace("nid_gateway_http_request_duration_seconds_", "x_"),
                s.labels.get("le"),
                s.value,
            )
            for f in fast.registry.collect()
            for s in f.samples
            if s.name.startswith("nid_gateway_http_request_duration_seconds_")
            and not s.name.endswith("_created")
        }
        assert got == expected
        assert fast.registry.get_sample_value(
            "nid_gateway_http_requests_total", {"route": "/r", "method": "POST", "status": "200"}
        ) == registry.get_sample_value("c_total")


def _hot_path_samples(metrics: GatewayMetrics) -> list[tuple[str, tuple[Any, ...], float]]:
    metrics.flush()
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in metrics.registry.collect()
        if f.name.startswith(("nid_gateway_decision", "nid_gateway_http", "nid_gateway_polic"))
        or f.name.startswith("nid_gateway_upstream_duration")
        for s in f.samples
        if not s.name.endswith("_created")
    )


def test_the_one_call_recorders_expose_what_their_inc_and_observe_calls_gave() -> None:
    one_call = GatewayMetrics(routes=frozenset({"/r"}))
    by_parts = GatewayMetrics(routes=frozenset({"/r"}))
    decisions = [
        ("allow", "/r", None, "allow_x", 4.1, 0.004, 3.2),
        ("deny", "/r", "FORBIDDEN", "deny_y", 0.9, 0.02, None),
        ("error", "/unknown", "UPSTREAM", None, 31000.0, None, 30000.0),
        ("deny", "/r", "UNAUTHENTICATED", None, 0.2, None, None),
    ]
    requests = [("/r", "POST", 200, 0.0041), ("/r", "other", 499, 0.0), ("/x", "GET", 404, 7.0)]
    for _ in range(2):
        for outcome, route, code, rule, total, policy, upstream in decisions:
            one_call.record_decision(outcome, route, code, rule, total, policy, upstream)
            timed = policy is not None or upstream is not None
            count, seconds, policy_s, upstream_s = by_parts.decision_series(
                outcome, route, code, rule, timed
            )
            count.inc()
            seconds.observe(total / 1000.0)
            if policy is not None:
                policy_s.observe(policy / 1000.0)
            if upstream is not None:
                upstream_s.observe(upstream / 1000.0)
        for route, method, status, spent in requests:
            one_call.record_request(route, method, status, spent)
            count, seconds = by_parts.request_children(route, method, status)
            count.inc()
            seconds.observe(spent)
        assert _hot_path_samples(one_call) == _hot_path_samples(by_parts)
    assert any(name == "nid_gateway_decisions_total" for name, _, _ in _hot_path_samples(one_call))
