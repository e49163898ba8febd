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

from gateway.adresboek import AdresboekSource
from gateway.config.model import GatewayConfig, RouteConfig
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import load_schema, route_schema_path
from gateway.observability.events import Observer
from gateway.observability.health import add_check
from gateway.observability.http import counted, counted_by_handler
from gateway.pep.abonnementen import (
    StoreRef,
    SubscriptionLookup,
    SubscriptionRecorder,
    setup_abonnementen,
)
from gateway.pep.adresboek import setup_adresboek
from gateway.pep.authzen import setup_authzen
from gateway.pep.catalogus import setup_catalogus
from gateway.pep.central import CentralRouteHandler, central_route
from gateway.pep.gates import route_facts
from gateway.pep.lookups import FactLookup, Lookups
from gateway.pep.pip import PipClient, PipLookups, Signer, warn_unknown_sources
from gateway.pep.pipeline import RouteHandler, RoutePlan
from gateway.pep.rest import RestGates, RestRouteHandler, RestRoutePlan, policy_templates
from gateway.pep.rest_lookup import rest_lookups
from gateway.policy import PolicyStore
from gateway.proxy.upstream import UpstreamPool
from gateway.rest.analyser import RestAnalyser, load_openapi
from gateway.store.api import Store, StoreUnavailable
from gateway.store.setup import STORE
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
    handlers: dict[str, RouteHandler | RestRouteHandler] = field(default_factory=dict)
    adresboek: AdresboekSource | None = None
    """The network's adresboek (``GET /adresboek``, the central route's recipients)."""
    central: CentralRouteHandler | None = None
    """The central notification route ``POST /notificaties/graphql``, when configured."""

    def reload_policies(self) -> None:
        """Reload every policy store and the adresboek (SIGHUP); whatever fails keeps its
        last good version."""
        for store in self.policies.values():
            try:
                store.reload()
            except Exception:
                log.exception("policy_reload_failed")
        if self.adresboek is not None:
            try:
                self.adresboek.reload()
            except Exception:
                log.exception("adresboek_reload_failed")


PEP: web.AppKey[Pep] = web.AppKey("pep", Pep)


def build_pep(
    config: GatewayConfig,
    keystore: BuiltinKeys | None,
    observer: Observer,
    store: StoreRef | None = None,
) -> Pep:
    """Build the PEP's components and route plans; raises when a policy does not load.

    With *store* (the subscription store, opened later at start-up) every route reads
    ``extra.abonnement`` for the requests that name a subscription and records the
    subscriptions bronhouders confirm; without it, subscription mutations are refused
    (503) and no ``ontvangerKenmerk`` is valid."""
    builtin = any(issuer.builtin for issuer in config.tokens.trusted_issuers)
    pep = Pep(
        verifier=TokenVerifier(config.tokens, keystore if builtin else None, observer),
        upstreams=UpstreamPool(observer),
        pip=PipClient(config, keystore if isinstance(keystore, Signer) else None),
    )
    ref = store if store is not None else _no_store
    names = config.abonnementen
    stored: list[FactLookup] = [SubscriptionLookup(ref, names)] if store is not None else []
    recorder = SubscriptionRecorder(ref, names)
    for route in config.routes:
        if route.rest is not None:
            pep.handlers[route.path] = build_rest_handler(pep, config, route, observer)
            continue
        policy = _policy(pep, config, route, observer)
        plan = RoutePlan(
            config=route,
            facts=route_facts(route),
            analyser=_analyser(pep, config, route, observer),
            policy=policy,
            upstream=pep.upstreams.register(route),
            max_body_bytes=config.server.max_body_bytes,
            lookups=Lookups(
                stored, timeout=config.pip.timeout, following=PipLookups(policy, pep.pip)
            ),
            recorder=recorder,
        )
        pep.handlers[route.path] = RouteHandler(plan, pep.verifier, observer)
    for policy in pep.policies.values():
        warn_unknown_sources(policy.active, config)
    if config.adresboek is not None:
        pep.adresboek = AdresboekSource(config.adresboek, observer)
        version = pep.adresboek.active.version
        log.info("adresboek_loaded", version=version, file=str(config.adresboek.file))
    if config.notificaties is not None and pep.adresboek is not None:
        central_lookups = Lookups(stored, timeout=config.pip.timeout)
        pep.central = _central(pep, config, pep.adresboek, observer, central_lookups)
    return pep


def _no_store() -> Store:
    raise StoreUnavailable("no subscription store is configured (gateway.yaml: store)")


def build_rest_handler(
    pep: Pep, config: GatewayConfig, route: RouteConfig, observer: Observer
) -> RestRouteHandler:
    """The handler of a REST route: its OpenAPI document (checked now), its policy set's
    REST templates, its scope gate and its lookups."""
    assert route.rest is not None
    policy = _policy(pep, config, route, observer)
    plan = RestRoutePlan(
        config=route,
        gates=RestGates(
            route_facts(route),
            RestAnalyser(load_openapi(route), policy_templates(policy)),
            policy,
            route.rest.read_scope,
            route.rest.write_scope,
        ),
        upstream=pep.upstreams.register(route),
        max_body_bytes=config.server.max_body_bytes,
        lookups=rest_lookups(route, config.routes, pep.upstreams),
    )
    return RestRouteHandler(plan, pep.verifier, observer)


def _central(
    pep: Pep,
    config: GatewayConfig,
    adresboek: AdresboekSource,
    observer: Observer,
    lookups: Lookups,
) -> CentralRouteHandler:
    """The central notification route: a plan without deelnemer or upstream of its own."""
    assert config.notificaties is not None
    route = central_route(config.notificaties)
    plan = RoutePlan(
        config=route,
        facts=route_facts(route),
        analyser=_analyser(pep, config, route, observer),
        policy=_policy(pep, config, route, observer),
        upstream=None,
        max_body_bytes=config.server.max_body_bytes,
        lookups=lookups,
    )
    return CentralRouteHandler(
        plan,
        pep.verifier,
        observer,
        config=config.notificaties,
        adresboek=adresboek,
        upstreams=pep.upstreams,
    )


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
    the notificatietype catalogue read from the routes' policy sets, and the AuthZEN PDP
    endpoints deciding through the routes' own gates.

    Raises ``PolicyLoadError`` (the app must not start) when a policy does not load.
    """
    store = (lambda: app[STORE]) if config.store is not None else None
    pep = build_pep(config, keystore, observer, store)
    app[PEP] = pep
    for path, handler in pep.handlers.items():
        if isinstance(handler, RouteHandler):
            # The GraphQL routes count their own requests (on the per-request path, without
            # a wrapper's coroutine level: issue 17).
            route = app.router.add_route("*", path, handler.handle)
            handler.count_request = counted_by_handler(app, route)
        if isinstance(handler, RestRouteHandler):
            # A REST route's path is a prefix: every path below it is the route's.
            app.router.add_route("*", path, counted(app, handler.handle))
            app.router.add_route("*", path + "/{tail:.*}", counted(app, handler.handle))
        if handler.plan.upstream is not None:
            add_check(app, f"upstream:{path}", handler.plan.upstream.reachable)
    add_check(app, "policies", _policies_check(pep))
    setup_catalogus(app, config, pep.verifier, pep.policies)
    setup_abonnementen(app, config, pep.verifier)
    setup_authzen(app, config, pep.verifier, pep.handlers)
    if pep.adresboek is not None:
        setup_adresboek(app, config, pep.verifier, pep.adresboek)
    if pep.central is not None:
        route = app.router.add_route("*", pep.central.plan.config.path, pep.central.handle)
        pep.central.count_request = counted_by_handler(app, route)
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
            if pep.adresboek is not None:
                watch = pep.adresboek.watch(stop_watching, config.policy.watch_interval)
                watchers.append(asyncio.create_task(watch))
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
