"""Fixtures for the observability tests: real YAML configs, real apps, captured stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from gateway.appkeys import CONFIG, OBSERVER
from gateway.config import load_config
from gateway.config.model import GatewayConfig
from gateway.facts import OperationFacts, TokenFacts
from gateway.observability.events import DecisionEvent
from gateway.observability.setup import setup_observability
from gateway.policy.decision import Decision

REPO = Path(__file__).resolve().parents[2]
ROUTE = "/deelnemers/uzovi/5151/graphql"


def base_config(**observability: Any) -> dict[str, Any]:
    """A minimal gateway.yaml document (one route, no authorization server)."""
    return {
        "public_url": "http://127.0.0.1:8080",
        "issuer": "http://127.0.0.1:8080",
        "tokens": {
            "trusted_issuers": [
                {
                    "issuer": "http://127.0.0.1:8080",
                    "jwks_url": "http://127.0.0.1:8080/.well-known/jwks.json",
                }
            ]
        },
        "scopes": {"zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create"},
        "routes": [
            {
                "path": ROUTE,
                "upstream": "http://127.0.0.1:9001/graphql",
                "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
                "policies": [str(REPO / "policies" / "iwlz")],
            }
        ],
        "observability": {"log_format": "json", **observability},
    }


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., GatewayConfig]:
    """Write a gateway.yaml with the given ``observability`` keys and load it."""

    def write(**observability: Any) -> GatewayConfig:
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(base_config(**observability)))
        return load_config(path)

    return write


def observability_app(config: GatewayConfig) -> web.Application:
    """A real aiohttp app with only the observability room set up (as create_app does)."""
    app = web.Application()
    app[CONFIG] = config
    app[OBSERVER] = setup_observability(app, config)
    return app


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse captured stdout as JSON lines; every non-empty line must be JSON."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


TOKEN = TokenFacts(claims={}, client_id="ciz", subject="ciz", instantie_type="Onderneming",
                   identifier_type="KVK", identifier="62253778")
OPERATION = OperationFacts("mutation", "zendNotificatie", "zendNotificatie", {})
AUDIT = {"event_type": "NIEUWE_INDICATIE_ZORGKANTOOR", "afzender": "KVK:62253778",
         "ontvanger": "UZOVI:5151", "subjects": ("Client",), "records": ("rec-1",)}


_TOKEN_KEYS = {"client_id": "client_id", "sub": "subject", "instantie_type": "instantie_type",
               "identifier_type": "identifier_type", "identifier": "identifier",
               "actor": "actor"}
_OPERATION_KEYS = {"operation_type", "operation_name", "root_field"}
_DECISION_KEYS = {"rule", "location", "policy_version"}


def decision(**overrides: Any) -> DecisionEvent:
    """A typical allowed zendNotificatie decision, the facts attached as the pipeline does,
    with *overrides* by decision-log key (a token, operation, decision or audit key changes
    the fact it is flattened from)."""
    pick = {k: overrides.pop(k) for k in list(overrides) if k in _TOKEN_KEYS}
    token = replace(TOKEN, **{_TOKEN_KEYS[k]: v for k, v in pick.items()})
    operation = replace(OPERATION, **{k: overrides.pop(k) for k in list(overrides)
                                      if k in _OPERATION_KEYS})
    verdict = {"policy_version": "sha256:abc",
               **{k: overrides.pop(k) for k in list(overrides) if k in _DECISION_KEYS}}
    audit = {**AUDIT, **{k: overrides.pop(k) for k in list(overrides) if k in AUDIT}}
    fields: dict[str, Any] = {
        "decision_id": "d-0001",
        "outcome": "allow",
        "status": 200,
        "route": ROUTE,
        "token": token,
        "operation": operation,
        "decision": Decision(allow=True, status=200, audit=audit, **verdict),
        "audit": audit,
        "upstream_ms": 3.2,
        "policy_ms": 0.004,
        "total_ms": 4.1,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "request_id": "r-1",
    }
    fields.update(overrides)
    return DecisionEvent(**fields)
