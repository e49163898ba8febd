"""Typed, immutable configuration of one deployment: each setting written once, here.

Pydantic models of ``gateway.yaml`` (+ ``clients.yaml``): every field with its type,
default, bounds and meaning. Unknown keys are errors (a typo must not silently fall back
to a default). Paths are resolved against the file that names them (the ``base`` in the
validation context). Rules between objects (unique routes, trusted issuers, the port
override) are checked by :mod:`gateway.config.loader`, which builds these objects once; the
hot path only ever reads them.

No ``from __future__ import annotations`` here: pydantic would then evaluate every field's
annotation from its text (a ``compile`` each, ~190 fields): ~17M instructions of every
start (bench/bench_coldstart.py --instructions). Validators return ``Self``.
"""

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.config.errors import ConfigError
from gateway.config.secrets import hash_secret, parse_secret_hash
from gateway.config.subjects import normalise_subject
from gateway.config.yamlsource import read_source

DEFAULT_CLAIMS_FILE = Path(__file__).with_name("nid_claims.yaml")
DEFAULT_ABONNEMENTEN_FILE = Path(__file__).with_name("nid_abonnementen.yaml")
MAX_TOKEN_LIFETIME = 3600
"""RFC0014: an access token lives at most one hour."""
ALL_ROUTES = "*routes*"
"""In a client's ``allowed_audiences``: every configured route's audience."""
ADRESBOEK_PATH = "/adresboek"
NOTIFICATIES_PATH = "/notificaties/graphql"
"""The central notification route (routed by the adresboek)."""
RESERVED_PATHS = (
    "/auth/",
    "/.well-known/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/catalogus/",
    "/abonnementen",
    "/access/v1/",
    ADRESBOEK_PATH,
    "/notificaties/",
)
SCOPELESS_PATHS = ("/catalogus/notificatietypen", "/adresboek", "/abonnementen")
"""The read-only endpoints: a token whose audience is one of them (``public_url`` + path)
needs no scope (contract: "Read-only endpoints")."""
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
AuthMethod = Literal[
    "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"
]
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
VerifyAlgorithm = Literal[
    "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512", "EdDSA"
]
"""Asymmetric algorithms only: an HMAC key would be the issuer's secret."""


def problem(message: str, hint: str | None = None, *, at: str | None = None) -> Exception:
    """A validation error with a hint; *at* names the key of the object it is about (its
    position is reported), else the position is the object's or the field's."""
    return PydanticCustomError("config", "{message}", {"message": message, "hint": hint, "at": at})


# -- field types: how a YAML value becomes a setting -----------------------------------------
def _one_or_many(value: Any) -> Any:
    """A single string is accepted as a list of one."""
    return [value] if isinstance(value, str) else value


def _number_text(value: Any) -> Any:
    """Identifiers such as ``id: 5151`` are naturally written as numbers; keep the text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _upper(text: str) -> str:
    # A plain function, not ``str.upper``: pydantic reads a validator's signature to know
    # whether it takes ``info``, and a builtin's is parsed from its text signature
    # (~8M instructions each, three uses: bench/bench_coldstart.py --instructions).
    return text.upper()


def _absolute_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise problem(f"not an absolute http(s) URL: {text!r}", "e.g. https://host/path")
    return text


def _resolve(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value
    base = (info.context or {}).get("base", Path.cwd())
    return (Path(base) / value).resolve()


def _existing(kind: str) -> Any:
    checks = {"file": Path.is_file, "directory": Path.is_dir, "file or directory": Path.exists}

    def check(path: Path, info: ValidationInfo) -> Path:
        if not checks[kind](path):
            base = (info.context or {}).get("base", Path.cwd())
            raise problem(f"{kind} not found: {path}", f"paths are relative to {base}")
        return path

    return AfterValidator(check)


def _one_word(scope: str) -> str:
    if any(ch.isspace() for ch in scope):
        raise problem(f"scope {scope!r} contains whitespace", "list each scope separately")
    return scope


def _scope_template(text: str) -> str:
    if any(ch.isspace() for ch in text):
        raise problem(f"scope {text!r} contains whitespace", "a scope is one word")
    try:
        text.format_map({name: "x" for name in SCOPE_FIELDS})
    except (KeyError, ValueError, IndexError) as exc:
        raise problem(
            f"invalid scope template {text!r}: {exc}",
            "placeholders allowed: {kind}, {id_type}, {id}",
        ) from None
    return text


Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, BeforeValidator(_number_text), Strict(), StringConstraints(min_length=1)]
"""A non-empty string; a plain number is kept as its text (``id: 5151``), a boolean is not."""
Texts = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many)]
Url = Annotated[Text, AfterValidator(_absolute_url)]
BaseUrl = Annotated[Url, AfterValidator(lambda url: url.rstrip("/"))]
Port = Annotated[Int, Field(ge=0, le=65535)]
Seconds = Annotated[Number, Field(ge=0.001, le=600)]
ClientSeconds = Annotated[Number, Field(ge=0.01, le=3600)]
ScopeTemplate = Annotated[Text, AfterValidator(_scope_template)]
Scope = Annotated[Text, AfterValidator(_one_word)]
Audience = Annotated[Text, AfterValidator(lambda a: a if a == ALL_ROUTES else _absolute_url(a))]
AnyPath = Annotated[Path, BeforeValidator(_resolve)]
ExistingFile = Annotated[Path, BeforeValidator(_resolve), _existing("file")]
ExistingPath = Annotated[Path, BeforeValidator(_resolve), _existing("file or directory")]


class Model(BaseModel):
    """Frozen, strict about unknown keys; assigning to a field is an AttributeError."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @model_validator(mode="before")
    @classmethod
    def _no_derived_keys(cls, data: Any) -> Any:
        """Fields the loader sets (``exclude=True``) are not keys of the file."""
        for name, spec in cls.model_fields.items():
            if spec.exclude and isinstance(data, dict) and name in data:
                raise problem(f"unknown key {name!r} in {cls.model_config.get('title')}", at=name)
        return data


class FileModel(Model):
    """A whole file: top-level keys starting with ``x-`` are ignored (a place for YAML
    anchors, as in docker compose files)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data


# -- server -----------------------------------------------------------------------------------
class TlsConfig(Model):
    """TLS terminated by the gateway (needed for ``tls_client_auth``)."""

    model_config = ConfigDict(title="server.tls")
    cert_file: ExistingFile
    key_file: ExistingFile
    client_ca_file: ExistingFile | None = None
    """CA that signs client certificates; when set, client certificates are requested."""
    require_client_cert: Bool = False

    @model_validator(mode="after")
    def _ca_for_required_certs(self) -> Self:
        if self.require_client_cert and self.client_ca_file is None:
            raise problem(
                "require_client_cert needs client_ca_file",
                "name the CA that signs client certificates",
            )
        return self


class ClientTimeouts(Model):
    """How long a client may take, in seconds (slow-client protection)."""

    model_config = ConfigDict(title="server.timeouts")
    header: ClientSeconds = 10.0
    """From connecting (or the first byte after a keep-alive pause) to a complete request
    head; a connection that has not sent one by then is closed."""
    body: ClientSeconds = 30.0
    """From the end of the request head to the end of its body; then ``408`` and close."""
    keepalive: ClientSeconds = 15.0
    """An idle keep-alive connection is closed after this long."""


class AdminListener(Model):
    """A second listener for operators: ``/readyz`` with details, ``/metrics``, ``/healthz``."""

    model_config = ConfigDict(title="server.admin")
    host: Text = "127.0.0.1"
    port: Port = 9090
    """Must differ from the public port (checked by the loader)."""


class ServerConfig(Model):
    model_config = ConfigDict(title="server")
    host: Text = "127.0.0.1"
    port: Port = 8080
    tls: TlsConfig | None = None
    max_body_bytes: Annotated[Int, Field(ge=1024)] = 1024 * 1024
    timeouts: ClientTimeouts = ClientTimeouts()
    max_connections: Annotated[Int, Field(ge=16, le=1_000_000)] = 1000
    """Open client connections per process; lowered at start to fit the open-file limit."""
    shutdown_grace_seconds: Annotated[Number, Field(ge=0, le=3600)] = 25.0
    """On SIGTERM, in-flight requests get this long to finish before they are cancelled."""
    admin: AdminListener | None = None
    """Off by default; when set, ``/metrics`` moves from the public listener to this one."""


# -- authorization server -----------------------------------------------------------------------
class SigningConfig(Model):
    """Keys of the built-in authorization server."""

    model_config = ConfigDict(title="authserver.signing")
    keys_dir: AnyPath
    """Holds ``<kid>.pem`` private keys and ``jwks.json``; the newest key signs."""
    algorithm: Literal["RS256", "ES256"] = "ES256"
    generate_if_missing: Bool = False
    """Demo only: create a key pair on first start."""

    @model_validator(mode="after")
    def _generate_only_in_the_demo(self, info: ValidationInfo) -> Self:
        if self.generate_if_missing and not (info.context or {}).get("demo"):
            raise problem(
                "generate_if_missing is for the demo only",
                "set demo: true, or create keys with `nid-gateway keys generate`",
                at="generate_if_missing",
            )
        return self


class ClientConfig(Model):
    """One OAuth2 client of the authorization server (from ``clients.yaml``)."""

    model_config = ConfigDict(title="client")
    client_id: Text
    auth_method: Annotated[
        tuple[AuthMethod, ...], BeforeValidator(_one_or_many), Field(min_length=1)
    ]
    """Every authentication method accepted for this client (one, or a list: lets a secret
    client use both basic and post)."""
    secret_hash: Text | None = None
    """``sha256$<salt>$<digest>`` for the secret methods (``nid-gateway keys hash-secret``)."""
    secret: Text | None = Field(None, repr=False)
    """A clear secret (normally ``${ENV}``): hashed into ``secret_hash`` at load, then None."""
    jwks: Mapping[str, Any] | None = None
    """Public JWKS for ``private_key_jwt`` (inline, or loaded from ``jwks_file``)."""
    jwks_file: ExistingFile | None = None
    tls_subject: Text | None = None
    """Certificate subject DN mapped to this client for ``tls_client_auth`` (RFC 4514)."""
    instantie_type: Text | None = None
    identifiers: Mapping[str, Text] = {}
    """Claims put in the token, e.g. ``{"uzovi": "5151"}`` (claims of the claim mapping)."""
    extra_claims: Mapping[str, Text] = {}
    """Other claims put in the token, e.g. ``{"instantie_naam": "Zorgkantoor Noord"}``."""
    allowed_scopes: frozenset[Scope] = frozenset()
    allowed_audiences: frozenset[Audience] = frozenset()
    """Audience URLs; ``"*routes*"`` expands to every configured route's audience."""
    allowed_actors: frozenset[Text] = frozenset()
    """Values allowed for the ``actor`` request parameter (becomes ``act.sub``)."""

    @property
    def identifier_claims(self) -> Mapping[str, str]:
        """The ``identifiers`` key, as the token issuer names them."""
        return self.identifiers

    def accepts(self, method: str) -> bool:
        """Whether *method* may authenticate this client."""
        return method in self.auth_method

    @model_validator(mode="after")
    def _credentials_fit_the_methods(self) -> Self:
        methods = set(self.auth_method)
        self._secret(any(m in SECRET_METHODS for m in methods))
        self._jwks("private_key_jwt" in methods)
        if "tls_client_auth" not in methods and self.tls_subject is not None:
            raise problem("tls_subject is only used by tls_client_auth", at="tls_subject")
        if "tls_client_auth" in methods:
            if self.tls_subject is None:
                raise problem(
                    "tls_client_auth needs tls_subject",
                    "the client certificate's subject DN, e.g. CN=ciz,O=CIZ",
                )
            try:
                object.__setattr__(self, "tls_subject", normalise_subject(self.tls_subject))
            except ValueError as exc:
                raise problem(
                    f"invalid tls_subject: {exc}",
                    "an RFC 4514 DN such as CN=ciz,O=CIZ",
                    at="tls_subject",
                ) from None
        for name in (*self.identifiers, *self.extra_claims):
            if name in RESERVED_CLAIMS:
                raise problem(
                    f"claim {name!r} is set by the authorization server",
                    "choose another claim name",
                )
        return self

    def _secret(self, needed: bool) -> None:
        if self.secret_hash is not None and self.secret is not None:
            raise problem("give either secret_hash or secret, not both", at="secret")
        if not needed:
            if self.secret_hash is not None or self.secret is not None:
                raise problem(
                    "a secret is only used by client_secret_basic/client_secret_post",
                    at="secret_hash" if self.secret is None else "secret",
                )
            return
        if self.secret is not None:
            # A clear secret is hashed at load and then forgotten.
            object.__setattr__(self, "secret_hash", hash_secret(self.secret))
            object.__setattr__(self, "secret", None)
        elif self.secret_hash is None:
            raise problem("client_secret_* needs secret_hash (or secret: ${ENV_VAR})")
        else:
            try:
                parse_secret_hash(self.secret_hash)
            except ValueError as exc:
                raise problem(
                    f"invalid secret_hash: {exc}",
                    "create one with `nid-gateway keys hash-secret`",
                    at="secret_hash",
                ) from None

    def _jwks(self, needed: bool) -> None:
        if not needed:
            if self.jwks is not None or self.jwks_file is not None:
                raise problem(
                    "jwks is only used by private_key_jwt",
                    at="jwks" if self.jwks is not None else "jwks_file",
                )
            return
        if self.jwks is not None and self.jwks_file is not None:
            raise problem("give either jwks or jwks_file, not both", at="jwks_file")
        if self.jwks_file is not None:
            try:
                data = json.loads(self.jwks_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise problem(f"cannot read JWKS {self.jwks_file}: {exc}", at="jwks_file") from None
            object.__setattr__(self, "jwks", data)
        if self.jwks is None:
            raise problem("private_key_jwt needs jwks or jwks_file")
        _check_public_jwks(self.jwks, "jwks" if self.jwks_file is None else "jwks_file")


def _check_public_jwks(data: Any, at: str) -> None:
    import jwt

    keys = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(keys, list) or not keys:
        raise problem("expected a JWKS: a mapping with a non-empty 'keys' list", at=at)
    for key in keys:
        if not isinstance(key, dict):
            raise problem("expected each JWKS key to be a mapping", at=at)
        if any(k in key for k in ("d", "p", "q", "k")):
            raise problem(
                "the client JWKS contains private key material", "publish public keys only", at=at
            )
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
            raise problem(f"invalid JWK: {exc}", at=at) from None


class ClientsFile(FileModel):
    """``clients.yaml``: the clients, apart from the deployment settings."""

    model_config = ConfigDict(title="clients file")
    clients: tuple[ClientConfig, ...]


class BruteForceConfig(Model):
    """Limits on failed client authentications at the token endpoint (moving window)."""

    model_config = ConfigDict(title="authserver.brute_force")
    max_failures_per_client: Annotated[Int, Field(ge=1, le=10_000)] = 10
    """Failures per claimed client_id within the window; then ``429`` for that client_id."""
    max_failures_per_address: Annotated[Int, Field(ge=1, le=100_000)] = 50
    """Failures per source address within the window; then ``429`` for that address."""
    window_seconds: Annotated[Int, Field(ge=1, le=86_400)] = 60


class AuthServerConfig(Model):
    model_config = ConfigDict(title="authserver")
    enabled: Bool = True
    signing: SigningConfig
    token_lifetime: Annotated[Int, Field(ge=1, le=MAX_TOKEN_LIFETIME)] = 3600
    """Seconds; at most 3600 (RFC0014)."""
    clients: tuple[ClientConfig, ...] = ()
    clients_file: ExistingFile | None = None
    """A ``clients.yaml`` holding the clients (its paths relative to it); or ``clients``."""
    assertion_max_lifetime: Annotated[Int, Field(ge=1, le=3600)] = 300
    """Longest accepted lifetime of a private_key_jwt client assertion, seconds."""
    brute_force: BruteForceConfig = BruteForceConfig()

    @model_validator(mode="after")
    def _clients_in_one_place(self) -> Self:
        if self.clients and self.clients_file is not None:
            raise problem("give either clients or clients_file, not both", at="clients_file")
        return self


# -- token validation ---------------------------------------------------------------------------
class IdentifierClaim(Model):
    """A token claim that carries the caller's identifier, and its identifier type."""

    model_config = ConfigDict(title="identifier claim")
    claim: Text
    """e.g. ``uzovi``, ``kvk``, ``kvknummer``."""
    id_type: Annotated[Text, AfterValidator(_upper)]
    """e.g. ``UZOVI``, ``KVK``."""


def _shipped(file: Path) -> dict[str, Any]:
    """A YAML file shipped with the gateway, read by the one YAML reader (libyaml composes
    it; a duplicate key or a syntax error is a :class:`ConfigError` at ``file:line:col``)."""
    source, issues = read_source(file)
    if not issues and not isinstance(source.data, dict):
        issues = [source.issue((), "expected a mapping")]
    if issues:
        raise ConfigError(issues=issues)
    data: dict[str, Any] = source.data
    return data


@cache
def _nid_claims() -> dict[str, Any]:
    return _shipped(DEFAULT_CLAIMS_FILE)


class ClaimMapping(Model):
    """Where the facts live in a token. Defaults (``nid_claims.yaml``) fit our tokens and nID's."""

    model_config = ConfigDict(title="tokens.claim_mapping")
    instantie_type: Texts = ("instantie_type",)
    identifiers: tuple[IdentifierClaim, ...] = Field(
        default_factory=lambda: tuple(IdentifierClaim(**i) for i in _nid_claims()["identifiers"])
    )
    scopes: Texts = ("scope", "scopes")
    scope_aliases: Mapping[Scope, Scope] = Field(
        default_factory=lambda: dict(_nid_claims().get("scope_aliases") or {})
    )
    """A scope the network still accepts in place of another (old -> current): a token
    holding the old one also holds the current one, for the scope gate and the policies."""
    client_id: Texts = ("client_id", "sub")
    actor: Text = "act.sub"
    aggregated_claims: Bool = True
    """Resolve OpenID aggregated claims (``_claim_names``/``_claim_sources``), verifying
    each nested JWT against a trusted issuer."""


@cache
def default_claim_mapping() -> ClaimMapping:
    """The nID claim mapping shipped with the gateway."""
    return ClaimMapping.model_validate(_nid_claims())


class TrustedIssuer(Model):
    model_config = ConfigDict(title="trusted issuer")
    issuer: Text = ""
    """The ``iss`` of the issuer's tokens (implied for the builtin issuer)."""
    builtin: Bool = False
    """The built-in authorization server (keys in process)."""
    jwks_url: Url | None = None
    """Where the issuer publishes its keys."""
    algorithms: Annotated[tuple[VerifyAlgorithm, ...], BeforeValidator(_one_or_many)] = (
        "RS256",
        "ES256",
        "PS256",
        "EdDSA",
    )
    jwks_min_refresh_seconds: Annotated[Number, Field(ge=0)] = 30.0
    """An unknown ``kid`` triggers at most one JWKS fetch per this interval."""
    jwks_refresh_seconds: Annotated[Number, Field(ge=0)] = 300.0
    """The key set is refetched this often, so a key the issuer withdraws stops being trusted
    (and tokens it signed leave the verified-token cache); 0: only on an unknown ``kid``."""
    require_typ: Bool = True
    """Require ``typ: at+jwt``."""

    @model_validator(mode="after")
    def _builtin_or_remote(self) -> Self:
        if self.builtin:
            for key in ("issuer", "jwks_url"):
                if getattr(self, key):
                    raise problem(f"{key} is implied for the builtin issuer", at=key)
        elif not self.issuer:
            raise problem(
                "missing required key 'issuer' in trusted issuer",
                "the iss value of the issuer's tokens",
            )
        elif self.jwks_url is None:
            raise problem(
                "missing required key 'jwks_url' in trusted issuer",
                "where the issuer publishes its keys",
            )
        return self


class TokenValidationConfig(Model):
    model_config = ConfigDict(title="tokens")
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    """Absent: the built-in authorization server's issuer (when it is enabled)."""
    leeway: Annotated[Number, Field(ge=0, le=300)] = 30.0
    claim_mapping: ClaimMapping = Field(default_factory=default_claim_mapping)
    cache_size: Annotated[Int, Field(ge=0)] = 10_000
    """Verified-token cache entries (keyed by the whole token, honours ``exp``)."""


# -- GraphQL ------------------------------------------------------------------------------------
class GraphQLLimits(Model):
    model_config = ConfigDict(title="graphql.limits")
    max_query_length: Annotated[Int, Field(ge=1)] = 20_000
    max_depth: Annotated[Int, Field(ge=1)] = 15
    max_aliases: Annotated[Int, Field(ge=0)] = 30
    max_list_items: Annotated[Int, Field(ge=1)] = 1_000
    max_tokens: Annotated[Int, Field(ge=1)] = 5_000


class GraphQLConfig(Model):
    model_config = ConfigDict(title="graphql")
    limits: GraphQLLimits = GraphQLLimits()
    cache_size: Annotated[Int, Field(ge=0)] = 1_024
    """Parsed-document cache entries (LRU, keyed by the query text)."""


# -- routes -------------------------------------------------------------------------------------
def _kind(kind: str) -> str:
    if not kind.isidentifier() or kind != kind.lower():
        raise problem(
            f"invalid deelnemer kind {kind!r}",
            "expected a lowercase scope word such as zorgkantoor, zorgaanbieder, onderneming",
        )
    return kind


def _route_path(path: str) -> str:
    if not path.startswith("/") or any(ch.isspace() for ch in path) or "?" in path:
        raise problem(
            f"invalid route path {path!r}",
            "expected an absolute path like /deelnemers/uzovi/5151/graphql",
        )
    if any(path.startswith(p) or path == p.rstrip("/") for p in RESERVED_PATHS):
        raise problem(
            f"route path {path!r} collides with a gateway endpoint",
            "reserved: " + ", ".join(RESERVED_PATHS),
        )
    return path


class Deelnemer(Model):
    model_config = ConfigDict(title="deelnemer")
    id_type: Annotated[Text, AfterValidator(_upper)]
    """e.g. ``UZOVI``."""
    id: Text
    kind: Annotated[Text, AfterValidator(_kind)]
    """Scope word: ``zorgkantoor``, ``zorgaanbieder``, ``onderneming``, ..."""
    name: str = ""


class Timeouts(Model):
    model_config = ConfigDict(title="timeouts")
    connect: Seconds = 5.0
    read: Seconds = 30.0
    total: Seconds = 30.0


class Deprecation(Model):
    """A deprecated API: every answer of the route says so (RFC 9745, RFC 8594)."""

    model_config = ConfigDict(title="deprecation")
    deprecated_since: datetime
    """Sent as ``Deprecation: @<epoch seconds>``."""
    sunset: datetime
    """Sent as ``Sunset: <HTTP-date>``: after it the API may answer no more."""
    link: Url | None = None
    """Sent as ``Link: <url>; rel="deprecation"``: where to read what replaces it."""

    @model_validator(mode="after")
    def _zoned(self) -> Self:
        for moment in (self.deprecated_since, self.sunset):
            if moment.tzinfo is None:
                raise problem("a deprecation moment needs a time zone", "e.g. 2024-01-01T00:00:00Z")
        return self


class RestLookup(Model):
    """A context fact from another REST route's upstream (a register such as the
    Ketenindex): ``GET`` its origin + ``path`` with ``{key}`` filled in from the request; the
    JSON answer reaches the policy as ``extra.<name>`` (404: ``{}``, unknown)."""

    model_config = ConfigDict(title="rest.lookups")
    name: Annotated[Text, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    route: Text
    """The route (its path) whose upstream answers, e.g. ``/ketenindex``."""
    path: Annotated[Text, StringConstraints(pattern=r"^/.*\{key\}")]
    """e.g. ``/ketenindex/overleggen/{key}``."""
    key: Texts
    """Request facts holding the key, the first present wins: ``params.id``,
    ``query.overleg``, ``body.overlegId``; none present: the lookup is not asked."""


class RestConfig(Model):
    """A REST route (``kind: rest``): its path is a prefix, every path below it is the
    route's; GET is read, every other method write."""

    model_config = ConfigDict(title="rest")
    read_scope: Scope
    """The scope a GET needs, e.g. ``ketenindex/gebeurtenissen:read``."""
    write_scope: Scope | None = None
    """The scope every other method needs; None: the route is read-only (other methods 405)."""
    openapi: ExistingFile | None = None
    """An OpenAPI 3 document (paths relative to the route's path): only its operations pass,
    their parameters and bodies validated, before any policy."""
    deprecation: Deprecation | None = None
    lookups: tuple[RestLookup, ...] = ()
    """Context facts gathered before the policy decides (fail closed: 503 when unanswered)."""


class RouteConfig(Model):
    model_config = ConfigDict(title="route")
    path: Annotated[Text, AfterValidator(_route_path)]
    """e.g. ``/deelnemers/uzovi/5151/graphql``; for a REST route its prefix (``/ketenindex``)."""
    upstream: Url
    """The deelnemer's resource server URL; for a REST route its origin (the request path
    as received and the query string are appended)."""
    deelnemer: Deelnemer | None = None
    """Required on GraphQL routes; a REST route (a register, an API) may name none."""
    rest: RestConfig | None = None
    """Present: a REST route (method + path + query + headers + JSON body), not GraphQL."""
    audience: Url = ""
    """``public_url`` + ``path`` unless set explicitly (filled in by the loader)."""
    policies: Annotated[tuple[ExistingPath, ...], Field(min_length=1)]
    """Policy files or directories; fail closed: a route without policy refuses everything."""
    required_scopes: Mapping[str, ScopeTemplate] = {}
    """Root field -> scope the token must hold; the loader adds the top-level ``scopes`` and
    fills in ``{kind}``, e.g. ``{"zendNotificatie":
    "organisaties/zorgkantoor/notificaties/notificatie:create"}``. A root field not listed
    needs ``scope_default`` (if set), else is refused."""
    scope_default: ScopeTemplate | None = None
    schema_: ExistingFile | None = Field(None, alias="schema")
    """The GraphQL SDL requests are validated against; absent: the bundled network schema;
    ``none``: no validation (explicitly, never by omission; logged at start-up)."""
    schema_validation: bool = Field(True, exclude=True)
    """False only with an explicit ``schema: none`` (set by the loader, not a key)."""
    timeouts: Timeouts = Timeouts()
    pool_size: Annotated[Int, Field(ge=1, le=10_000)] = 100
    allow_plain_jwt: Bool = False
    """Accept tokens without ``typ: at+jwt`` (tokens of other issuers)."""
    strict_input: Bool = False
    forward_authorization: Bool = False
    """Pass the caller's ``Authorization`` header to the upstream. Off by default: the
    upstream gets the verified payload in the ``claims`` header, and forwarding the bearer
    token would let the resource server replay it."""

    @model_validator(mode="after")
    def _deelnemer_or_rest(self) -> Self:
        if self.rest is None and self.deelnemer is None:
            raise problem("a GraphQL route needs a deelnemer", "add deelnemer: {id_type, id, kind}")
        if self.rest is not None and self.path.endswith("/"):
            raise problem(
                f"REST route path {self.path!r} ends in /", "write the prefix: /ketenindex"
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _schema_none(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, dict) and data.get("schema") == "none":
            route = handler({**data, "schema": None})
            return route.model_copy(update={"schema_validation": False})
        return handler(data)

    @property
    def schema(self) -> Path | None:  # type: ignore[override]
        return self.schema_


# -- the adresboek and the central notification route -----------------------------------------
class AdresboekOntvanger(Model):
    """How recipients of one identifier type are found in the adresboek."""

    model_config = ConfigDict(title="adresboek.ontvangers")
    kind: Annotated[Text, AfterValidator(_kind)]
    """The scope word of these recipients (the central route's scope gate), e.g. zorgaanbieder."""
    organisaties: Mapping[Text, Text] = {}
    """Identifier -> the organisation part of its gegevensdienstId, where that is not the
    identifier itself (the CIZ: KVK ``62253778`` -> ``CIZ``)."""


class AdresboekConfig(Model):
    """The network's adresboek (interim iWlz format, ``docs/adresboek.md``)."""

    model_config = ConfigDict(title="adresboek")
    file: ExistingFile
    """The adresboek JSON (``{"electronicServices": [...]}``); reloaded when it changes."""
    environment: Literal["PRD", "TST", "ACC"]
    """The gegevensdienstId environment this gateway delivers in."""
    systeemrollen: Annotated[tuple[Text, ...], Field(min_length=1)]
    """The systeemrolcodes that receive notifications, the first one a recipient has wins."""
    ontvangers: Annotated[
        Mapping[Annotated[Text, AfterValidator(_upper)], AdresboekOntvanger], Field(min_length=1)
    ]
    """Recipient identifier type (``ontvangerIDType``) -> how such recipients are found."""
    upstream: Url | None = Field(None, exclude=True)
    """``demo --upstream URL``: every endpoint is URL (set by the loader, not a key)."""
    moved: Mapping[str, str] = Field(default_factory=dict, exclude=True)
    """Endpoint -> where the demo serves it (its bundled example servers; not a key)."""


class RecipientFields(Model):
    """Where the recipient is in a notification's arguments."""

    model_config = ConfigDict(title="notificaties.recipient")
    id_type: Text
    """Dotted argument path, e.g. ``notificatieInput.ontvangerIDType``."""
    id: Text
    """Dotted argument path, e.g. ``notificatieInput.ontvangerID``."""


class NotificatiesConfig(Model):
    """The central notification route ``POST /notificaties/graphql``: decided like a
    deelnemer's route with the body's recipient as the deelnemer, then forwarded to the
    recipient's endpoint in the adresboek."""

    model_config = ConfigDict(title="notificaties")
    policies: Annotated[tuple[ExistingPath, ...], Field(min_length=1)]
    recipient: RecipientFields
    audience: Url = ""
    """``public_url`` + ``/notificaties/graphql`` unless set (filled in by the loader)."""
    required_scopes: Mapping[str, ScopeTemplate] = {}
    """As a route's; the top-level ``scopes`` are added and ``{kind}`` is the recipient's."""
    timeouts: Timeouts = Timeouts()
    pool_size: Annotated[Int, Field(ge=1, le=10_000)] = 100
    allow_plain_jwt: Bool = False
    strict_input: Bool = False
    forward_authorization: Bool = False


# -- subscriptions: where their mutations and arguments are ---------------------------------
GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def _graphql_name(name: str) -> str:
    if not GRAPHQL_NAME.fullmatch(name):
        raise problem(f"not a GraphQL field name: {name!r}", "e.g. createAbonnement")
    return name


def _argument_path(path: str) -> str:
    if not all(GRAPHQL_NAME.fullmatch(part) for part in path.split(".")):
        raise problem(
            f"not a dotted argument path: {path!r}", "e.g. abonnementInput.abonnementTypeId"
        )
    return path


FieldName = Annotated[Text, AfterValidator(_graphql_name)]
ArgumentPath = Annotated[Text, AfterValidator(_argument_path)]


@cache
def _nid_abonnementen() -> dict[str, Any]:
    return _shipped(DEFAULT_ABONNEMENTEN_FILE)


class _Defaulted(Model):
    """A key not written takes its value from ``nid_abonnementen.yaml`` (the iWlz schema's
    names): the names are domain facts, kept out of Python."""

    section: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return {**_nid_abonnementen()[cls.section], **data} if isinstance(data, dict) else data


class CreateAbonnement(_Defaulted):
    """The mutation that subscribes, and where the gateway reads what it records."""

    model_config = ConfigDict(title="abonnementen.create")
    section = "create"
    field: FieldName
    answer_id: ArgumentPath
    """In the confirmed answer's ``data.<field>``: the new subscription's id."""
    type: ArgumentPath
    """Argument: the notificatietype subscribed to."""
    organisatie: ArgumentPath
    """Argument: the subscriber's organisatieId."""


class DeleteAbonnement(_Defaulted):
    """The mutation that ends a subscription."""

    model_config = ConfigDict(title="abonnementen.delete")
    section = "delete"
    field: FieldName
    id: ArgumentPath
    """Argument: the abonnementId it ends (the lookup reads that subscription)."""
    reason: ArgumentPath
    """Argument: why (optional in a request; recorded as ``end_reason``)."""


class AbonnementenConfig(Model):
    """Where the subscription mutations and their arguments are (``docs/abonnementen.md``);
    every key defaults to the iWlz schema's name (``gateway/config/nid_abonnementen.yaml``)."""

    model_config = ConfigDict(title="abonnementen")
    create: CreateAbonnement = Field(default_factory=lambda: CreateAbonnement.model_validate({}))
    delete: DeleteAbonnement = Field(default_factory=lambda: DeleteAbonnement.model_validate({}))
    kenmerk: Mapping[FieldName, ArgumentPath] = Field(
        default_factory=lambda: dict(_nid_abonnementen()["kenmerk"])
    )
    """Root field -> the argument holding the abonnementId a (voluntary) notification carries."""

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if self.create.field == self.delete.field:
            raise problem(
                f"create and delete name the same mutation {self.create.field!r}", at="delete"
            )
        for name in (self.create.field, self.delete.field):
            if name in self.kenmerk:
                raise problem(
                    f"kenmerk names the subscription mutation {name!r}",
                    "kenmerk lists the notifications that carry an abonnementId",
                    at="kenmerk",
                )
        return self

    @property
    def key_arguments(self) -> Mapping[str, str]:
        """Root field -> the argument naming the subscription the lookup reads."""
        return {self.delete.field: self.delete.id, **self.kenmerk}


# -- the rest -----------------------------------------------------------------------------------
class StoreConfig(Model):
    """The durable store of subscriptions and deliveries (``docs/store.md``)."""

    model_config = ConfigDict(title="store")
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    """``sqlite``: one file, for one host; ``postgresql``: shared by several replicas."""
    path: AnyPath | None = None
    """The SQLite file; default ``<data_dir>/nid-gateway.sqlite3``."""
    dsn: Text | None = Field(default=None, repr=False)
    """PostgreSQL connection URL, normally ``${ENV}`` (it may hold a password)."""
    pool_size: Annotated[Int, Field(ge=1, le=100)] = 10
    """PostgreSQL connections per gateway process."""
    timeout: Seconds = 5.0
    """Seconds a store operation may wait (SQLite write lock, PostgreSQL connect or
    statement) before it fails as unavailable: the request fails closed."""

    @model_validator(mode="after")
    def _dsn_for_postgresql(self) -> Self:
        if self.backend == "postgresql" and self.dsn is None:
            raise problem("store backend postgresql needs dsn", "e.g. dsn: ${NID_STORE_DSN}")
        if self.backend == "sqlite" and self.dsn is not None:
            raise problem("dsn is for backend: postgresql", "sqlite takes path", at="dsn")
        return self


class DeliveryConfig(Model):
    """Reliable delivery of ``Prefer: respond-async`` notifications (``docs/delivery.md``)."""

    model_config = ConfigDict(title="delivery")
    max_attempts: Annotated[Int, Field(ge=1, le=1000)] = 10
    """Attempts before a delivery goes to the uitvallijst (``dead``)."""
    max_age: Annotated[Number, Field(ge=1, le=30 * 86400)] = 86400.0
    """Seconds after acceptance when a failing delivery stops being retried (``dead``)."""
    backoff_initial: Annotated[Number, Field(ge=0.01, le=30)] = 1.0
    """Upper bound of the first retry's wait (exponential back-off, full jitter)."""
    backoff_max: Annotated[Number, Field(ge=0.01, le=30)] = 30.0
    """Cap of every wait: a pending delivery is tried again at least this often."""
    per_recipient: Annotated[Int, Field(ge=1, le=1000)] = 4
    """Attempts in flight at once to one recipient (per gateway process)."""
    batch: Annotated[Int, Field(ge=1, le=10_000)] = 100
    """Deliveries claimed at once (in flight per gateway process)."""
    poll_interval: Annotated[Number, Field(ge=0.05, le=5)] = 1.0
    """Seconds between looks for due deliveries (a replayed one is taken up within it)."""
    lease: Annotated[Number, Field(ge=1, le=3600)] = 25.0
    """Seconds a claimed delivery is held by its worker; a dead worker's claim is free again
    after it. Must exceed ``timeout``."""
    timeout: Seconds = 10.0
    """Seconds one attempt may take (connect to last byte of the answer)."""

    @model_validator(mode="after")
    def _lease_covers_attempt(self) -> Self:
        if self.lease <= self.timeout:
            raise problem("delivery lease must exceed timeout", "e.g. lease: 60, timeout: 10")
        return self


class PolicyConfig(Model):
    model_config = ConfigDict(title="policy")
    environment: Text | None = None
    """Selects the data overlay (e.g. ``productie``, ``test``); None = the RFC defaults."""
    shadow: tuple[ExistingPath, ...] = ()
    """Policy files evaluated beside the active ones, logged, never enforced."""
    watch: Bool = True
    watch_interval: Annotated[Number, Field(ge=0.1)] = 2.0
    require_tests: Bool = False
    """Run the policy set's ``*.test.yaml`` cases at start and on every reload; a set whose
    cases fail (or that has none) is refused, and the last good set keeps serving."""


class PipConfig(Model):
    """The policy information point: how the gateway asks a register for the facts a
    policy's ``lookups:`` declare (docs/policies.md, *Lookups*)."""

    model_config = ConfigDict(title="pip")
    timeout: Annotated[Number, Field(gt=0, le=60)] = 2.0
    """Seconds for all lookups of one request together; slower: refused with 503."""
    cache_ttl: Annotated[Number, Field(ge=0, le=3600)] = 30.0
    """Seconds an answer is reused for the same query and variables (0: never)."""
    cache_size: Annotated[Int, Field(ge=1, le=1_000_000)] = 1024
    client_id: Text = "nid-gateway-pip"
    """``sub``/``client_id`` of the token the gateway signs for itself (built-in issuer)."""
    token_lifetime: Annotated[Int, Field(ge=30, le=3600)] = 300


class AuditConfig(Model):
    model_config = ConfigDict(title="observability.audit")
    path: AnyPath
    max_bytes: Annotated[Int, Field(ge=1024)] = 100 * 1024 * 1024
    rotate_daily: Bool = True
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval: Annotated[Number, Field(ge=0.01)] = 1.0


class ObservabilityConfig(Model):
    model_config = ConfigDict(title="observability")
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    audit: AuditConfig | None = None
    decision_log: Bool = True
    """Log one decision event per request (the audit sink, when set, always records)."""
    otel_endpoint: Url | None = None
    access_log: Bool = False
    """Log one ``access`` event per HTTP request (``GatewayAccessLogger``). Off by default:
    every PEP request already has its decision event; this adds the other endpoints
    (``/auth/token``, ``/metrics``, health probes) at the cost of a second line per request."""


class GatewayConfig(FileModel):
    """``gateway.yaml``."""

    model_config = ConfigDict(title="gateway configuration")
    source: Path = Field(Path(), exclude=True)
    """The file this was loaded from (set by the loader, not a key)."""
    issuer: BaseUrl = ""
    """Our tokens' ``iss``; default: ``public_url``."""
    public_url: BaseUrl = ""
    """Where clients reach the gateway; default ``http://<server.host>:<server.port>``."""
    demo: Bool = False
    server: ServerConfig = ServerConfig()
    authserver: AuthServerConfig | None = None
    tokens: TokenValidationConfig = TokenValidationConfig()
    graphql: GraphQLConfig = GraphQLConfig()
    scopes: Mapping[str, ScopeTemplate] = {}
    """Root field -> scope template for every route, e.g. ``organisaties/{kind}/...``."""
    routes: Annotated[tuple[RouteConfig, ...], Field(min_length=1)]
    policy: PolicyConfig = PolicyConfig()
    pip: PipConfig = PipConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    data_dir: AnyPath | None = None
    """Folder of the gateway's durable state (the SQLite store); default ``data/`` beside
    this file."""
    store: StoreConfig | None = None
    """The durable store; None: the gateway keeps no state that outlives the process."""
    abonnementen: AbonnementenConfig = Field(default_factory=lambda: AbonnementenConfig())
    """Where the subscription mutations and their arguments are (defaults: iWlz)."""
    delivery: DeliveryConfig = DeliveryConfig()
    """Reliable delivery (needs ``store``): retries, back-off, the uitvallijst."""
    adresboek: AdresboekConfig | None = None
    """The network's adresboek, served at ``GET /adresboek``; needed by ``notificaties``."""
    notificaties: NotificatiesConfig | None = None
    """The central notification route; None: not offered."""
