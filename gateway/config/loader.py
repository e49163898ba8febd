"""Load ``gateway.yaml`` (+ ``clients.yaml``) into the typed, immutable :class:`GatewayConfig`.

The YAML is read with positions (:mod:`gateway.config.yamlsource`), the plain data is
validated by the models (:mod:`gateway.config.model`), and every error pydantic reports is
mapped back to the ``file:line:col`` of its key or value. Then the rules between objects
are checked and the derived values filled in (the port override, audiences, scope
templates, the builtin issuer). All mistakes are raised together as one
:class:`ConfigError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar, get_args
from urllib.parse import urlsplit, urlunsplit

from authlib.common.security import is_secure_transport
from pydantic import BaseModel, ValidationError

from gateway.config.errors import ConfigError, Located, did_you_mean
from gateway.config.model import (
    ALL_ROUTES,
    NOTIFICATIES_PATH,
    AuthServerConfig,
    ClientConfig,
    ClientsFile,
    GatewayConfig,
    NotificatiesConfig,
    RouteConfig,
    TokenValidationConfig,
    TrustedIssuer,
)
from gateway.config.yamlsource import JsonPath, Source, read_source

LOOPBACK = ("127.0.0.1", "localhost", "::1")
M = TypeVar("M", bound=BaseModel)


def load_config(
    path: str | Path, *, port: int | None = None, upstream: str | None = None
) -> GatewayConfig:
    """Load and validate the deployment configuration at *path*.

    ``port`` overrides ``server.port``; when ``public_url`` is the local default (absent, or
    a loopback URL on the configured port) it follows the new port, and so do the issuer
    and audiences derived from it. ``upstream`` points every route at that URL (demo,
    benchmarks). Raises :class:`ConfigError` listing every mistake found.
    """
    source, issues = _read(Path(path).resolve())
    demo = isinstance(source.data, dict) and source.data.get("demo") is True
    config = _validate(GatewayConfig, source, issues, demo=demo)
    clients: tuple[Source, tuple[ClientConfig, ...]] | None = None
    if config.authserver is not None and config.authserver.clients_file is not None:
        # Its own file: positions in it, paths (jwks_file) relative to it.
        file_source, file_issues = _read(config.authserver.clients_file)
        found = _validate(ClientsFile, file_source, file_issues, demo=demo).clients
        clients = (file_source, found)
    finished = _Finish(config, source, clients, port=port, upstream=upstream)
    if finished.issues:
        raise ConfigError(issues=sorted(finished.issues, key=lambda i: (i.file, i.line, i.col)))
    return finished.config


def _read(file: Path) -> tuple[Source, list[Located]]:
    """*file* with positions; unreadable YAML stops here, an unset ``${ENV}`` does not."""
    source, issues = read_source(file, env=True)
    if source.data is not None and not isinstance(source.data, dict):
        issues.append(source.issue((), "expected a mapping"))
    if issues and not source.broken:
        raise ConfigError(issues=issues)
    return source, issues


def _validate(model: type[M], source: Source, issues: list[Located], *, demo: bool) -> M:
    """*source*'s data as a *model*; every error (and unset ``${ENV}``) at its position."""
    context = {"base": source.file.parent, "demo": demo}
    try:
        result = model.model_validate(source.data, context=context)
    except ValidationError as exc:
        issues += [i for e in exc.errors(include_url=False) if (i := _locate(e, source, model))]
        result = None
    if issues or result is None:
        raise ConfigError(issues=sorted(issues, key=lambda i: (i.line, i.col)))
    return result


# -- pydantic errors as human messages at their position ---------------------------------------
EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "path_type": "a path",
    "tuple_type": "a list",
    "list_type": "a list",
    "frozen_set_type": "a list",
    "set_type": "a list",
    "iterable_type": "a list",
}


def _locate(error: Any, source: Source, root: type[BaseModel]) -> Located | None:
    loc: JsonPath = tuple(error["loc"])
    if any(loc[: len(broken)] == broken for broken in source.broken):
        return None  # an unset ${ENV}: reported already
    kind, ctx, value = error["type"], error.get("ctx") or {}, error["input"]
    name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
    if kind == "config":
        at = (*loc, ctx["at"]) if ctx.get("at") else loc
        return source.issue(at, ctx["message"], ctx.get("hint"), key=bool(ctx.get("at")))
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        fields = model.model_fields.items() if model else ()
        allowed = [f.alias or n for n, f in fields if not f.exclude]
        return source.issue(
            loc,
            f"unknown key {loc[-1]!r} in {_title(model)}",
            did_you_mean(str(loc[-1]), allowed) + "expected one of " + ", ".join(allowed),
            key=True,
        )
    if kind == "missing":
        return source.issue(
            loc[:-1], f"missing required key {name!r} in {_title(_model_at(root, loc[:-1]))}"
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return source.issue(loc, f"{value} is too small", f"expected at least {bound}")
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return source.issue(loc, f"{value} is too large", f"expected at most {bound}")
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return source.issue(
            loc,
            f"unknown {name} {value!r}",
            did_you_mean(str(value), options) + "expected one of " + ", ".join(options),
        )
    if kind == "string_too_short":
        return source.issue(loc, "expected a non-empty string")
    if kind == "too_short":
        if isinstance(value, list) and len(value) >= ctx.get("min_length", 1):
            return None  # long enough; an entry is wrong and is reported itself
        return source.issue(loc, f"expected at least one entry in {name}")
    if kind in ("model_type", "dict_type", "mapping_type", "model_attributes_type"):
        return source.issue(loc, f"expected a mapping ({name}), got {_describe(value)}")
    if kind in EXPECTED:
        return source.issue(loc, f"expected {EXPECTED[kind]}, got {_describe(value)}")
    return source.issue(loc, f"{name}: {error['msg']}")


def _model_at(model: type[BaseModel] | None, loc: JsonPath) -> type[BaseModel] | None:
    """The model whose fields are at *loc* (to name it and list its keys)."""
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        model = _inner_model(field.annotation) if field else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_inner_model, get_args(annotation))), None)


def _title(model: type[BaseModel] | None) -> str:
    return str(model.model_config.get("title") or "mapping") if model else "mapping"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind, text in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dict, "a mapping"),
        (list, "a list"),
    ):
        if isinstance(value, kind):
            return text
    return type(value).__name__


# -- rules between objects, and derived values ------------------------------------------------
class _Finish:
    """The port/upstream overrides, ``public_url`` and what follows from it, and the rules
    no single object can check; problems are collected in ``issues``."""

    def __init__(
        self,
        config: GatewayConfig,
        source: Source,
        clients: tuple[Source, tuple[ClientConfig, ...]] | None,
        *,
        port: int | None,
        upstream: str | None,
    ) -> None:
        self.source = source
        self.issues: list[Located] = []
        self.rewrite_from: tuple[str, str] | None = None
        server = config.server
        if port is not None:
            server = server.model_copy(update={"port": port})
        if server.admin is not None and server.admin.port != 0 and server.admin.port == server.port:
            self.error(
                ("server", "admin", "port"),
                f"server.admin.port {server.port} is the public port",
                "the admin listener needs a port of its own",
            )
        public_url = self.public_url(config, server.host, server.port, port)
        issuer = self.rewrite(config.issuer) if config.issuer else public_url
        routes = self.routes(config, public_url, upstream)
        notificaties = self.notificaties(config, public_url, routes)
        adresboek = config.adresboek
        if adresboek is not None and upstream is not None:
            adresboek = adresboek.model_copy(update={"upstream": upstream})
        audiences = [r.audience for r in routes]
        if notificaties is not None:
            audiences.append(notificaties.audience)
        authserver = self.authserver(config, audiences, clients)
        if authserver is not None and authserver.enabled and not is_secure_transport(public_url):
            # OAuth 2 sends client secrets to the token endpoint: authlib refuses to serve it
            # on a plain-http public URL, so refuse the configuration instead of every request.
            self.error(
                ("public_url",),
                f"public_url {public_url!r} must be https when the authorization server is enabled",
                "OAuth 2 requires TLS for the token endpoint; http is accepted only for "
                "loopback addresses (127.0.0.1, localhost, ::1)",
            )
        tokens = self.tokens(config.tokens, issuer, authserver)
        self.config = config.model_copy(
            update={
                "source": source.file,
                "issuer": issuer,
                "public_url": public_url,
                "server": server,
                "routes": routes,
                "notificaties": notificaties,
                "adresboek": adresboek,
                "authserver": authserver,
                "tokens": tokens,
            }
        )

    def error(
        self, path: JsonPath, message: str, hint: str | None = None, source: Source | None = None
    ) -> None:
        self.issues.append((source or self.source).issue(path, message, hint))

    def public_url(self, config: GatewayConfig, host: str, port: int, override: int | None) -> str:
        if not config.public_url:
            return f"http://{host}:{port}"
        url = config.public_url
        parts = urlsplit(url)
        if override is None or parts.hostname not in LOOPBACK or parts.port != (config.server.port):
            return url
        netloc = f"{'[::1]' if parts.hostname == '::1' else parts.hostname}:{port}"
        new = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        self.rewrite_from = (url, new)
        return new

    def rewrite(self, url: str) -> str:
        """Apply the port override to a URL under the old public_url."""
        if self.rewrite_from and url.startswith(self.rewrite_from[0]):
            return self.rewrite_from[1] + url[len(self.rewrite_from[0]) :]
        return url

    def routes(
        self, config: GatewayConfig, public_url: str, upstream: str | None
    ) -> tuple[RouteConfig, ...]:
        routes: list[RouteConfig] = []
        paths: set[str] = set()
        audiences: set[str] = set()
        for i, route in enumerate(config.routes):
            d = route.deelnemer
            fields = {"kind": d.kind, "id_type": d.id_type, "id": d.id} if d else {}
            # A REST route's scopes are its rest: read_scope/write_scope, not root fields'.
            templates = {**config.scopes, **route.required_scopes} if route.rest is None else {}
            audience = self.rewrite(route.audience) if route.audience else public_url + route.path
            if route.path in paths:
                self.error(
                    ("routes", i, "path"),
                    f"duplicate route path {route.path!r}",
                    "route paths must be unique",
                )
            elif audience in audiences:
                self.error(
                    ("routes", i, "audience" if route.audience else "path"),
                    f"audience {audience!r} is used by another route",
                    "a token for one deelnemer must not be valid at another",
                )
            paths.add(route.path)
            audiences.add(audience)
            routes.append(
                route.model_copy(
                    update={
                        "audience": audience,
                        "upstream": upstream or route.upstream,
                        "required_scopes": {k: t.format_map(fields) for k, t in templates.items()},
                        "scope_default": route.scope_default.format_map(fields)
                        if route.scope_default and route.rest is None
                        else None,
                    }
                )
            )
        return tuple(routes)

    def notificaties(
        self, config: GatewayConfig, public_url: str, routes: tuple[RouteConfig, ...]
    ) -> NotificatiesConfig | None:
        """The central route: its audience, its scope templates (``{kind}`` stays: it is the
        recipient's, known per request); it needs the adresboek."""
        central = config.notificaties
        if central is None:
            return None
        if config.adresboek is None:
            self.error(
                ("notificaties",),
                "notificaties needs adresboek",
                "the central route forwards to the recipient's endpoint in the adresboek",
            )
        audience = (
            self.rewrite(central.audience) if central.audience else public_url + NOTIFICATIES_PATH
        )
        if audience in {r.audience for r in routes}:
            self.error(
                ("notificaties", "audience"),
                f"audience {audience!r} is used by a route",
                "a token for one deelnemer must not be valid at another",
            )
        scopes = {**config.scopes, **central.required_scopes}
        return central.model_copy(update={"audience": audience, "required_scopes": scopes})

    def authserver(
        self,
        config: GatewayConfig,
        routes: list[str],
        clients: tuple[Source, tuple[ClientConfig, ...]] | None,
    ) -> AuthServerConfig | None:
        auth = config.authserver
        if auth is None:
            return None
        source, prefix = (
            (clients[0], ("clients",)) if clients else (self.source, ("authserver", "clients"))
        )
        found = clients[1] if clients else auth.clients
        tls = config.server.tls
        known = {i.claim for i in config.tokens.claim_mapping.identifiers}
        every_route = set(routes)
        seen: set[str] = set()
        subjects: set[str] = set()
        done: list[ClientConfig] = []
        for i, client in enumerate(found):
            where = (*prefix, i)
            if client.client_id in seen:
                self.error(
                    (*where, "client_id"),
                    f"duplicate client_id {client.client_id!r}",
                    source=source,
                )
            seen.add(client.client_id)
            if client.tls_subject is not None:
                if tls is None or tls.client_ca_file is None:
                    self.error(
                        (*where, "tls_subject"),
                        "tls_client_auth needs server.tls with client_ca_file",
                        "TLS must end at the gateway",
                        source=source,
                    )
                if client.tls_subject in subjects:
                    self.error(
                        where,
                        f"tls_subject {client.tls_subject!r} is mapped to two clients",
                        source=source,
                    )
                subjects.add(client.tls_subject)
            for name in client.identifiers:
                if known and name not in known:
                    self.error(
                        (*where, "identifiers"),
                        f"identifier claim {name!r} is not in the claim mapping",
                        "known: " + ", ".join(sorted(known)),
                        source=source,
                    )
            audiences = {self.rewrite(a) for a in client.allowed_audiences if a != ALL_ROUTES}
            if ALL_ROUTES in client.allowed_audiences:
                audiences |= every_route
            done.append(client.model_copy(update={"allowed_audiences": frozenset(audiences)}))
        return auth.model_copy(update={"clients": tuple(done)})

    def tokens(
        self, tokens: TokenValidationConfig, issuer: str, authserver: AuthServerConfig | None
    ) -> TokenValidationConfig:
        builtin_available = authserver is not None and authserver.enabled
        builtin = TrustedIssuer(builtin=True).model_copy(update={"issuer": issuer})
        raw = self.source.data.get("tokens") if isinstance(self.source.data, dict) else None
        if not isinstance(raw, dict) or raw.get("trusted_issuers") is None:
            if not builtin_available:
                self.error(
                    ("tokens",),
                    "no trusted issuer: authserver is off and tokens.trusted_issuers is not set",
                )
            return tokens.model_copy(update={"trusted_issuers": (builtin,)})
        issuers: list[TrustedIssuer] = []
        for i, trusted in enumerate(tokens.trusted_issuers):
            if trusted.builtin and not builtin_available:
                self.error(
                    ("tokens", "trusted_issuers", i),
                    "builtin issuer trusted but the authorization server is not enabled",
                )
            issuers.append(
                trusted.model_copy(update={"issuer": issuer}) if trusted.builtin else trusted
            )
        names = [i.issuer for i in issuers]
        if not issuers:
            self.error(("tokens", "trusted_issuers"), "expected at least one trusted issuer")
        elif len(set(names)) != len(names):
            self.error(("tokens", "trusted_issuers"), "an issuer is listed twice")
        return tokens.model_copy(update={"trusted_issuers": tuple(issuers)})
