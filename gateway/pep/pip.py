"""The policy information point: runs a policy's ``lookups:`` against a register.

A lookup is declared in the policy (:mod:`gateway.policy.lookups`: when, source route,
query, variables, yields); here it becomes a :class:`~gateway.pep.lookups.FactLookup` of
the route. For one request it asks the source route's upstream (the register) with the
gateway's **own** token, not the caller's: the gateway signs an access token for itself
with the built-in issuer (``sub`` = ``pip.client_id``, ``aud`` = the source route's
audience, ``scope`` = the route's ``scope_default``), sent as ``Authorization: Bearer`` and,
as for forwarded requests, as the ``claims`` header.

Answers are kept in a small TTL cache keyed by the source, the query and its variables
(``pip.cache_ttl``, ``pip.cache_size``): a PIP-backed decision costs at most one register
round trip per TTL, and concurrent requests for the same key share one round trip. A
register that cannot answer (connection refused, a non-200 status, GraphQL errors, an
answer without the asked shape, the timeout of :class:`~gateway.pep.lookups.Lookups`)
raises; the lookup step then refuses with 503 (fail closed). Nothing is cached on failure
and nothing secret is logged (no token, no variables).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
import orjson
import structlog
from cachetools import TTLCache

from gateway.config.model import GatewayConfig, PipConfig, RouteConfig
from gateway.facts import DecisionInput, OperationFacts, RouteFacts, TokenFacts
from gateway.policy.engine import PolicySet
from gateway.policy.lookups import PEILDATUM, AnswerShapeError, LookupSpec

log = structlog.get_logger("gateway.pep")

try:
    NETHERLANDS: dt.tzinfo = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # an image without tzdata: within two hours of the Dutch date
    NETHERLANDS = dt.UTC
TOKEN_MARGIN = 30
"""Seconds before expiry at which the gateway signs itself a new token."""
DECLARED_CACHE_SIZE = 256
"""Operations (type, root field) whose declared lookups :class:`PipLookups` remembers."""


@runtime_checkable
class Signer(Protocol):
    """What the PIP needs from the built-in issuer's key store."""

    def sign(self, claims: dict[str, Any]) -> str: ...


class PipError(Exception):
    """The register did not answer the lookup usably (the message names how, no secrets)."""


class Policies(Protocol):
    """The route's policy store: the set currently enforced."""

    @property
    def active(self) -> PolicySet: ...


class PipClient:
    """Asks registers for lookups: one HTTP session, the gateway's tokens, the cache."""

    def __init__(self, config: GatewayConfig, signer: Signer | None) -> None:
        self.settings: PipConfig = config.pip
        self.issuer = config.issuer
        self.routes: dict[str, RouteConfig] = {r.path: r for r in config.routes}
        self._signer = signer
        self._tokens: dict[str, tuple[str, str, float]] = {}
        self._cache: TTLCache[tuple[str, str, bytes], dict[str, list[Any]]] = TTLCache(
            maxsize=self.settings.cache_size, ttl=max(self.settings.cache_ttl, 0.001)
        )
        self._pending: dict[tuple[str, str, bytes], asyncio.Future[dict[str, list[Any]]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session (app startup)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        """Close the session (app cleanup)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def ask(self, spec: LookupSpec, variables: Mapping[str, Any]) -> dict[str, list[Any]]:
        """The yields of *spec* for *variables*, from the cache or the register."""
        if self.settings.cache_ttl <= 0:
            return spec.extract(await self._fetch(spec, variables))
        key = (spec.route, spec.query, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pending = self._pending.get(key)
        if pending is not None:  # the same question is on its way: share its answer
            return await asyncio.shield(pending)
        future: asyncio.Future[dict[str, list[Any]]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = spec.extract(await self._fetch(spec, variables))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(answer)
            self._cache[key] = answer
            return answer
        finally:
            del self._pending[key]

    async def _fetch(self, spec: LookupSpec, variables: Mapping[str, Any]) -> Any:
        route = self.routes.get(spec.route)
        if route is None:  # logged at setup (pip_source_not_configured)
            raise PipError(f"no route {spec.route}")
        if self._session is None:
            raise PipError("the PIP client is not started")
        token, claims = self._token(route)
        headers = {
            "Authorization": f"Bearer {token}",
            "claims": claims,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Request-ID": str(uuid.uuid4()),
        }
        body = orjson.dumps({"query": spec.query, "variables": variables})
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        try:
            async with self._session.post(
                route.upstream, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise PipError(f"{spec.route} answered {response.status}")
                payload = await response.read()
        except aiohttp.ClientError as exc:
            raise PipError(f"{spec.route}: {type(exc).__name__}") from None
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise AnswerShapeError("the answer is not JSON") from None

    def _token(self, route: RouteConfig) -> tuple[str, str]:
        """The gateway's own token for *route* (and its payload as the ``claims`` header),
        signed again shortly before it expires."""
        now = time.time()
        held = self._tokens.get(route.path)
        if held is not None and held[2] - TOKEN_MARGIN > now:
            return held[0], held[1]
        if self._signer is None:
            raise PipError("no signing key: the PIP signs its token with the built-in issuer")
        issued = int(now)
        scopes = [route.scope_default] if route.scope_default else []
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.settings.client_id,
            "client_id": self.settings.client_id,
            "aud": route.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.settings.token_lifetime,
            "jti": str(uuid.uuid4()),
            "scope": " ".join(scopes),
            "scopes": scopes,
        }
        token = self._signer.sign(claims)
        header = orjson.dumps(claims).decode("ascii", errors="replace")
        self._tokens[route.path] = (token, header, float(claims["exp"]))
        return token, header


def peildatum() -> str:
    """The date a request is decided on, in the Netherlands."""
    return dt.datetime.now(NETHERLANDS).date().isoformat()


class PipLookup:
    """One declared lookup name of a route's policy set, as a
    :class:`~gateway.pep.lookups.FactLookup`. The declaration is read from the store's
    active set on every request, so a reloaded policy's query takes effect at once."""

    __slots__ = ("client", "name", "policies")

    def __init__(self, name: str, policies: Policies, client: PipClient) -> None:
        self.name = name
        self.policies = policies
        self.client = client

    def _spec(
        self, token: TokenFacts, operation: OperationFacts, route: RouteFacts
    ) -> tuple[LookupSpec, DecisionInput] | None:
        """The declaration the deciding policy has under this name, if this request wants
        it (most requests: one dict lookup and no declaration, nothing more)."""
        policy = self.policies.active.policy_for(operation.operation_type, operation.root_field)
        for spec in policy.lookups if policy is not None else ():
            if spec.name == self.name:
                facts = DecisionInput(token, operation, route)
                return (spec, facts) if spec.wanted(facts) else None
        return None

    def wanted(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> bool:
        """Whether the deciding policy declares this lookup and this request wants it."""
        return self._spec(token, operation, route) is not None

    async def facts(
        self, token: TokenFacts, operation: OperationFacts, route: RouteFacts
    ) -> dict[str, Any]:
        """The yields, plus ``peildatum`` (never cached: the date of this request)."""
        found = self._spec(token, operation, route)
        if found is None:  # the set was swapped between wanted and facts
            raise PipError(f"lookup {self.name} is no longer declared")
        spec, facts = found
        try:
            answer = await self.client.ask(spec, spec.variables_for(facts))
        except (PipError, AnswerShapeError) as exc:
            log.warning("pip_failed", lookup=self.name, source=spec.route, error=str(exc))
            raise
        return {**answer, PEILDATUM: peildatum()}


class PipLookups:
    """The policy information point's lookups of one route, following its store's active
    set: a name a hot-reloaded policy declares is asked from then on, without a restart
    (and a name it drops no longer is). Rebuilt only when the set changes: per request, one
    identity test."""

    __slots__ = ("_client", "_current", "_declared", "_declared_set", "_made", "_policies", "_set")

    def __init__(self, policies: Policies, client: PipClient) -> None:
        self._policies = policies
        self._client = client
        self._set: PolicySet | None = None
        self._current: tuple[PipLookup, ...] = ()
        self._made: dict[str, PipLookup] = {}
        self._declared_set: PolicySet | None = None
        self._declared: dict[tuple[str, str], tuple[PipLookup, ...]] = {}

    def current(self) -> tuple[PipLookup, ...]:
        """One :class:`PipLookup` per name the active set declares."""
        active = self._policies.active
        if active is not self._set:
            names = dict.fromkeys(lk.name for p in active.policies for lk in p.lookups)
            self._current = tuple(self._lookup(name) for name in names)
            self._set = active
        return self._current

    def declared(self, operation: OperationFacts) -> tuple[PipLookup, ...]:
        """The current lookups the policy deciding *operation* declares (what
        :meth:`PipLookup.wanted` would find for each). Remembered per operation type and
        root field for the active set it was found in: a hot reload (another set object)
        starts afresh, so a reloaded policy's declarations count from its first request."""
        active = self._policies.active
        key = (operation.operation_type, operation.root_field)
        if active is self._declared_set:
            found = self._declared.get(key)
            if found is not None:
                return found
        else:
            self._declared = {}
            self._declared_set = active
        policy = active.policy_for(*key)
        found = ()
        if policy is not None and policy.lookups:
            names = {spec.name for spec in policy.lookups}
            found = tuple(lookup for lookup in self.current() if lookup.name in names)
        if len(self._declared) >= DECLARED_CACHE_SIZE:  # root fields a schema-less route sees
            self._declared.clear()
        self._declared[key] = found
        return found

    def _lookup(self, name: str) -> PipLookup:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = PipLookup(name, self._policies, self._client)
        return found


def warn_unknown_sources(policy_set: PolicySet, config: GatewayConfig) -> None:
    """Log each lookup whose source route is not configured: a request that wants it is
    refused with 503 (a deelnemer's gateway may load the network's policies without the
    register routes)."""
    routes = {r.path for r in config.routes}
    for policy in policy_set.policies:
        for lookup in policy.lookups:
            if lookup.route not in routes:
                log.warning(
                    "pip_source_not_configured",
                    lookup=lookup.name,
                    source=lookup.route,
                    at=lookup.location,
                    hint="requests that need this lookup are refused (503)",
                )
