"""Fixtures for the observability tests: real YAML configs, real apps, captured stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from gateway.appkeys import CONFIG, OBSERVER
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from gateway.observability.events import DecisionEvent
from gateway.observability.setup import setup_observability

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


def decision(**overrides: Any) -> DecisionEvent:
    """A typical allowed zendNotificatie decision, with *overrides*."""
    fields: dict[str, Any] = {
        "decision_id": "d-0001",
        "outcome": "allow",
        "status": 200,
        "route": ROUTE,
        "client_id": "ciz",
        "sub": "ciz",
        "instantie_type": "Onderneming",
        "identifier_type": "KVK",
        "identifier": "62253778",
        "operation_type": "mutation",
        "operation_name": "zendNotificatie",
        "root_field": "zendNotificatie",
        "event_type": "NIEUWE_INDICATIE_ZORGKANTOOR",
        "afzender": "KVK:62253778",
        "ontvanger": "UZOVI:5151",
        "subjects": ("Client",),
        "records": ("rec-1",),
        "upstream_ms": 3.2,
        "policy_ms": 0.004,
        "total_ms": 4.1,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "request_id": "r-1",
        "policy_version": "sha256:abc",
    }
    fields.update(overrides)
    return DecisionEvent(**fields)
