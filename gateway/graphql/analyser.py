"""The analyser: GraphQL request in, :class:`~gateway.facts.OperationFacts` out.

Parsing (~0.5 ms for the seed mutation) and schema validation (~1.2 ms) cost far
more than a policy decision, so everything about a query text that does not depend
on its variables is done once and kept in a bounded LRU cache (cachetools) keyed by the
text: the parsed document, the limit checks, the schema-validation result and, per
``operationName``, the compiled :class:`~gateway.graphql.plan.OperationPlan`. A
request that hits the cache only coerces its variables and fills them into the plan.
Refusals that follow from the text alone are cached too (as class + message, never
as a raised instance); decisions never are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
)

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts
from gateway.graphql.limits import over_limit
from gateway.graphql.plan import OperationPlan, check_values, compile_operation
from gateway.graphql.request import GraphQLRequest
from gateway.graphql.validation import validation_errors
from gateway.graphql.written import Exact
from gateway.observability.events import NullObserver, Observer
from gateway.refusals import (
    BadRequest,
    MultipleOperations,
    NoOperation,
    QuerySyntaxError,
    Refusal,
)

__all__ = ["Analyser"]

_Stored = tuple[type[Refusal], str, str]
"""A refusal kept in the cache: class, message, reason (re-raised as a new instance)."""


def _store(refusal: Refusal) -> _Stored:
    return type(refusal), refusal.message, refusal.reason


def _raise(stored: _Stored) -> None:
    cls, message, reason = stored
    raise cls(message, reason=reason)


def _too_deep() -> BadRequest:
    # Nesting deep enough to exhaust the interpreter stack (query or variables): refused
    # like any other malformed input, never a 500.
    return BadRequest("The request is nested too deeply to analyse", reason="nested_too_deeply")


class _Document:
    """One cached query text: its parse result and its plans per operation name."""

    __slots__ = (
        "ast",
        "fragments",
        "operations",
        "plans",
        "refusal",
        "validation",
    )

    def __init__(self) -> None:
        self.ast: DocumentNode | None = None
        self.refusal: _Stored | None = None
        self.operations: list[OperationDefinitionNode] = []
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.plans: dict[str | None, OperationPlan | _Stored] = {}
        self.validation: list[GraphQLError] | None = None


class Analyser:
    """Turns GraphQL requests into :class:`OperationFacts`, caching per query text.

    One analyser per schema: a route that validates against a schema gets an analyser
    built with it; routes without validation can share one. Not thread-safe (one per
    event loop), which is how the gateway runs.
    """

    def __init__(
        self,
        limits: GraphQLLimits,
        *,
        cache_size: int = 1024,
        schema: GraphQLSchema | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.limits = limits
        self.schema = schema
        self.cache_size = max(0, cache_size)
        self.observer: Observer = observer if observer is not None else NullObserver()
        self._cache: LRUCache[str, _Document] = LRUCache(maxsize=max(1, self.cache_size))
        # The text, operation name and plan of the last lookup, when it was a plan (senders
        # repeat one text): that text is the cache's most recently used already, so the same
        # text again needs no LRU lookup or update. Cleared by every other lookup, which is
        # then the most recent one (and the only kind that inserts, so it never dangles).
        # The plan's written facts function rides along (one attribute load less per hit).
        self._last: tuple[str, str | None, OperationPlan, Exact | None] | None = None

    def __len__(self) -> int:
        """Number of query texts currently cached."""
        return len(self._cache)

    def analyse(self, request: GraphQLRequest) -> OperationFacts:
        """The facts of the operation ``request`` will execute.

        Raises a :class:`~gateway.refusals.Refusal` for anything that must not be
        forwarded: syntax (:class:`QuerySyntaxError`), limits (:class:`LimitExceeded`),
        operation choice (:class:`NoOperation`, :class:`MultipleOperations`,
        :class:`MultipleRootFields`), schema and variable errors (:class:`ValidationFailed`).
        """
        return self.analyse_fields(request.query, request.variables, request.operation_name)

    def analyse_fields(
        self, query: str, variables: Mapping[str, Any], operation_name: str | None
    ) -> OperationFacts:
        """:meth:`analyse` of a request given by its fields (no :class:`GraphQLRequest`)."""
        last = self._last
        if last is not None and last[0] == query and last[1] == operation_name:
            self.observer.parse_cache(True)
            exact = last[3]
            if exact is not None:
                # The plan's written function (gateway/graphql/written.py): None when the
                # variables are not valid, then the general path below says why.
                facts = exact(variables, last[2])
                if facts is not None:
                    return facts
            elif last[2].exact is not None:
                # Written since this text was looked up (at the plan's second use).
                self._last = (query, operation_name, last[2], last[2].exact)
            try:
                return last[2].facts(variables)
            except RecursionError:
                raise _too_deep() from None
        if len(query) > self.limits.max_query_length:
            raise over_limit(
                f"The query is {len(query)} characters long",
                "max_query_length",
                self.limits.max_query_length,
            )
        try:
            plan = self._plan(query, operation_name)
            return plan.facts(variables)
        except RecursionError:
            raise _too_deep() from None

    def _document(self, query: str) -> _Document:
        # Keyed by the text itself: a str hash is computed once per request text (and is
        # cheaper than a digest); a hit compares the whole text, so no two texts ever share
        # an entry. The text is small beside the document it keys.
        try:
            cached = self._cache[query]  # one lookup (``get`` makes two) and the LRU update
        except KeyError:
            pass
        else:
            self.observer.parse_cache(True)
            return cached
        self.observer.parse_cache(False)
        document = self._load(query)
        if self.cache_size:
            self._cache[query] = document
        return document

    def _load(self, query: str) -> _Document:
        """Parse and check a query text that is not in the cache."""
        doc = _Document()
        try:
            ast = self._parse(query)
            check_values(ast, self.limits)
        except Refusal as refusal:
            doc.refusal = _store(refusal)
            return doc
        doc.ast = ast
        for definition in ast.definitions:
            if isinstance(definition, OperationDefinitionNode):
                doc.operations.append(definition)
            elif isinstance(definition, FragmentDefinitionNode):
                # Two fragments of one name fail validation before any plan is used.
                doc.fragments.setdefault(definition.name.value, definition)
        return doc

    def _parse(self, query: str) -> DocumentNode:
        try:
            return parse(
                query,
                no_location=True,
                max_tokens=self.limits.max_tokens,
                allow_empty_selection_sets=False,
            )
        except GraphQLSyntaxError as exc:
            if "contains more than" in exc.message and "tokens" in exc.message:
                raise over_limit(
                    f"The query has more than {self.limits.max_tokens} tokens",
                    "max_tokens",
                    self.limits.max_tokens,
                ) from None
            raise QuerySyntaxError(reason=exc.message) from None
        except RecursionError:
            raise QuerySyntaxError(reason="query nested too deeply to parse") from None

    def _plan(self, query: str, operation_name: str | None) -> OperationPlan:
        self._last = None
        doc = self._document(query)
        if doc.refusal is not None:
            _raise(doc.refusal)
        plan = doc.plans.get(operation_name)
        if plan is None:
            plan = self._compile(doc, operation_name)
            if operation_name is None or isinstance(plan, OperationPlan):
                # Bounded: only None and the one operation's own name are ever stored.
                doc.plans[operation_name] = plan
        if isinstance(plan, tuple):
            _raise(plan)
        assert isinstance(plan, OperationPlan)
        if self.cache_size:
            self._last = (query, operation_name, plan, plan.exact)
        return plan

    def _compile(self, doc: _Document, operation_name: str | None) -> OperationPlan | _Stored:
        """The plan for the document's one operation, or the refusal it earns.

        A document holds exactly one operation, even when ``operationName`` picks one
        (the network's rule): what the gateway analyses can then be nothing but what any
        executor runs. Limits are checked while the plan is compiled, before the (costlier)
        validation, which then runs once per document.
        """
        try:
            if not doc.operations:
                raise NoOperation(reason="The document contains no operation.")
            if len(doc.operations) > 1:
                raise MultipleOperations()
            operation = doc.operations[0]
            if operation_name is not None and (
                operation.name is None or operation.name.value != operation_name
            ):
                raise NoOperation(reason=f'Unknown operation named "{operation_name}".')
            plan = compile_operation(
                operation, doc.fragments, schema=self.schema, limits=self.limits
            )
            if doc.validation is None:
                assert doc.ast is not None
                doc.validation = validation_errors(doc.ast, self.schema)
            if doc.validation:
                raise plan.fail(doc.validation[0].message)
            return plan
        except Refusal as refusal:
            return _store(refusal)
