"""Turn a verified token payload into :class:`TokenFacts` through the configured claim mapping.

Real nID tokens may deliver an identifier as an OpenID aggregated claim
(``_claim_names: {"kvk": "src1"}``, ``_claim_sources: {"src1": {"jwt": "<JWT>"}}``). Such a
value is believed only after ``nested`` (supplied by the verifier) has verified the nested
JWT against a trusted issuer; without a verifier, aggregated claims are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.model import ClaimMapping
from gateway.facts import TokenFacts

NestedVerifier = Callable[[str], Mapping[str, Any]]
"""Verifies a nested JWT and returns its payload; raises on a bad one."""


def _dotted(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list) and len(value) == 1:
        return _scalar(value[0])
    return None


def _aggregated(claims: Mapping[str, Any], name: str, nested: NestedVerifier | None) -> str | None:
    if nested is None:
        return None
    names = claims.get("_claim_names")
    sources = claims.get("_claim_sources")
    if not isinstance(names, Mapping) or not isinstance(sources, Mapping):
        return None
    source = sources.get(names.get(name)) if isinstance(names.get(name), str) else None
    if not isinstance(source, Mapping) or not isinstance(source.get("jwt"), str):
        return None
    return _scalar(nested(source["jwt"]).get(name))


def _claim(claims: Mapping[str, Any], name: str, nested: NestedVerifier | None) -> str | None:
    value = _scalar(_dotted(claims, name))
    return value if value is not None else _aggregated(claims, name, nested)


def _scopes(claims: Mapping[str, Any], names: tuple[str, ...]) -> frozenset[str]:
    found: set[str] = set()
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


def _with_aliases(scopes: frozenset[str], aliases: Mapping[str, str]) -> frozenset[str]:
    """*scopes* plus the current scope of every deprecated one held (``scope_aliases``)."""
    current = {aliases[s] for s in scopes if s in aliases}
    return scopes | current if current else scopes


def map_claims(
    claims: Mapping[str, Any], mapping: ClaimMapping, *, nested: NestedVerifier | None = None
) -> TokenFacts:
    """Extract the decision facts from a verified token payload.

    The first identifier claim of the mapping that is present wins; aggregated claims are
    consulted only when ``mapping.aggregated_claims`` and a ``nested`` verifier are given.
    """
    verifier = nested if mapping.aggregated_claims else None
    instantie_type = next(
        (v for n in mapping.instantie_type if (v := _claim(claims, n, verifier)) is not None), None
    )
    identifier_type = identifier = None
    for item in mapping.identifiers:
        value = _claim(claims, item.claim, verifier)
        if value is not None:
            identifier_type, identifier = item.id_type, value
            break
    client_id = next(
        (v for n in mapping.client_id if (v := _scalar(claims.get(n))) is not None), None
    )
    return TokenFacts(
        claims=claims,
        client_id=client_id,
        subject=_scalar(claims.get("sub")),
        instantie_type=instantie_type,
        identifier_type=identifier_type,
        identifier=identifier,
        scopes=_with_aliases(_scopes(claims, mapping.scopes), mapping.scope_aliases),
        actor=_scalar(_dotted(claims, mapping.actor)),
        issuer=_scalar(claims.get("iss")),
    )
