"""Building the PEP from the configuration: routes, shared components, lifecycle.

At setup (once): one token verifier, one upstream pool (a session per origin), one GraphQL
analyser per distinct schema (sharing its parse cache), one policy store per distinct policy
path tuple, and a :class:`RouteHandler` per route. On startup the JWKS client and upstream
sessions open, policy watching starts (when configured) and SIGHUP reloads every policy
store; on cleanup all of it stops again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from gateway.config.model import GatewayConfig, RouteConfig
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import load_schema, route_schema_path
from gateway.observability.events import Observer
from gateway.observability.health import add_check
from gateway.pep.catalogus import setup_catalogus
from gateway.pep.gates import route_facts
from gateway.pep.lookups import Lookups
from gateway.pep.pip import PipClient, Signer, pip_lookups, warn_unknown_sources
from gateway.pep.pipeline import RouteHandler, RoutePlan
from gateway.policy import PolicyStore
from gateway.proxy.upstream import UpstreamPool
from gateway.tokens.jwks import RemoteJwks
from gateway.tokens.verifier import BuiltinKeys, TokenVerifier

log = structlog.get_logger("gateway.pep")


@dataclass(slots=True)
class Pep:
    """The PEP's shared components (one set per application)."""

    verifier: TokenVerifier
    upstreams: UpstreamPool
    pip: PipClient
    """Asks registers for the facts the policies' ``lookups:`` declare."""
    analysers: dict[Path | None, Analyser] = field(default_factory=dict)
    policies: dict[tuple[Path, ...], PolicyStore] = field(default_factory=dict)
    handlers: dict[str, RouteHandler] = field(default_factory=dict)

    def reload_policies(self) -> None:
        """Reload every policy store (SIGHUP); a store that fails keeps its last good set."""
        for store in self.policies.values():
            try:
                store.reload()
            except Exception:
                log.exception("policy_reload_failed")


PEP: web.AppKey[Pep] = web.AppKey("pep", Pep)


def build_pep(config: GatewayConfig, keystore: BuiltinKeys | None, observer: Observer) -> Pep:
    """Build the PEP's components and route plans; raises when a policy does not load."""
    builtin = any(issuer.builtin for issuer in config.tokens.trusted_issuers)
    pep = Pep(
        verifier=TokenVerifier(config.tokens, keystore if builtin else None, observer),
        upstreams=UpstreamPool(observer),
        pip=PipClient(config, keystore if isinstance(keystore, Signer) else None),
    )
    for route in config.routes:
        store = _policy(pep, config, route, observer)
        plan = RoutePlan(
            config=route,
            facts=route_facts(route),
            analyser=_analyser(pep, config, route, observer),
            policy=store,
            upstream=pep.upstreams.register(route),
            max_body_bytes=config.server.max_body_bytes,
            lookups=Lookups(pip_lookups(store, pep.pip), timeout=config.pip.timeout),
        )
        pep.handlers[route.path] = RouteHandler(plan, pep.verifier, observer)
    for store in pep.policies.values():
        warn_unknown_sources(store.active, config)
    return pep


def _analyser(pep: Pep, config: GatewayConfig, route: RouteConfig, observer: Observer) -> Analyser:
    """The route's analyser: validating against its schema (the bundled network schema
    unless the route names another), or, with an explicit ``schema: none``, not validating
    (warned about: the upstream must then validate, see docs/security.md)."""
    key = route_schema_path(route)
    if key is None:
        log.warning(
            "schema_validation_off",
            route=route.path,
            hint="the route sets `schema: none`; its upstream must validate GraphQL",
        )
    analyser = pep.analysers.get(key)
    if analyser is None:
        analyser = Analyser(
            config.graphql.limits,
            cache_size=config.graphql.cache_size,
            schema=load_schema(key) if key is not None else None,
            observer=observer,
        )
        pep.analysers[key] = analyser
    return analyser


def _policy(pep: Pep, config: GatewayConfig, route: RouteConfig, observer: Observer) -> PolicyStore:
    store = pep.policies.get(route.policies)
    if store is None:
        store = PolicyStore(
            route.policies,
            environment=config.policy.environment,
            shadow=config.policy.shadow,
            observer=observer,
            require_tests=config.policy.require_tests,
        )
        # The first load is a (re)load too: without this, nid_gateway_policy_loaded would
        # show no version until the first hot reload.
        observer.policy_reload("ok", store.version)
        pep.policies[route.policies] = store
    return store


def setup_pep(
    app: web.Application, config: GatewayConfig, keystore: BuiltinKeys | None, observer: Observer
) -> Pep:
    """Add one PEP route per configured route to *app*, with readiness checks and lifecycle,
    and the notificatietype catalogue read from the routes' policy sets.

    Raises ``PolicyLoadError`` (the app must not start) when a policy does not load.
    """
    pep = build_pep(config, keystore, observer)
    app[PEP] = pep
    for path, handler in pep.handlers.items():
        app.router.add_route("*", path, handler.handle)
        add_check(app, f"upstream:{path}", handler.plan.upstream.reachable)
    add_check(app, "policies", _policies_check(pep))
    setup_catalogus(app, config, pep.verifier, pep.policies)
    for issuer, jwks in pep.verifier.remote.items():
        add_check(app, f"jwks:{issuer}", _jwks_check(jwks))
    app.cleanup_ctx.append(_lifecycle(pep, config))
    return pep


def _policies_check(pep: Pep) -> Callable[[], Any]:
    async def check() -> tuple[bool, dict[str, Any]]:
        versions = {
            ",".join(str(p) for p in paths): store.version for paths, store in pep.policies.items()
        }
        return all(versions.values()), {"versions": versions}

    return check


def _jwks_check(jwks: RemoteJwks) -> Callable[[], Any]:
    async def check() -> tuple[bool, dict[str, Any]]:
        return jwks.loaded, {"url": jwks.url}

    return check


def _lifecycle(
    pep: Pep, config: GatewayConfig
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await pep.upstreams.start()
        await pep.pip.start()
        await pep.verifier.start()
        stop_watching = asyncio.Event()
        watchers = []
        if config.policy.watch:
            watchers = [
                asyncio.create_task(store.watch(stop_watching, config.policy.watch_interval))
                for store in pep.policies.values()
            ]
        loop = asyncio.get_running_loop()
        hup = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP")
        if hup:
            loop.add_signal_handler(signal.SIGHUP, pep.reload_policies)
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            stop_watching.set()
            await asyncio.gather(*watchers)
            await pep.verifier.close()
            await pep.pip.close()
            await pep.upstreams.close()

    return lifecycle
