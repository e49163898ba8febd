"""Helpers for the policy engine tests: real YAML files in tmp dirs, facts built directly."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.facts import DecisionInput, OperationFacts, RouteFacts, TokenFacts

REPO = Path(__file__).resolve().parents[2]
IWLZ = REPO / "policies" / "iwlz"

HEADER = "# yaml-language-server: $schema=../schema.json\n"


def token(
    *, instantie_type: str | None = "Zorgkantoor", identifier_type: str | None = "UZOVI",
    identifier: str | None = "5151", claims: Mapping[str, Any] | None = None,
    scopes: frozenset[str] = frozenset(), actor: str | None = None,
) -> TokenFacts:
    return TokenFacts(claims=dict(claims or {}), client_id="c", subject="c",
                      instantie_type=instantie_type, identifier_type=identifier_type,
                      identifier=identifier, scopes=scopes, actor=actor)


def operation(field: str = "zendNotificatie", args: Mapping[str, Any] | None = None, *,
              op_type: str = "mutation", name: str | None = None,
              selected: tuple[str, ...] = ()) -> OperationFacts:
    return OperationFacts(operation_type=op_type, operation_name=name, root_field=field,
                          arguments=dict(args or {}), selected_paths=selected)


def route(id_type: str = "UZOVI", ident: str = "5151", kind: str = "zorgkantoor",
          strict: bool = False) -> RouteFacts:
    path = f"/deelnemers/{id_type.lower()}/{ident}/graphql"
    return RouteFacts(path=path, audience=path, deelnemer_id_type=id_type, deelnemer_id=ident,
                      deelnemer_kind=kind, strict_input=strict)


def facts(args: Mapping[str, Any] | None = None, **kw: Any) -> DecisionInput:
    """A mutation zendNotificatie with *args*; keyword overrides: token=, op=, route=."""
    return DecisionInput(kw.get("token") or token(), kw.get("op") or operation(args=args),
                         kw.get("route") or route())


Writer = Callable[[str, str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write a dedented YAML file under tmp_path (sub-folders created)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def policy_text(checks: str, *, field: str = "zendNotificatie", op: str = "mutation",
                refusal: str = "", policy_id: str = "p") -> str:
    """A one-policy file with the given (already indented by 2) checks block."""
    return (
        f"policy: {policy_id}\n"
        f"applies_to:\n  graphql:\n    operation: {op}\n    field: {field}\n"
        + refusal
        + "checks:\n"
        + textwrap.dedent(checks).strip("\n").replace("\n", "\n  ").join(["  ", "\n"])
    )
