"""A REST route's OpenAPI 3 document: which operations exist, and what they accept.

The document is checked once at load (``openapi-spec-validator``), and every operation is
compiled then: its path template, its parameters' schemas and its JSON body schema as
OpenAPI-flavoured JSON Schema validators (``openapi-schema-validator``). So the per-request
cost is a template match and the validation itself; nothing is parsed or resolved again.

The document's paths are relative to the route's prefix (its ``servers`` URL), as an API
publishes them: ``/klanten`` in the Klantinteracties document is
``/klantinteracties/api/v1/klanten`` at the gateway.

What is refused (before any policy, never forwarded): a path the document lacks (``404``),
a method it lacks on that path (``405`` with ``Allow``), a query parameter it does not
declare, a required parameter missing, a parameter or body against its schema (``400``),
and a body where none is declared or with another media type than JSON (``415``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gateway.config.errors import ConfigError
from gateway.refusals import BadRequest, NotFound, OperationNotAllowed
from gateway.rest.paths import PathTemplates

if TYPE_CHECKING:
    # The validator libraries (with jsonschema-path, requests, pydantic-settings) are
    # imported when a document is loaded, not at start-up: a gateway without OpenAPI
    # routes never needs them (issue 17's cold start).
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenApiError(ConfigError):
    """An OpenAPI document that cannot govern a route (unreadable, invalid, unsupported):
    the gateway does not start, as for any other configuration mistake."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One declared parameter with its compiled schema."""

    name: str
    location: str
    """``path``, ``query`` or ``header``."""
    required: bool
    validator: Validator | None
    kind: str | None
    """The schema's ``type``: a query, path or header value (text) is converted to it."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, compiled."""

    method: str
    template: str
    """The full template at the gateway (route prefix + document path)."""
    operation_id: str | None
    parameters: tuple[Parameter, ...] = ()
    body: Validator | None = None
    body_required: bool = False
    takes_body: bool = False
    query_names: frozenset[str] = field(default_factory=frozenset)

    def check(
        self,
        params: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: Any,
        has_body: bool,
    ) -> None:
        """Refuse (400/415) what the operation does not accept."""
        unknown = sorted(set(query) - self.query_names)
        if unknown:
            raise BadRequest(
                f"Query parameter {unknown[0]!r} is not in the API's document",
                reason="unknown_parameter",
            )
        for parameter in self.parameters:
            source = {"path": params, "query": query, "header": headers}[parameter.location]
            key = parameter.name.lower() if parameter.location == "header" else parameter.name
            if key not in source:
                if parameter.required:
                    raise BadRequest(
                        f"{parameter.location} parameter {parameter.name!r} is required",
                        reason="missing_parameter",
                    )
                continue
            _validate(parameter, source[key])
        if has_body and not self.takes_body:
            raise BadRequest("This operation takes no request body", reason="unexpected_body")
        if not has_body and self.body_required:
            raise BadRequest("This operation needs a JSON request body", reason="missing_body")
        if has_body and self.body is not None:
            error = _first_error(self.body, body)
            if error is not None:
                raise BadRequest(f"Request body: {error}", reason="invalid_body")


def _convert(kind: str | None, text: str) -> Any:
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    return text


def _validate(parameter: Parameter, text: str) -> None:
    try:
        value = _convert(parameter.kind, text)
    except ValueError:
        value = text  # the schema's own error names the expected type
    if parameter.validator is not None:
        error = _first_error(parameter.validator, value)
        if error is not None:
            raise BadRequest(
                f"{parameter.location} parameter {parameter.name!r}: {error}",
                reason="invalid_parameter",
            )


def _first_error(validator: Validator, value: Any) -> str | None:
    error: ValidationError | None = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


class OpenApiDocument:
    """A loaded document: its operations at the route's prefix, and the matcher."""

    def __init__(self, source: Path, document: Mapping[str, Any], prefix: str) -> None:
        from openapi_schema_validator import (
            OAS30Validator,
            OAS31Validator,
            oas30_format_checker,
            oas31_format_checker,
        )

        self.source = source
        v31 = str(document.get("openapi", "")).startswith("3.1")
        self._validator_class = OAS31Validator if v31 else OAS30Validator
        self._formats = oas31_format_checker if v31 else oas30_format_checker
        self._components = document.get("components") or {}
        self._document = document
        self.operations: dict[tuple[str, str], Operation] = {}
        self.allowed: dict[str, tuple[str, ...]] = {}
        for path, item in (document.get("paths") or {}).items():
            template = prefix.rstrip("/") + path
            shared = item.get("parameters") or ()
            methods = []
            for method in METHODS:
                if method in item:
                    self.operations[(method.upper(), template)] = self._operation(
                        method.upper(), template, item[method], shared
                    )
                    methods.append(method.upper())
            self.allowed[template] = tuple(methods)
        self.templates = PathTemplates(self.allowed)

    @classmethod
    def load(cls, source: Path, prefix: str) -> OpenApiDocument:
        """Read and check *source*; :class:`OpenApiError` when it cannot be used."""
        try:
            # libyaml's loader when available: several times faster at start-up.
            document = yaml.load(
                source.read_text(encoding="utf-8"),
                Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
            )
        except (OSError, yaml.YAMLError) as exc:
            raise OpenApiError(f"cannot read the OpenAPI document: {exc}", file=source) from None
        if not isinstance(document, dict):
            raise OpenApiError("an OpenAPI document is a mapping", file=source)
        from openapi_spec_validator import validate as validate_spec
        from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

        try:
            validate_spec(document)
        except OpenAPIValidationError as exc:
            raise OpenApiError(
                f"not a valid OpenAPI 3 document: {exc.message}", file=source
            ) from None
        return cls(source, document, prefix)

    def _resolve(self, node: Any) -> Any:
        """A local ``$ref`` (``#/components/...``) followed to what it names."""
        while isinstance(node, Mapping) and "$ref" in node:
            ref = str(node["$ref"])
            if not ref.startswith("#/"):
                raise OpenApiError(f"only local references are supported: {ref}", file=self.source)
            target: Any = self._document
            for step in ref[2:].split("/"):
                target = target[step.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _validator(self, schema: Any) -> Validator | None:
        if not schema:
            return None
        # The components ride along at the root, so `#/components/schemas/X` resolves.
        root = {"allOf": [schema], "components": self._components}
        return self._validator_class(root, format_checker=self._formats)  # type: ignore[no-any-return]

    def _operation(
        self, method: str, template: str, spec: Mapping[str, Any], shared: Any
    ) -> Operation:
        declared: dict[tuple[str, str], Mapping[str, Any]] = {}
        for raw in (*shared, *(spec.get("parameters") or ())):
            param = self._resolve(raw)
            declared[(param["name"], param["in"])] = param  # the operation's own wins
        parameters = []
        for (name, location), param in declared.items():
            if location not in ("path", "query", "header"):
                continue  # cookies are not looked at
            schema = self._resolve(param.get("schema") or {})
            parameters.append(
                Parameter(
                    name,
                    location,
                    bool(param.get("required")) or location == "path",
                    self._validator(param.get("schema")),
                    schema.get("type") if isinstance(schema, Mapping) else None,
                )
            )
        body_spec = self._resolve(spec.get("requestBody") or {})
        content = body_spec.get("content") or {}
        json_media = [m for m in content if m == "application/json" or m.endswith("+json")]
        body_schema = content[json_media[0]].get("schema") if json_media else None
        return Operation(
            method=method,
            template=template,
            operation_id=spec.get("operationId"),
            parameters=tuple(parameters),
            body=self._validator(body_schema),
            body_required=bool(body_spec.get("required")),
            takes_body=bool(json_media),
            query_names=frozenset(n for (n, loc) in declared if loc == "query"),
        )

    def find(self, method: str, segments: tuple[str, ...]) -> tuple[Operation, Mapping[str, str]]:
        """The operation for *method* at the raw path *segments*, with its path parameters;
        404 when the path is not in the document, 405 (with ``Allow``) when the method is
        not."""
        found = self.templates.match(segments)
        if found is None:
            raise NotFound("Not Found: the API's document has no such path", reason="unknown_path")
        template, params = found
        operation = self.operations.get((method, template))
        if operation is None:
            allow = self.allowed[template]
            raise OperationNotAllowed(
                allow, reason=f"method {method} not in the API's document for {template}"
            )
        return operation, params
