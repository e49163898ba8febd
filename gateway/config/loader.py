"""Load ``gateway.yaml`` (+ ``clients.yaml``) into the typed, immutable :class:`GatewayConfig`.

Every mistake is a :class:`ConfigError` at the file, line and column where it is, saying
what was expected. Unknown keys are errors (a typo must not silently fall back to a
default). Relative paths are resolved against the file that names them.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from authlib.common.security import is_secure_transport

from gateway.config.claims import claim_mapping_from_data, default_claim_mapping
from gateway.config.errors import ConfigError
from gateway.config.model import (
    AdminListener,
    AuditConfig,
    AuthServerConfig,
    BruteForceConfig,
    ClaimMapping,
    ClientConfig,
    ClientTimeouts,
    Deelnemer,
    GatewayConfig,
    GraphQLConfig,
    GraphQLLimits,
    ObservabilityConfig,
    PolicyConfig,
    RouteConfig,
    ServerConfig,
    SigningConfig,
    Timeouts,
    TlsConfig,
    TokenValidationConfig,
    TrustedIssuer,
)
from gateway.config.secrets import hash_secret, parse_secret_hash
from gateway.config.yamlnodes import Section, Value, compose_file

MAX_TOKEN_LIFETIME = 3600
"""RFC0014: an access token lives at most one hour."""

ALL_ROUTES = "*routes*"
"""In a client's ``allowed_audiences``: every configured route's audience."""

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
VERIFY_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
RESERVED_PATHS = ("/auth/", "/.well-known/", "/healthz", "/readyz", "/metrics")
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "scope",
        "scopes",
        "instantie_type",
        "act",
        "typ",
    }
)
SCOPE_FIELDS = ("kind", "id_type", "id")

ROOT_KEYS = (
    "issuer",
    "public_url",
    "demo",
    "server",
    "authserver",
    "tokens",
    "graphql",
    "scopes",
    "routes",
    "policy",
    "observability",
)


def load_config(
    path: str | Path, *, port: int | None = None, upstream: str | None = None
) -> GatewayConfig:
    """Load and validate the deployment configuration at *path*.

    ``port`` overrides ``server.port``; when ``public_url`` is the local default (absent, or
    a loopback URL on the configured port) it follows the new port, and so do the issuer
    and audiences derived from it. ``upstream`` points every route at that URL (demo,
    benchmarks). Raises :class:`ConfigError` on any mistake.
    """
    return _Loader(Path(path).resolve(), port=port, upstream=upstream).load()


def _url(value: Value, *, what: str) -> str:
    text = value.string()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise value.error(
            f"{what} is not an absolute http(s) URL: {text!r}", "e.g. https://host/path"
        )
    return text


def _strip_slash(url: str) -> str:
    return url[:-1] if url.endswith("/") else url


class _Loader:
    def __init__(self, path: Path, *, port: int | None, upstream: str | None) -> None:
        self.path = path
        self.base = path.parent
        self.port_override = port
        self.upstream_override = upstream
        # Set while loading: (old prefix, new prefix) when the port override moves public_url.
        self.url_rewrite: tuple[str, str] | None = None
        self.configured_port = ServerConfig().port

    # -- top level ----------------------------------------------------------------------
    def load(self) -> GatewayConfig:
        root = compose_file(self.path).section(ROOT_KEYS, "gateway configuration", extensions=True)
        demo = root.boolean("demo", False)
        server = self.server(root.get("server"))
        public_url = self.public_url(root, server)
        issuer_value = root.get("issuer")
        issuer = (
            self.rewrite(_strip_slash(_url(issuer_value, what="issuer")))
            if issuer_value
            else public_url
        )
        mapping = self.claim_mapping(root.get("tokens"))
        scopes = self.scope_templates(root.get("scopes"))
        routes = self.routes(root.require("routes"), public_url, scopes)
        authserver = self.authserver(root.get("authserver"), demo, routes, server, mapping)
        if authserver is not None and authserver.enabled and not is_secure_transport(public_url):
            # OAuth 2 sends client secrets to the token endpoint: authlib refuses to serve it
            # on a plain-http public URL, so refuse the configuration instead of every request.
            where = root.get("public_url") or root.value
            raise where.error(
                f"public_url {public_url!r} must be https when the authorization server is "
                "enabled",
                "OAuth 2 requires TLS for the token endpoint; http is accepted only for "
                "loopback addresses (127.0.0.1, localhost, ::1)",
            )
        tokens = self.tokens(root.get("tokens"), issuer, authserver, mapping)
        return GatewayConfig(
            source=self.path,
            issuer=issuer,
            public_url=public_url,
            server=server,
            authserver=authserver,
            tokens=tokens,
            graphql=self.graphql(root.get("graphql")),
            routes=routes,
            policy=self.policy(root.get("policy")),
            observability=self.observability(root.get("observability")),
            demo=demo,
        )

    def rewrite(self, url: str) -> str:
        """Apply the port override to a URL under the old public_url."""
        if self.url_rewrite and url.startswith(self.url_rewrite[0]):
            return self.url_rewrite[1] + url[len(self.url_rewrite[0]) :]
        return url

    def public_url(self, root: Section, server: ServerConfig) -> str:
        value = root.get("public_url")
        if value is None:
            return f"http://{server.host}:{server.port}"
        url = _strip_slash(_url(value, what="public_url"))
        if self.port_override is None:
            return url
        parts = urlsplit(url)
        if (
            parts.hostname in ("127.0.0.1", "localhost", "::1")
            and parts.port == self.configured_port
        ):
            host = "[::1]" if parts.hostname == "::1" else parts.hostname
            new = urlunsplit((parts.scheme, f"{host}:{server.port}", parts.path, "", ""))
            if new != url:
                self.url_rewrite = (url, new)
            return new
        return url

    # -- server -------------------------------------------------------------------------
    def server(self, value: Value | None) -> ServerConfig:
        base = ServerConfig()
        if value is None:
            port = self.port_override if self.port_override is not None else base.port
            return ServerConfig(port=port)
        s = value.section(
            (
                "host",
                "port",
                "max_body_bytes",
                "tls",
                "timeouts",
                "max_connections",
                "shutdown_grace_seconds",
                "admin",
            ),
            "server",
        )
        port = s.integer("port", base.port, minimum=0, maximum=65535)
        self.configured_port = port
        if self.port_override is not None:
            port = self.port_override
        tls = s.get("tls")
        admin = s.get("admin")
        return ServerConfig(
            host=s.string("host", base.host) or base.host,
            port=port,
            tls=self.tls(tls) if tls else None,
            max_body_bytes=s.integer("max_body_bytes", base.max_body_bytes, minimum=1024),
            timeouts=self.client_timeouts(s.get("timeouts")),
            max_connections=s.integer(
                "max_connections", base.max_connections, minimum=16, maximum=1_000_000
            ),
            shutdown_grace_seconds=s.number(
                "shutdown_grace_seconds", base.shutdown_grace_seconds, minimum=0, maximum=3600
            ),
            admin=self.admin_listener(admin, port) if admin else None,
        )

    def client_timeouts(self, value: Value | None) -> ClientTimeouts:
        base = ClientTimeouts()
        if value is None:
            return base
        s = value.section(("header", "body", "keepalive"), "server.timeouts")
        return ClientTimeouts(
            header=s.number("header", base.header, minimum=0.01, maximum=3600),
            body=s.number("body", base.body, minimum=0.01, maximum=3600),
            keepalive=s.number("keepalive", base.keepalive, minimum=0.01, maximum=3600),
        )

    def admin_listener(self, value: Value, public_port: int) -> AdminListener:
        base = AdminListener()
        s = value.section(("host", "port"), "server.admin")
        port = s.integer("port", base.port, minimum=0, maximum=65535)
        if port != 0 and port == public_port:
            where = s.get("port") or s.value
            raise where.error(
                f"server.admin.port {port} is the public port",
                "the admin listener needs a port of its own",
            )
        return AdminListener(host=s.string("host", base.host) or base.host, port=port)

    def existing(self, value: Value, *, directory: bool | None = False) -> Path:
        path = value.path(self.base)
        if directory is None:
            ok, kind = path.exists(), "file or directory"
        elif directory:
            ok, kind = path.is_dir(), "directory"
        else:
            ok, kind = path.is_file(), "file"
        if not ok:
            raise value.error(f"{kind} not found: {path}", f"paths are relative to {self.base}")
        return path

    def tls(self, value: Value) -> TlsConfig:
        s = value.section(
            ("cert_file", "key_file", "client_ca_file", "require_client_cert"), "server.tls"
        )
        ca = s.get("client_ca_file")
        require = s.boolean("require_client_cert", False)
        if require and ca is None:
            raise s.value.error(
                "require_client_cert needs client_ca_file",
                "name the CA that signs client certificates",
            )
        return TlsConfig(
            cert_file=self.existing(s.require("cert_file")),
            key_file=self.existing(s.require("key_file")),
            client_ca_file=self.existing(ca) if ca else None,
            require_client_cert=require,
        )

    # -- scopes and routes --------------------------------------------------------------
    def scope_templates(self, value: Value | None) -> dict[str, tuple[str, Value]]:
        if value is None:
            return {}
        templates: dict[str, tuple[str, Value]] = {}
        for field_name, template in value.mapping("scopes").items():
            templates[field_name] = (self.scope_template(template), template)
        return templates

    def scope_template(self, value: Value) -> str:
        text = value.string()
        if any(ch.isspace() for ch in text):
            raise value.error(f"scope {text!r} contains whitespace", "a scope is one word")
        try:
            text.format_map({name: "x" for name in SCOPE_FIELDS})
        except (KeyError, ValueError, IndexError) as exc:
            raise value.error(
                f"invalid scope template {text!r}: {exc}",
                "placeholders allowed: {kind}, {id_type}, {id}",
            ) from None
        return text

    def routes(
        self, value: Value, public_url: str, templates: dict[str, tuple[str, Value]]
    ) -> tuple[RouteConfig, ...]:
        items = value.items()
        if not items:
            raise value.error("expected at least one route")
        routes: list[RouteConfig] = []
        paths: set[str] = set()
        audiences: set[str] = set()
        for item in items:
            route, path_value, aud_value = self.route(item, public_url, templates)
            if route.path in paths:
                raise path_value.error(
                    f"duplicate route path {route.path!r}", "route paths must be unique"
                )
            if route.audience in audiences:
                raise aud_value.error(
                    f"audience {route.audience!r} is used by another route",
                    "a token for one deelnemer must not be valid at another",
                )
            paths.add(route.path)
            audiences.add(route.audience)
            routes.append(route)
        return tuple(routes)

    def route(
        self, value: Value, public_url: str, templates: dict[str, tuple[str, Value]]
    ) -> tuple[RouteConfig, Value, Value]:
        s = value.section(
            (
                "path",
                "upstream",
                "deelnemer",
                "audience",
                "policies",
                "schema",
                "timeouts",
                "pool_size",
                "allow_plain_jwt",
                "strict_input",
                "required_scopes",
                "scope_default",
                "forward_authorization",
            ),
            "route",
        )
        path_value = s.require("path")
        path = path_value.string()
        if not path.startswith("/") or any(ch.isspace() for ch in path) or "?" in path:
            raise path_value.error(
                f"invalid route path {path!r}",
                "expected an absolute path like /deelnemers/uzovi/5151/graphql",
            )
        if any(path.startswith(p) or path == p.rstrip("/") for p in RESERVED_PATHS):
            raise path_value.error(
                f"route path {path!r} collides with a gateway endpoint",
                "reserved: " + ", ".join(RESERVED_PATHS),
            )
        upstream_value = s.require("upstream")
        upstream = _url(upstream_value, what="upstream")
        if self.upstream_override is not None:
            upstream = self.upstream_override
        deelnemer = self.deelnemer(s.require("deelnemer"))
        aud_value = s.get("audience") or path_value
        audience = (
            self.rewrite(_url(aud_value, what="audience"))
            if s.get("audience")
            else public_url + path
        )
        policies_value = s.require("policies", "a list of policy files or directories")
        policies = tuple(self.existing(p, directory=None) for p in policies_value.items())
        if not policies:
            raise policies_value.error(
                "expected at least one policy file or directory",
                "fail closed: a route without policy refuses everything",
            )
        fields = {"kind": deelnemer.kind, "id_type": deelnemer.id_type, "id": deelnemer.id}
        required = {name: text.format_map(fields) for name, (text, _) in templates.items()}
        own = s.get("required_scopes")
        if own is not None:
            for name, scope_value in own.mapping("required_scopes").items():
                required[name] = self.scope_template(scope_value).format_map(fields)
        default_value = s.get("scope_default")
        scope_default = (
            self.scope_template(default_value).format_map(fields) if default_value else None
        )
        schema_value = s.get("schema")
        # `schema: none` turns validation off (explicitly, never by omission); no `schema:`
        # validates against the bundled network schema.
        if schema_value is not None and schema_value.is_null():
            schema_value = None
        no_schema = schema_value is not None and schema_value.string() == "none"
        timeouts = self.timeouts(s.get("timeouts"))
        route = RouteConfig(
            path=path,
            upstream=upstream,
            deelnemer=deelnemer,
            audience=audience,
            policies=policies,
            required_scopes=MappingProxyType(required),
            scope_default=scope_default,
            schema=self.existing(schema_value) if schema_value and not no_schema else None,
            schema_validation=not no_schema,
            timeouts=timeouts,
            pool_size=s.integer("pool_size", 100, minimum=1, maximum=10_000),
            allow_plain_jwt=s.boolean("allow_plain_jwt", False),
            strict_input=s.boolean("strict_input", False),
            forward_authorization=s.boolean("forward_authorization", False),
        )
        return route, path_value, aud_value

    def deelnemer(self, value: Value) -> Deelnemer:
        s = value.section(("id_type", "id", "kind", "name"), "deelnemer")
        kind_value = s.require("kind")
        kind = kind_value.string()
        if not kind.isidentifier() or kind != kind.lower():
            raise kind_value.error(
                f"invalid deelnemer kind {kind!r}",
                "expected a lowercase scope word such as zorgkantoor, zorgaanbieder, onderneming",
            )
        return Deelnemer(
            id_type=s.require("id_type").string().upper(),
            id=s.require("id").string(),
            kind=kind,
            name=s.string("name", "") or "",
        )

    def timeouts(self, value: Value | None) -> Timeouts:
        base = Timeouts()
        if value is None:
            return base
        s = value.section(("connect", "read", "total"), "timeouts")
        return Timeouts(
            connect=s.number("connect", base.connect, minimum=0.001, maximum=600),
            read=s.number("read", base.read, minimum=0.001, maximum=600),
            total=s.number("total", base.total, minimum=0.001, maximum=600),
        )

    # -- authorization server -----------------------------------------------------------
    def authserver(
        self,
        value: Value | None,
        demo: bool,
        routes: tuple[RouteConfig, ...],
        server: ServerConfig,
        mapping: ClaimMapping,
    ) -> AuthServerConfig | None:
        if value is None:
            return None
        s = value.section(
            (
                "enabled",
                "signing",
                "token_lifetime",
                "assertion_max_lifetime",
                "brute_force",
                "clients",
                "clients_file",
            ),
            "authserver",
        )
        signing = self.signing(s.require("signing"), demo)
        lifetime = s.integer("token_lifetime", 3600, minimum=1, maximum=MAX_TOKEN_LIFETIME)
        clients_value = s.get("clients")
        file_value = s.get("clients_file")
        if clients_value is not None and file_value is not None:
            raise file_value.error("give either clients or clients_file, not both")
        clients: tuple[ClientConfig, ...] = ()
        if file_value is not None:
            clients = self.clients_file(self.existing(file_value), routes, server, mapping)
        elif clients_value is not None:
            clients = self.clients(clients_value, routes, server, mapping)
        return AuthServerConfig(
            enabled=s.boolean("enabled", True),
            signing=signing,
            token_lifetime=lifetime,
            clients=clients,
            assertion_max_lifetime=s.integer(
                "assertion_max_lifetime", 300, minimum=1, maximum=3600
            ),
            brute_force=self.brute_force(s.get("brute_force")),
        )

    def brute_force(self, value: Value | None) -> BruteForceConfig:
        base = BruteForceConfig()
        if value is None:
            return base
        s = value.section(
            ("max_failures_per_client", "max_failures_per_address", "window_seconds"),
            "authserver.brute_force",
        )
        return BruteForceConfig(
            max_failures_per_client=s.integer(
                "max_failures_per_client", base.max_failures_per_client, minimum=1, maximum=10_000
            ),
            max_failures_per_address=s.integer(
                "max_failures_per_address", base.max_failures_per_address, minimum=1,
                maximum=100_000,
            ),
            window_seconds=s.integer(
                "window_seconds", base.window_seconds, minimum=1, maximum=86_400
            ),
        )

    def signing(self, value: Value, demo: bool) -> SigningConfig:
        s = value.section(("keys_dir", "algorithm", "generate_if_missing"), "authserver.signing")
        generate = s.boolean("generate_if_missing", False)
        if generate and not demo:
            key = s.key("generate_if_missing")
            assert key is not None
            raise key.error(
                "generate_if_missing is for the demo only",
                "set demo: true, or create keys with `nid-gateway keys generate`",
            )
        algorithm = cast(
            Literal["RS256", "ES256"], s.choice("algorithm", ("RS256", "ES256"), "ES256")
        )
        return SigningConfig(
            keys_dir=s.require("keys_dir").path(self.base),
            algorithm=algorithm,
            generate_if_missing=generate,
        )

    def clients_file(
        self,
        path: Path,
        routes: tuple[RouteConfig, ...],
        server: ServerConfig,
        mapping: ClaimMapping,
    ) -> tuple[ClientConfig, ...]:
        root = compose_file(path).section(("clients",), "clients file", extensions=True)
        saved = self.base
        self.base = path.parent  # jwks_file paths are relative to clients.yaml
        try:
            return self.clients(root.require("clients"), routes, server, mapping)
        finally:
            self.base = saved

    def clients(
        self,
        value: Value,
        routes: tuple[RouteConfig, ...],
        server: ServerConfig,
        mapping: ClaimMapping,
    ) -> tuple[ClientConfig, ...]:
        clients: list[ClientConfig] = []
        seen: set[str] = set()
        subjects: set[str] = set()
        for item in value.items():
            client, id_value = self.client(item, routes, server, mapping)
            if client.client_id in seen:
                raise id_value.error(f"duplicate client_id {client.client_id!r}")
            if client.tls_subject is not None:
                if client.tls_subject in subjects:
                    raise item.error(f"tls_subject {client.tls_subject!r} is mapped to two clients")
                subjects.add(client.tls_subject)
            seen.add(client.client_id)
            clients.append(client)
        return tuple(clients)

    def client(
        self,
        value: Value,
        routes: tuple[RouteConfig, ...],
        server: ServerConfig,
        mapping: ClaimMapping,
    ) -> tuple[ClientConfig, Value]:
        s = value.section(
            (
                "client_id",
                "auth_method",
                "secret_hash",
                "secret",
                "jwks",
                "jwks_file",
                "tls_subject",
                "instantie_type",
                "identifiers",
                "extra_claims",
                "allowed_scopes",
                "allowed_audiences",
                "allowed_actors",
            ),
            "client",
        )
        id_value = s.require("client_id")
        client_id = id_value.string()
        method_value = s.require("auth_method", "one of " + ", ".join(AUTH_METHODS))
        methods = [m for m in method_value.strings()]
        if not methods:
            raise method_value.error("expected at least one auth_method")
        for m in methods:
            if m not in AUTH_METHODS:
                raise method_value.error(
                    f"unknown auth_method {m!r}", "expected one of " + ", ".join(AUTH_METHODS)
                )

        secret_hash = self.client_secret(s, methods)
        jwks = self.client_jwks(s, methods)
        tls_subject = self.client_tls_subject(s, methods, server)

        ids_value = s.get("identifiers")
        identifiers = {
            name: v.string()
            for name, v in (ids_value.mapping("identifiers").items() if ids_value else [])
        }
        known = {i.claim for i in mapping.identifiers}
        for name in identifiers:
            if known and name not in known:
                raise s.require("identifiers").error(
                    f"identifier claim {name!r} is not in the claim mapping",
                    "known: " + ", ".join(sorted(known)),
                )
        extra_value = s.get("extra_claims")
        extra = {
            name: v.string()
            for name, v in (extra_value.mapping("extra_claims").items() if extra_value else [])
        }
        for name in (*identifiers, *extra):
            if name in RESERVED_CLAIMS:
                raise value.error(
                    f"claim {name!r} is set by the authorization server",
                    "choose another claim name",
                )

        scopes: set[str] = set()
        scopes_value = s.get("allowed_scopes")
        for scope_item in scopes_value.items() if scopes_value else []:
            scope = scope_item.string()
            if any(ch.isspace() for ch in scope):
                raise scope_item.error(
                    f"scope {scope!r} contains whitespace", "list each scope separately"
                )
            scopes.add(scope)

        audiences: set[str] = set()
        aud_value = s.get("allowed_audiences")
        for aud_item in aud_value.items() if aud_value else []:
            if aud_item.string() == ALL_ROUTES:
                audiences.update(r.audience for r in routes)
            else:
                audiences.add(self.rewrite(_url(aud_item, what="audience")))

        instantie = s.get("instantie_type")
        client = ClientConfig(
            client_id=client_id,
            auth_method=cast(Any, methods[0]),
            secret_hash=secret_hash,
            jwks=jwks,
            tls_subject=tls_subject,
            instantie_type=instantie.string() if instantie else None,
            identifier_claims=MappingProxyType(identifiers),
            extra_claims=MappingProxyType(extra),
            allowed_scopes=frozenset(scopes),
            allowed_audiences=frozenset(audiences),
            allowed_actors=frozenset(s.strings("allowed_actors")),
            auth_methods=frozenset(methods),
        )
        return client, id_value

    def client_secret(self, s: Section, methods: list[str]) -> str | None:
        needs = any(m in SECRET_METHODS for m in methods)
        hash_value, secret_value = s.get("secret_hash"), s.get("secret")
        if hash_value is not None and secret_value is not None:
            raise secret_value.error("give either secret_hash or secret, not both")
        if not needs:
            extra = hash_value or secret_value
            if extra is not None:
                raise extra.error("a secret is only used by client_secret_basic/client_secret_post")
            return None
        if hash_value is not None:
            stored = hash_value.string()
            try:
                parse_secret_hash(stored)
            except ValueError as exc:
                raise hash_value.error(
                    f"invalid secret_hash: {exc}", "create one with `nid-gateway keys hash-secret`"
                ) from None
            return stored
        if secret_value is not None:
            # A clear secret (normally from ${ENV}) is hashed at load and then forgotten.
            return hash_secret(secret_value.string())
        raise s.value.error("client_secret_* needs secret_hash (or secret: ${ENV_VAR})")

    def client_jwks(self, s: Section, methods: list[str]) -> dict[str, Any] | None:
        jwks_value, file_value = s.get("jwks"), s.get("jwks_file")
        if "private_key_jwt" not in methods:
            extra = jwks_value or file_value
            if extra is not None:
                raise extra.error("jwks is only used by private_key_jwt")
            return None
        if jwks_value is not None and file_value is not None:
            raise file_value.error("give either jwks or jwks_file, not both")
        if jwks_value is not None:
            data, where = jwks_value.data(), jwks_value
        elif file_value is not None:
            import json

            path = self.existing(file_value)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise file_value.error(f"cannot read JWKS {path}: {exc}") from None
            where = file_value
        else:
            raise s.value.error("private_key_jwt needs jwks or jwks_file")
        self.check_jwks(data, where)
        return cast(dict[str, Any], data)

    @staticmethod
    def check_jwks(data: Any, where: Value) -> None:
        import jwt

        if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
            raise where.error("expected a JWKS: a mapping with a non-empty 'keys' list")
        for key in data["keys"]:
            if not isinstance(key, dict):
                raise where.error("expected each JWKS key to be a mapping")
            if any(k in key for k in ("d", "p", "q", "k")):
                raise where.error(
                    "the client JWKS contains private key material", "publish public keys only"
                )
            try:
                jwt.PyJWK(key)
            except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
                raise where.error(f"invalid JWK: {exc}") from None

    def client_tls_subject(
        self, s: Section, methods: list[str], server: ServerConfig
    ) -> str | None:
        value = s.get("tls_subject")
        if "tls_client_auth" not in methods:
            if value is not None:
                raise value.error("tls_subject is only used by tls_client_auth")
            return None
        if value is None:
            raise s.value.error(
                "tls_client_auth needs tls_subject",
                "the client certificate's subject DN, e.g. CN=ciz,O=CIZ",
            )
        if server.tls is None or server.tls.client_ca_file is None:
            raise value.error(
                "tls_client_auth needs server.tls with client_ca_file",
                "TLS must end at the gateway",
            )
        from gateway.config.subjects import normalise_subject

        try:
            return normalise_subject(value.string())
        except ValueError as exc:
            raise value.error(
                f"invalid tls_subject: {exc}", "an RFC 4514 DN such as CN=ciz,O=CIZ"
            ) from None

    # -- token validation ---------------------------------------------------------------
    def claim_mapping(self, tokens: Value | None) -> ClaimMapping:
        if tokens is None:
            return default_claim_mapping()
        s = tokens.section(("trusted_issuers", "leeway", "claim_mapping", "cache_size"), "tokens")
        value = s.get("claim_mapping")
        if value is None:
            return default_claim_mapping()
        m = value.section(
            ("instantie_type", "identifiers", "scopes", "client_id", "actor", "aggregated_claims"),
            "tokens.claim_mapping",
        )
        data: dict[str, Any] = {}
        for key in ("instantie_type", "scopes", "client_id"):
            if m.get(key) is not None:
                data[key] = m.strings(key)
        if m.get("actor") is not None:
            data["actor"] = m.string("actor")
        if m.get("aggregated_claims") is not None:
            data["aggregated_claims"] = m.boolean("aggregated_claims", True)
        ids = m.get("identifiers")
        if ids is not None:
            data["identifiers"] = []
            for item in ids.items():
                i = item.section(("claim", "id_type"), "identifier claim")
                data["identifiers"].append(
                    {
                        "claim": i.require("claim").string(),
                        "id_type": i.require("id_type").string().upper(),
                    }
                )
        else:
            data["identifiers"] = [
                {"claim": i.claim, "id_type": i.id_type}
                for i in default_claim_mapping().identifiers
            ]
        return claim_mapping_from_data(data)

    def tokens(
        self,
        value: Value | None,
        issuer: str,
        authserver: AuthServerConfig | None,
        mapping: ClaimMapping,
    ) -> TokenValidationConfig:
        builtin_available = authserver is not None and authserver.enabled
        base = TokenValidationConfig(trusted_issuers=())
        if value is None:
            if not builtin_available:
                raise ConfigError(
                    "no trusted issuer: authserver is off and tokens.trusted_issuers is not set",
                    file=self.path,
                    line=1,
                    col=1,
                )
            return TokenValidationConfig(
                trusted_issuers=(TrustedIssuer(issuer=issuer, builtin=True),), claim_mapping=mapping
            )
        s = value.section(("trusted_issuers", "leeway", "claim_mapping", "cache_size"), "tokens")
        issuers: list[TrustedIssuer] = []
        list_value = s.get("trusted_issuers")
        if list_value is None:
            if builtin_available:
                issuers.append(TrustedIssuer(issuer=issuer, builtin=True))
        else:
            for item in list_value.items():
                issuers.append(self.trusted_issuer(item, issuer, builtin_available))
        if not issuers:
            raise (list_value or s.value).error("expected at least one trusted issuer")
        names = [i.issuer for i in issuers]
        if len(set(names)) != len(names):
            raise (list_value or s.value).error("an issuer is listed twice")
        return TokenValidationConfig(
            trusted_issuers=tuple(issuers),
            leeway=s.number("leeway", base.leeway, minimum=0, maximum=300),
            claim_mapping=mapping,
            cache_size=s.integer("cache_size", base.cache_size, minimum=0),
        )

    def trusted_issuer(self, value: Value, issuer: str, builtin_available: bool) -> TrustedIssuer:
        s = value.section(
            (
                "builtin",
                "issuer",
                "jwks_url",
                "algorithms",
                "jwks_min_refresh_seconds",
                "jwks_refresh_seconds",
                "require_typ",
            ),
            "trusted issuer",
        )
        base = TrustedIssuer(issuer="")
        algorithms = tuple(s.strings("algorithms")) or base.algorithms
        alg_value = s.get("algorithms")
        for alg in algorithms:
            if alg not in VERIFY_ALGORITHMS:
                assert alg_value is not None
                raise alg_value.error(
                    f"algorithm {alg!r} is not accepted",
                    "expected asymmetric: " + ", ".join(VERIFY_ALGORITHMS),
                )
        require_typ = s.boolean("require_typ", True)
        refresh = s.number("jwks_min_refresh_seconds", base.jwks_min_refresh_seconds, minimum=0)
        period = s.number("jwks_refresh_seconds", base.jwks_refresh_seconds, minimum=0)
        if s.boolean("builtin", False):
            if not builtin_available:
                raise value.error(
                    "builtin issuer trusted but the authorization server is not enabled"
                )
            for key in ("issuer", "jwks_url"):
                if s.get(key) is not None:
                    raise s.require(key).error(f"{key} is implied for the builtin issuer")
            return TrustedIssuer(
                issuer=issuer, builtin=True, algorithms=algorithms, require_typ=require_typ
            )
        name = s.require("issuer", "the iss value of the issuer's tokens").string()
        jwks_url = _url(
            s.require("jwks_url", "where the issuer publishes its keys"), what="jwks_url"
        )
        return TrustedIssuer(
            issuer=name,
            jwks_url=jwks_url,
            algorithms=algorithms,
            jwks_min_refresh_seconds=refresh,
            jwks_refresh_seconds=period,
            require_typ=require_typ,
        )

    # -- the rest -----------------------------------------------------------------------
    def graphql(self, value: Value | None) -> GraphQLConfig:
        if value is None:
            return GraphQLConfig()
        s = value.section(("limits", "cache_size"), "graphql")
        limits = GraphQLLimits()
        lv = s.get("limits")
        if lv is not None:
            ls = lv.section(
                ("max_query_length", "max_depth", "max_aliases", "max_list_items", "max_tokens"),
                "graphql.limits",
            )
            limits = GraphQLLimits(
                max_query_length=ls.integer("max_query_length", limits.max_query_length, minimum=1),
                max_depth=ls.integer("max_depth", limits.max_depth, minimum=1),
                max_aliases=ls.integer("max_aliases", limits.max_aliases, minimum=0),
                max_list_items=ls.integer("max_list_items", limits.max_list_items, minimum=1),
                max_tokens=ls.integer("max_tokens", limits.max_tokens, minimum=1),
            )
        return GraphQLConfig(
            limits=limits, cache_size=s.integer("cache_size", GraphQLConfig().cache_size, minimum=0)
        )

    def policy(self, value: Value | None) -> PolicyConfig:
        base = PolicyConfig()
        if value is None:
            return base
        s = value.section(("environment", "shadow", "watch", "watch_interval"), "policy")
        shadow = s.get("shadow")
        return PolicyConfig(
            environment=s.string("environment"),
            shadow=tuple(self.existing(p, directory=None) for p in shadow.items())
            if shadow
            else (),
            watch=s.boolean("watch", base.watch),
            watch_interval=s.number("watch_interval", base.watch_interval, minimum=0.1),
        )

    def observability(self, value: Value | None) -> ObservabilityConfig:
        base = ObservabilityConfig()
        if value is None:
            return base
        s = value.section(
            ("log_format", "log_level", "decision_log", "access_log", "audit", "otel_endpoint"),
            "observability",
        )
        audit_value = s.get("audit")
        otel = s.get("otel_endpoint")
        return ObservabilityConfig(
            log_format=cast(
                Literal["json", "console"],
                s.choice("log_format", ("json", "console"), base.log_format),
            ),
            log_level=s.choice("log_level", ("debug", "info", "warning", "error"), base.log_level),
            audit=self.audit(audit_value) if audit_value else None,
            decision_log=s.boolean("decision_log", base.decision_log),
            otel_endpoint=_url(otel, what="otel_endpoint") if otel else None,
            access_log=s.boolean("access_log", base.access_log),
        )

    def audit(self, value: Value) -> AuditConfig:
        s = value.section(
            ("path", "max_bytes", "rotate_daily", "fsync", "fsync_interval"), "observability.audit"
        )
        base = AuditConfig(path=Path())
        return AuditConfig(
            path=s.require("path").path(self.base),
            max_bytes=s.integer("max_bytes", base.max_bytes, minimum=1024),
            rotate_daily=s.boolean("rotate_daily", base.rotate_daily),
            fsync=cast(
                Literal["always", "interval", "never"],
                s.choice("fsync", ("always", "interval", "never"), base.fsync),
            ),
            fsync_interval=s.number("fsync_interval", base.fsync_interval, minimum=0.01),
        )
