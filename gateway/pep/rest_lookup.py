"""A REST route's lookups: context facts from another route's upstream (a register).

The Ketenindex knows, from the *Uitkomst Overleg Beschikbaar gedeeld* event its voorzitter
published, who chairs an overleg and who takes part in it. A request that names an overleg
(the uitkomst at the voorzitter, a query for its events, an *inzage verzoek* event) is
decided with that answer as ``extra.<name>``. This is one :class:`FactLookup` on the seam of
:mod:`gateway.pep.lookups`: small on purpose, so a general policy-declared information
point can take it over.

The register is asked directly at its route's upstream (no token: it is the gateway's own
question, never the caller's), through the same pooled session the route forwards with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config.errors import ConfigError
from gateway.config.model import RestLookup, RouteConfig
from gateway.facts import OperationFacts, RestFacts, RouteFacts, TokenFacts
from gateway.pep.lookups import NO_LOOKUPS, Lookups
from gateway.proxy.upstream import UpstreamPool, origin_of

UNKNOWN: dict[str, Any] = {}
"""The facts of a key the register does not know (its 404)."""


def _key(rest: RestFacts | None, sources: Sequence[str]) -> str | None:
    """The first present key fact (``params.id``, ``query.overleg``, ``body.overlegId``)."""
    if rest is None:
        return None
    for source in sources:
        kind, _, name = source.partition(".")
        holder = {"params": rest.params, "query": rest.query, "body": rest.body}.get(kind)
        value = holder.get(name) if isinstance(holder, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None


_ACCEPT_JSON = {"Accept": "application/json"}


class RegisterLookup:
    """``GET <origin><path with {key}>`` at a register route's upstream."""

    def __init__(self, spec: RestLookup, origin: str, pool: UpstreamPool) -> None:
        self.name = spec.name
        self._spec = spec
        self._origin = origin
        self._pool = pool

    def wanted(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> bool:
        return _key(operation.rest, self._spec.key) is not None

    async def facts(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> Any:
        key = _key(operation.rest, self._spec.key)
        assert key is not None
        target = self._spec.path.replace("{key}", quote(key, safe=""))
        status, body = await self._pool.fetch(self._origin, target, _ACCEPT_JSON)
        if status == 404:
            return UNKNOWN
        if status != 200:
            raise LookupError(f"register answered {status}")
        return orjson.loads(body)


def rest_lookups(route: RouteConfig, routes: Sequence[RouteConfig], pool: UpstreamPool) -> Lookups:
    """The lookups *route* declares, each asking the upstream of the route it names."""
    if route.rest is None or not route.rest.lookups:
        return NO_LOOKUPS
    by_path = {r.path: r for r in routes}
    lookups = []
    for spec in route.rest.lookups:
        register = by_path.get(spec.route)
        if register is None:
            raise ConfigError(
                f"route {route.path}: lookup {spec.name!r} names no route {spec.route!r}",
                hint="name the path of a configured route, e.g. /ketenindex",
            )
        lookups.append(RegisterLookup(spec, origin_of(register.upstream), pool))
    return Lookups(lookups)
