"""Facts the request does not carry, gathered before the policy decides.

Some rules need context beyond the token, the body and the route: the caller's own
bemiddelingspecificaties in a register (a policy information point), or whether an
``ontvangerKenmerk`` is an active subscription (the subscription store). Each source is a
:class:`FactLookup`: it says from the operation whether it has anything to add, and
fetches its facts (I/O allowed here, never in the policy engine). Its answer reaches the
policy as ``extra.<name>`` in :class:`~gateway.facts.DecisionInput`, so the decision stays
a pure function of facts and ``policy explain``/``*.test.yaml`` can pass the same facts.

A lookup that fails or does not answer in time refuses the request (fail closed, 503):
a rule that needs context must never be decided without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from gateway.facts import OperationFacts, RouteFacts, TokenFacts
from gateway.refusals import FactsUnavailable

log = structlog.get_logger("gateway.pep")

NO_FACTS: Mapping[str, Any] = {}


class FactLookup(Protocol):
    """One source of context facts, consulted before ``decide``."""

    name: str
    """The facts appear as ``extra.<name>``."""

    def wanted(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> bool:
        """Whether this request needs the lookup at all (cheap, no I/O)."""
        ...

    async def facts(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> Any:
        """The facts for this request; raises when the source cannot answer."""
        ...


class Following(Protocol):
    """Lookups that follow something that changes while the gateway runs (the policy
    information point's follow the route's active policy set: a hot reload may add one)."""

    def current(self) -> Sequence[FactLookup]:
        """The lookups now (cheap when nothing changed: called once or twice per request)."""
        ...

    def declared(self, operation: OperationFacts) -> Sequence[FactLookup]:
        """Those of :meth:`current` that the policy deciding *operation* declares: only
        they can be wanted (most operations' policies declare none)."""
        ...


class Lookups:
    """The ordered lookups of one route; an empty set costs one truth test per request."""

    __slots__ = ("_following", "_lookups", "timeout")

    def __init__(
        self,
        lookups: Sequence[FactLookup] = (),
        *,
        timeout: float = 2.0,
        following: Following | None = None,
    ) -> None:
        self._lookups = tuple(lookups)
        self._following = following
        self.timeout = timeout

    def __bool__(self) -> bool:
        return bool(self._lookups) or (
            self._following is not None and bool(self._following.current())
        )

    def wanted(
        self, token: TokenFacts, operation: OperationFacts, route: RouteFacts
    ) -> list[FactLookup]:
        """The lookups this request wants (cheap, no I/O: an empty list for most)."""
        candidates = self._lookups
        if self._following is not None:
            declared = self._following.declared(operation)
            if declared:
                candidates = (*declared, *candidates)
        if not candidates:
            return []
        return [lk for lk in candidates if lk.wanted(token, operation, route)]

    async def gather(
        self,
        token: TokenFacts,
        operation: OperationFacts,
        route: RouteFacts,
        wanted: Sequence[FactLookup] | None = None,
    ) -> Mapping[str, Any]:
        """``{name: facts}`` of every *wanted* lookup (default: :meth:`wanted`'s), run
        concurrently within the timeout; :class:`FactsUnavailable` when any of them fails
        (fail closed)."""
        if wanted is None:
            wanted = self.wanted(token, operation, route)
        if not wanted:
            return NO_FACTS
        try:
            async with asyncio.timeout(self.timeout):
                answers = await asyncio.gather(
                    *(lk.facts(token, operation, route) for lk in wanted),
                    return_exceptions=True,
                )
        except TimeoutError as exc:
            names = ",".join(lk.name for lk in wanted)
            raise self._failed(names, "timeout", route) from exc
        facts = {}
        for lookup, answer in zip(wanted, answers, strict=True):
            if isinstance(answer, BaseException):
                raise self._failed(lookup.name, type(answer).__name__, route) from answer
            facts[lookup.name] = answer
        return facts

    @staticmethod
    def _failed(name: str, error: str, route: RouteFacts) -> FactsUnavailable:
        log.warning("lookup_failed", lookup=name, error=error, route=route.path)
        return FactsUnavailable(reason=f"facts unavailable: {name}: {error}")


NO_LOOKUPS = Lookups()
"""The lookups of a route whose policies need no context."""
