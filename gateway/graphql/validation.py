"""Which of graphql-core's validation rules a document must pass before it is analysed.

The gateway decides on its analysis of a document and forwards the document unchanged, so
the analysis must be the one reading every executor agrees on. graphql-core's validation
rules are what make a document unambiguous: with them, no two fragments or operations share
a name (the analyser would read the first, many executors the last), no location carries
the same directive twice (``@include(if: true) @include(if: false)``: which one counts?),
every spread fragment exists and none spreads itself.

* With a schema (the default: every route validates against the bundled network schema or
  its own), every rule of the specification applies except ``NoUnusedVariablesRule``: real
  senders declare variables they do not use (``docs/graphql.md``), and an unused variable
  cannot change what executes.
* With ``schema: none``, the rules that need no schema still apply (:data:`DOCUMENT_RULES`),
  checked against :data:`DOCUMENT_SCHEMA`, which has the conventional root types
  (``Query``, ``Mutation``, ``Subscription``) and only the specified directives: a directive
  the gateway does not know (an upstream's own ``@defer``-like extension) could change what
  executes, so it is refused.
"""

from __future__ import annotations

from graphql import (
    DocumentNode,
    ExecutableDefinitionsRule,
    GraphQLError,
    GraphQLSchema,
    KnownDirectivesRule,
    KnownFragmentNamesRule,
    LoneAnonymousOperationRule,
    NoFragmentCyclesRule,
    NoUndefinedVariablesRule,
    NoUnusedFragmentsRule,
    NoUnusedVariablesRule,
    OperationType,
    UniqueArgumentNamesRule,
    UniqueDirectivesPerLocationRule,
    UniqueFragmentNamesRule,
    UniqueInputFieldNamesRule,
    UniqueOperationNamesRule,
    UniqueVariableNamesRule,
    build_schema,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule

__all__ = [
    "DOCUMENT_RULES",
    "DOCUMENT_SCHEMA",
    "SCHEMA_RULES",
    "root_type_name",
    "validation_errors",
]

MAX_ERRORS = 10

SCHEMA_RULES: tuple[type[ASTValidationRule], ...] = tuple(
    rule for rule in specified_rules if rule is not NoUnusedVariablesRule
)
"""Rules applied with a schema: the specification's, minus ``NoUnusedVariablesRule``."""

DOCUMENT_RULES: tuple[type[ASTValidationRule], ...] = (
    ExecutableDefinitionsRule,
    UniqueOperationNamesRule,
    LoneAnonymousOperationRule,
    UniqueFragmentNamesRule,
    KnownFragmentNamesRule,
    NoUnusedFragmentsRule,
    NoFragmentCyclesRule,
    UniqueVariableNamesRule,
    NoUndefinedVariablesRule,
    KnownDirectivesRule,
    UniqueDirectivesPerLocationRule,
    UniqueArgumentNamesRule,
    UniqueInputFieldNamesRule,
)
"""Rules that hold whatever the schema: applied on routes with ``schema: none``."""

DOCUMENT_SCHEMA: GraphQLSchema = build_schema(
    "type Query { _: Boolean } type Mutation { _: Boolean } type Subscription { _: Boolean }"
)
"""The conventional root types and the specified directives, nothing else."""


def validation_errors(document: DocumentNode, schema: GraphQLSchema | None) -> list[GraphQLError]:
    """The validation errors of *document*: against *schema* with :data:`SCHEMA_RULES`, or
    (no schema) the schema-independent :data:`DOCUMENT_RULES`."""
    if schema is None:
        return validate(DOCUMENT_SCHEMA, document, DOCUMENT_RULES, max_errors=MAX_ERRORS)
    return validate(schema, document, SCHEMA_RULES, max_errors=MAX_ERRORS)


def root_type_name(schema: GraphQLSchema | None, operation: OperationType) -> str:
    """The name of the root type an operation of kind *operation* runs on (without a schema:
    the conventional ``Query``/``Mutation``/``Subscription``)."""
    root = (schema or DOCUMENT_SCHEMA).get_root_type(operation)
    if root is None:
        # An operation kind the schema has no root type for: nothing can match it.
        return ""
    return root.name
