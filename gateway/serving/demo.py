"""``nid-gateway demo``: the gateway with the demo configuration (``config/demo/``) in front
of one bundled example resource server (or example register) per route, on 127.0.0.1,
printing paste-ready curls for a token, an allowed and a refused notification. Ctrl-C stops
everything.

What the demo prints and sends is data in ``config/demo/``, found like its ``gateway.yaml``
(the source tree, else the current directory):

- ``curls.txt``: the text printed once serving, a :meth:`str.format` template; Python fills
  in ``{base}`` (the public URL), ``{routes}`` and the shell-quoted request bodies
  ``{allowed}`` and ``{refused}``.
- ``registers/*.yaml``: the records of the example registers, each file naming the route
  it stands behind (that route's ``schema:`` is the register's schema).
- ``requests/allowed.json``, ``requests/refused.json``: a GraphQL request whose
  ``query_file`` and ``variables_file`` name files bundled in ``gateway/examples/`` (the
  seed 003 example, also the test fixtures: one copy) and whose ``variables``, when present,
  replace single variables of ``variables_file``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.config.errors import LocatedError
from gateway.config.loader import load_config
from gateway.config.model import DeliveryConfig, GatewayConfig
from gateway.examples.register import RegisterDataError
from gateway.serving.lifecycle import (
    ListenError,
    listen_socket,
    run,
    start_gateway,
    wait_for_stop,
)
from gateway.serving.serve import with_log_format

DEMO_DIR = Path("config") / "demo"
KETENINDEX_FIXTURE = "ketenindex.yaml"
"""The example Ketenindex and voorzitter's starting data, beside ``registers/``."""
DEMO_CONFIG = DEMO_DIR / "gateway.yaml"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
"""The package's bundled examples (package data): where request files find their query."""

_REQUEST_KEYS = frozenset({"query_file", "operationName", "variables_file", "variables"})


class DemoFileError(Exception):
    """A demo text file under ``config/demo/`` is missing or malformed; names the file."""


@dataclasses.dataclass(frozen=True, slots=True)
class DemoTexts:
    """What the demo prints: the curl template and the two requests it shows."""

    curls: str
    allowed: dict[str, Any]
    refused: dict[str, Any]
    registers: Path | None = None
    """The fixture files of the example registers (``registers/*.yaml``)."""


def register(sub: Any) -> None:
    """Add ``demo`` to the ``nid-gateway`` parser."""
    demo = sub.add_parser(
        "demo", help="run the demo: gateway + example resource servers on 127.0.0.1"
    )
    demo.add_argument(
        "--port", type=int, default=8080, help="gateway port (default 8080; 0: any free port)"
    )
    demo.add_argument(
        "--upstream", help="forward every demo route to URL instead of the example servers"
    )
    demo.add_argument(
        "--log-format",
        choices=("console", "json"),
        help="console (default, for people) or json (as serve logs in production)",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        help="folder of the demo's store (default var/demo/ of the source tree, git-ignored)",
    )
    demo.add_argument(
        "--delivery-max-attempts",
        type=int,
        metavar="N",
        help="attempts before an async notification is dead (default: gateway.yaml delivery:)",
    )
    demo.add_argument(
        "--delivery-max-age",
        type=float,
        metavar="SECONDS",
        help="seconds an async notification is retried before it is dead",
    )
    demo.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_demo)


def find_demo_dir() -> Path | None:
    """``config/demo/`` of the source tree (or of the current directory): the folder that
    holds the demo's ``gateway.yaml``."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = base / DEMO_DIR
        if (candidate / "gateway.yaml").is_file():
            return candidate
    return None


def load_demo_texts(demo_dir: Path) -> DemoTexts:
    """Read ``curls.txt`` and ``requests/{allowed,refused}.json`` of *demo_dir*."""
    try:
        curls = (demo_dir / "curls.txt").read_text(encoding="utf-8")
    except OSError as exc:
        raise DemoFileError(f"{demo_dir / 'curls.txt'}: {exc.strerror}") from exc
    requests = demo_dir / "requests"
    return DemoTexts(
        curls=curls,
        allowed=load_demo_request(requests / "allowed.json"),
        refused=load_demo_request(requests / "refused.json"),
        registers=demo_dir / "registers",
    )


def load_demo_request(path: Path) -> dict[str, Any]:
    """The GraphQL request (``query``, ``operationName``, ``variables``) that the request
    file *path* describes; :class:`DemoFileError` naming the file if it cannot."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(spec, dict) or not _REQUEST_KEYS.issuperset(spec):
            raise DemoFileError(f"{path}: expected an object with keys {sorted(_REQUEST_KEYS)}")
        variables: dict[str, Any] = {}
        if "variables_file" in spec:
            variables = json.loads((EXAMPLES / spec["variables_file"]).read_text("utf-8"))
        overrides = spec.get("variables", {})
        if not isinstance(variables, dict) or not isinstance(overrides, dict):
            raise DemoFileError(f"{path}: variables must be JSON objects")
        variables.update(overrides)
        query = (EXAMPLES / spec["query_file"]).read_text(encoding="utf-8")
        operation_name = spec["operationName"]
    except KeyError as exc:
        raise DemoFileError(f"{path}: {exc.args[0]} is required") from exc
    except OSError as exc:
        raise DemoFileError(f"{path}: {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise DemoFileError(f"{path}: {exc}") from exc
    return {"query": query, "operationName": operation_name, "variables": variables}


def _demo(args: argparse.Namespace) -> int:
    demo_dir = find_demo_dir()
    if demo_dir is None:
        print(f"error: {DEMO_CONFIG} not found (run from the source tree)", file=sys.stderr)
        return 2
    path = args.config or demo_dir / "gateway.yaml"
    try:
        config = load_config(path, port=args.port, upstream=args.upstream)
        texts = load_demo_texts(demo_dir)
        sock = listen_socket(config.server.host, config.server.port)
        if config.server.port == 0:  # the printed curls and audiences use the port bound
            config = load_config(path, port=sock.getsockname()[1], upstream=args.upstream)
        config = with_log_format(config, args.log_format)
        if args.data_dir is not None:
            config = config.model_copy(update={"data_dir": args.data_dir.resolve()})
        config = with_delivery(config, args.delivery_max_attempts, args.delivery_max_age)
        bundled = args.upstream is None
        return run(lambda: _demo_main(config, texts, sock, bundled=bundled))
    except (LocatedError, DemoFileError, RegisterDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ListenError as exc:
        print(f"error: {exc}: {exc.fix or 'pass --port N (or make run PORT=N)'}", file=sys.stderr)
    return 2


def with_delivery(
    config: GatewayConfig, max_attempts: int | None, max_age: float | None
) -> GatewayConfig:
    """*config* with the demo's ``--delivery-max-attempts``/``--delivery-max-age``, checked
    by the same model as ``gateway.yaml`` (a bad value is a ConfigError naming it)."""
    changes = {
        key: value
        for key, value in (("max_attempts", max_attempts), ("max_age", max_age))
        if value is not None
    }
    if not changes:
        return config
    settings = {**config.delivery.model_dump(), **changes}
    try:
        delivery = DeliveryConfig.model_validate(settings)
    except ValidationError as exc:
        raise DemoFileError(
            f"--delivery-{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}".replace("_", "-")
        ) from exc
    return config.model_copy(update={"delivery": delivery})


async def start_example_servers(
    config: GatewayConfig, registers: Path | None = None
) -> tuple[GatewayConfig, list[web.AppRunner]]:
    """Start one example server per route on a free loopback port and point the routes at
    them: an example register for a route that a fixture file in *registers* names
    (``config/demo/registers/*.yaml``), else an example resource server. The adresboek's
    endpoints, the routes' configured upstreams, move along. Returns the new configuration
    and the runners to clean up."""
    from gateway.examples.register import create_register_app, register_routes
    from gateway.examples.resource_server import create_resource_server_app
    from gateway.examples.rest_apis import create_rest_apis_app

    fixtures = register_routes(registers) if registers is not None else {}
    runners: list[web.AppRunner] = []
    routes = []
    rest_origin: str | None = None
    for route in config.routes:
        if route.rest is not None:
            # One example app serves every REST API (seeds 000, 004) at its own paths.
            if rest_origin is None:
                fixture = registers.parent / KETENINDEX_FIXTURE if registers else None
                runner = await _start(create_rest_apis_app(fixture))
                runners.append(runner)
                rest_origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
            routes.append(route.model_copy(update={"upstream": rest_origin}))
            continue
        assert route.deelnemer is not None
        name = route.deelnemer.name or f"{route.deelnemer.id_type} {route.deelnemer.id}"
        fixture = fixtures.get(route.path)
        if fixture is not None and route.schema is None:
            raise RegisterDataError(f"{fixture}: route {route.path} has no schema: to execute on")
        app = (
            create_register_app(route.schema, fixture)
            if fixture and route.schema
            else create_resource_server_app(name)
        )
        runner = await _start(app)
        runners.append(runner)
        port = runner.addresses[0][1]
        routes.append(route.model_copy(update={"upstream": f"http://127.0.0.1:{port}/graphql"}))
    update: dict[str, Any] = {"routes": tuple(routes)}
    if config.adresboek is not None:
        # The demo adresboek names the routes' configured upstreams: follow them.
        moved = {old.upstream: new.upstream for old, new in zip(config.routes, routes, strict=True)}
        update["adresboek"] = config.adresboek.model_copy(update={"moved": moved})
    return config.model_copy(update=update), runners


async def _start(app: web.Application) -> web.AppRunner:
    """Run an example server on a free loopback port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def _demo_main(
    config: GatewayConfig, texts: DemoTexts, sock: socket.socket, *, bundled: bool
) -> int:
    runners: list[web.AppRunner] = []
    try:
        if bundled:
            config, runners = await start_example_servers(config, texts.registers)
        runners += await start_gateway(config, config.server.host, config.server.port, sock=sock)
        print(demo_instructions(config, texts), flush=True)
        await wait_for_stop()
        print("\nstopping", file=sys.stderr)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    return 0


def demo_instructions(config: GatewayConfig, texts: DemoTexts) -> str:
    """Paste-ready curl commands for the running demo: ``curls.txt`` filled in for *config*."""
    return texts.curls.format(
        base=config.public_url,
        routes="\n".join(f"  {r.path} -> {r.upstream}" for r in config.routes),
        allowed=shlex.quote(json.dumps(texts.allowed)),
        refused=shlex.quote(json.dumps(texts.refused)),
    )
