"""``docs/grafana-dashboard.json`` only queries series the gateway really exposes.

The dashboard's PromQL is checked against the ``/metrics`` exposition of a real gateway
(``create_app(load_config(<yaml>))`` over real HTTP) after traffic that moves every metric:
token requests (issued and refused), allowed and refused PEP requests, a down upstream, a
remote issuer's JWKS fetch, a shadow policy that disagrees, and a refused policy reload.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient, AiohttpServer

from gateway.app import create_app
from gateway.authserver.signing_keys import generate_key
from gateway.pep.setup import PEP
from tests.fixtures.gateway import (
    DOWN,
    NOTIFICATIE_5151,
    POLICIES,
    ZK_5151,
    Received,
    gateway_yaml,
    seed_notification,
    upstream_app,
    write_config,
)
from tests.fixtures.observability import REPO

DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
DATASOURCE = "${DS_PROMETHEUS}"
PUBLIC = "http://127.0.0.1:8080"
# Label Prometheus adds at scrape time (the gateway never exposes it).
SCRAPE_LABELS = frozenset({"job", "instance"})
# What operators asked to see: each must be queried by at least one panel.
REQUIRED = frozenset(
    {
        "nid_gateway_decisions_total",
        "nid_gateway_decision_duration_seconds_bucket",
        "nid_gateway_policy_duration_seconds_bucket",
        "nid_gateway_upstream_duration_seconds_bucket",
        "nid_gateway_upstream_errors_total",
        "nid_gateway_tokens_total",
        "nid_gateway_parse_cache_total",
        "nid_gateway_jwks_refreshes_total",
        "nid_gateway_policy_reloads_total",
        "nid_gateway_policy_loaded",
        "nid_gateway_shadow_mismatches_total",
        "nid_gateway_http_requests_total",
        "nid_gateway_adresboek_reloads_total",
    }
)
DELIVERY = frozenset(
    {
        "nid_gateway_outbox_deliveries",
        "nid_gateway_outbox_oldest_pending_seconds",
        "nid_gateway_delivery_attempts_total",
        "nid_gateway_deliveries_dead_total",
    }
)
"""The reliable-delivery panels: their series exist only where a delivery worker runs
(a store and the central route), so ``tests/delivery/test_async_path.py`` checks them
against such a gateway."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# An identifier not followed by "(" (a function) and not part of a number (1e-9).
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def metric_names(expr: str) -> set[str]:
    """The metric (sample) names a PromQL expression selects."""
    expr = _STRING.sub('""', expr)
    expr = _MATCHERS.sub(lambda m: m.group(1) or "", expr)
    expr = _RANGE.sub("", expr)
    expr = _GROUPING.sub("", expr)
    return {m.group(1) for m in _IDENT.finditer(expr)} - _KEYWORDS


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """Label names used in each metric's ``{...}`` selector."""
    found: dict[str, set[str]] = defaultdict(set)
    for match in _MATCHERS.finditer(_STRING.sub('""', expr)):
        if match.group(1):
            names = re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2))
            found[match.group(1)].update(names)
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names of ``by (...)`` / ``without (...)`` / ``on (...)`` clauses."""
    return {
        label.strip()
        for clause in _GROUPING.findall(_STRING.sub('""', expr))
        for label in clause.split(",")
        if label.strip()
    }


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def targets(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel, rows' nested panels included."""
    found = []
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner["title"], target))
    return found


def test_metric_name_extraction_skips_functions_labels_grouping_and_numbers() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job=~"$job", '
        'route="x{y}"}[$__rate_interval]))) / clamp_min(sum(b_total offset 1d), 1e-9) '
        "and on (route) c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert matcher_labels(expr) == {"a_bucket": {"job", "route"}}
    assert grouping_labels(expr) == {"le", "route"}


def test_dashboard_is_an_importable_grafana_model() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
    for title, target in targets(board):
        assert target["datasource"]["uid"] == DATASOURCE, title
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE
    used = set().union(*(metric_names(t["expr"]) for _, t in targets(board)))
    assert used >= REQUIRED | DELIVERY, sorted(REQUIRED | DELIVERY - used)


@pytest.fixture
async def jwks_server(tmp_path: Path, aiohttp_server: AiohttpServer) -> str:
    """A remote trusted issuer's JWKS endpoint (a real key set on a real port)."""
    keys = tmp_path / "remote-issuer-keys"
    generate_key(keys, "ES256")
    body = (keys / "jwks.json").read_bytes()

    async def jwks(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(app)
    return str(server.make_url("/jwks.json"))


async def exposition_after_traffic(
    tmp_path: Path, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, jwks_url: str
) -> str:
    """Run a real gateway through traffic that moves every metric; return its ``/metrics``."""
    received: list[Received] = []
    upstream = await aiohttp_server(upstream_app(received))
    # Shadow (dry run) = the iWlz set without the zendNotificatie policy: it default-denies
    # what the active set allows, so every allowed notification is a mismatch.
    shadow = tmp_path / "shadow"
    shutil.copytree(POLICIES, shadow)
    (shadow / "notificatie.yaml").unlink()
    (shadow / "notificatie.test.yaml").unlink()
    # A loopback public URL: authlib answers plain-http token requests only for loopback.
    data = gateway_yaml(
        str(upstream.make_url("")).rstrip("/"),
        f"http://127.0.0.1:{unused_port()}/graphql",
        public_url=PUBLIC,
        issuer=PUBLIC,
    )
    data["tokens"]["trusted_issuers"].append(
        {"issuer": "https://issuer.example", "jwks_url": jwks_url}
    )
    data["policy"] = {"watch": False, "shadow": [str(shadow)]}
    config = write_config(tmp_path, data)
    app = await create_app(config)
    client = await aiohttp_client(app)

    async def token(secret: str, path: str = ZK_5151) -> dict[str, Any]:
        form = {
            "grant_type": "client_credentials",
            "client_id": "ciz",
            "client_secret": secret,
            "scope": NOTIFICATIE_5151,
            "audience": PUBLIC + path,
        }
        async with client.post("/auth/token", data=form) as response:
            body: dict[str, Any] = await response.json()
            return body

    assert (await token("wrong-secret"))["error"] == "invalid_client"

    async def pep(path: str, body: dict[str, Any]) -> int:
        bearer = f"Bearer {(await token('ciz-demo-secret', path))['access_token']}"
        async with client.post(path, json=body, headers={"Authorization": bearer}) as response:
            await response.read()
            return response.status

    assert await pep(ZK_5151, seed_notification()) == 200
    assert await pep(ZK_5151, seed_notification()) == 200  # parse cache hit
    assert await pep(ZK_5151, seed_notification(afzenderID="1")) == 400
    assert await pep(DOWN, seed_notification()) == 502
    # A broken shadow file: the reload is refused and the last good sets keep serving.
    (shadow / "broken.yaml").write_text("policy: [\n", encoding="utf-8")
    app[PEP].reload_policies()
    async with client.get("/metrics") as response:
        assert response.status == 200
        return await response.text()


def exposed_labels(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names it is exposed with, from a ``/metrics`` text."""
    labels: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels[sample.name].update(sample.labels)
    return labels


def check_queries(
    queries: list[tuple[str, dict[str, Any]]], labels: dict[str, set[str]]
) -> set[str]:
    """Assert each query selects exposed series by exposed labels; the names checked."""
    checked: set[str] = set()
    for title, target in queries:
        expr = target["expr"]
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        missing = names - set(labels)
        assert not missing, f"{title}: {sorted(missing)} not in the exposition"
        for name, used in matcher_labels(expr).items():
            unknown = used - labels[name] - SCRAPE_LABELS
            assert not unknown, f"{title}: {name} has no label {sorted(unknown)}"
        available = set().union(*(labels[n] for n in names)) | SCRAPE_LABELS
        unknown = grouping_labels(expr) | set(_LEGEND.findall(target["legendFormat"]))
        assert unknown <= available, f"{title}: unknown labels {sorted(unknown - available)}"
        checked |= names
    return checked


async def test_every_dashboard_query_selects_series_a_real_gateway_exposes(
    tmp_path: Path,
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    jwks_server: str,
) -> None:
    text = await exposition_after_traffic(tmp_path, aiohttp_server, aiohttp_client, jwks_server)
    labels = exposed_labels(text)
    queries = [(t, q) for t, q in targets(dashboard()) if not metric_names(q["expr"]) <= DELIVERY]
    checked = check_queries(queries, labels)
    for variable in dashboard()["templating"]["list"]:
        match = re.fullmatch(
            r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", variable["definition"]
        )
        assert match, variable["definition"]
        name, label = match.groups()
        assert name in labels and label in labels[name] | SCRAPE_LABELS
    assert checked >= REQUIRED

    # The traffic moved what the panels show (not only declared families).
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }

    def total(name: str, **want: str) -> float:
        return sum(
            v for (n, lbl), v in samples.items() if n == name and want.items() <= dict(lbl).items()
        )

    assert total("nid_gateway_decisions_total", outcome="allow") == 2
    assert total("nid_gateway_decisions_total", outcome="deny") == 1
    assert total("nid_gateway_decisions_total", outcome="error") == 1
    assert total("nid_gateway_upstream_errors_total", route=DOWN) >= 1
    assert total("nid_gateway_tokens_total", client="ciz", outcome="issued") == 4
    assert total("nid_gateway_tokens_total", outcome="invalid_client") == 1
    assert total("nid_gateway_parse_cache_total", result="hit") >= 1
    assert (
        total("nid_gateway_jwks_refreshes_total", issuer="https://issuer.example", outcome="ok")
        == 1
    )
    assert total("nid_gateway_policy_reloads_total", outcome="ok") >= 1
    assert total("nid_gateway_policy_reloads_total", outcome="refused") >= 1
    assert total("nid_gateway_policy_loaded") == 1
    assert (
        total(
            "nid_gateway_shadow_mismatches_total", route=ZK_5151, active="allow", shadow="deny:403"
        )
        == 2
    )
