"""``nid-gateway demo``: the gateway with the demo configuration (``config/demo/``) in front
of one bundled example resource server per route, on 127.0.0.1, printing paste-ready curls
for a token, an allowed and a refused notification. Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import ConfigError, load_config
from gateway.config.model import GatewayConfig
from gateway.serving.lifecycle import run, start_gateway, wait_for_stop

DEMO_CONFIG = Path("config") / "demo" / "gateway.yaml"


def register(sub: Any) -> None:
    """Add ``demo`` to the ``nid-gateway`` parser."""
    demo = sub.add_parser(
        "demo", help="run the demo: gateway + example resource servers on 127.0.0.1"
    )
    demo.add_argument("--port", type=int, default=8080, help="gateway port (default 8080)")
    demo.add_argument(
        "--upstream", help="forward every demo route to URL instead of the example servers"
    )
    demo.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_demo)


def find_demo_config() -> Path | None:
    """``config/demo/gateway.yaml`` of the source tree (or of the current directory)."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = base / DEMO_CONFIG
        if candidate.is_file():
            return candidate
    return None


def _demo(args: argparse.Namespace) -> int:
    path = args.config or find_demo_config()
    if path is None:
        print(f"error: {DEMO_CONFIG} not found (run from the source tree)", file=sys.stderr)
        return 2
    try:
        config = load_config(path, port=args.port, upstream=args.upstream)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(lambda: _demo_main(config, bundled=args.upstream is None))


async def start_example_servers(config: GatewayConfig) -> tuple[GatewayConfig, list[web.AppRunner]]:
    """Start one example resource server per route on a free loopback port and point the
    routes at them; returns the new configuration and the runners to clean up."""
    from gateway.examples.resource_server import create_resource_server_app

    runners: list[web.AppRunner] = []
    routes = []
    for route in config.routes:
        name = route.deelnemer.name or f"{route.deelnemer.id_type} {route.deelnemer.id}"
        runner = web.AppRunner(
            create_resource_server_app(name), access_log=None, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        routes.append(dataclasses.replace(route, upstream=f"http://127.0.0.1:{port}/graphql"))
    return dataclasses.replace(config, routes=tuple(routes)), runners


async def _demo_main(config: GatewayConfig, *, bundled: bool) -> int:
    runners: list[web.AppRunner] = []
    try:
        if bundled:
            config, runners = await start_example_servers(config)
        runners += await start_gateway(config, config.server.host, config.server.port)
        print(demo_instructions(config), flush=True)
        await wait_for_stop()
        print("\nstopping", file=sys.stderr)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    return 0


SEED_003_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seed_003_example.graphql"
"""The example of seed 003 (RFC0008) section 3.5, exactly as written (also a test fixture)."""
SEED_003_VARIABLES = SEED_003_EXAMPLE.with_name("seed_003_variables.json")


def seed_003_request(afzender_id: str = "62253778") -> dict[str, Any]:
    """Seed 003 example request: NIEUWE_INDICATIE_ZORGKANTOOR from KVK 62253778 to UZOVI 5151."""
    variables = json.loads(SEED_003_VARIABLES.read_text(encoding="utf-8"))
    variables["afzenderID"] = afzender_id
    return {
        "query": SEED_003_EXAMPLE.read_text(encoding="utf-8"),
        "operationName": "zendNotificatie",
        "variables": variables,
    }


def demo_instructions(config: GatewayConfig) -> str:
    """Paste-ready curl commands for the running demo."""
    base = config.public_url
    audience = f"{base}/deelnemers/uzovi/5151/graphql"
    scope = "organisaties/zorgkantoor/notificaties/notificatie:create"
    allowed = shlex.quote(json.dumps(seed_003_request()))
    refused = shlex.quote(json.dumps(seed_003_request(afzender_id="99999999")))
    lines = [
        f"nid-gateway demo on {base}  (Ctrl-C stops)",
        "",
        "routes:",
        *(f"  {r.path} -> {r.upstream}" for r in config.routes),
        "",
        "# 1. a token for the CIZ (client_secret_basic), to notify zorgkantoor 5151:",
        f"TOKEN=$(curl -s -u ciz:ciz-demo-secret {base}/auth/token \\",
        "  -d grant_type=client_credentials \\",
        f"  -d scope={scope} \\",
        f"  -d audience={audience} \\",
        "  | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        "",
        "# 2. allowed: NIEUWE_INDICATIE_ZORGKANTOOR from KVK 62253778 to UZOVI 5151 (seed 003):",
        f'curl -s {audience} -H "Authorization: Bearer $TOKEN" \\',
        f"  -H 'Content-Type: application/json' -d {allowed}",
        "",
        "# 3. refused (400 afzender_id is not valid): afzenderID is not the caller's own KVK:",
        f'curl -s {audience} -H "Authorization: Bearer $TOKEN" \\',
        f"  -H 'Content-Type: application/json' -d {refused}",
        "",
    ]
    return "\n".join(lines)
