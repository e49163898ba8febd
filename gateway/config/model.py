"""Typed, immutable configuration of one deployment.

Built once by :func:`gateway.config.load_config` from ``gateway.yaml`` (+ ``clients.yaml``);
the hot path only ever reads these objects. Paths are absolute (resolved against the
file that named them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS terminated by the gateway (needed for ``tls_client_auth``)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    """CA that signs client certificates; when set, client certificates are requested."""
    require_client_cert: bool = False


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """How long a client may take, in seconds (slow-client protection)."""

    header: float = 10.0
    """From connecting (or the first byte after a keep-alive pause) to a complete request
    head; a connection that has not sent one by then is closed."""
    body: float = 30.0
    """From the end of the request head to the end of its body; then ``408`` and close."""
    keepalive: float = 15.0
    """An idle keep-alive connection is closed after this long."""


@dataclass(frozen=True, slots=True)
class AdminListener:
    """A second listener for operators: ``/readyz`` with details, ``/metrics``, ``/healthz``."""

    host: str = "127.0.0.1"
    port: int = 9090


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tls: TlsConfig | None = None
    max_body_bytes: int = 1024 * 1024
    timeouts: ClientTimeouts = field(default_factory=ClientTimeouts)
    max_connections: int = 1000
    """Open client connections per process; lowered at start to fit the open-file limit."""
    shutdown_grace_seconds: float = 25.0
    """On SIGTERM, in-flight requests get this long to finish before they are cancelled."""
    admin: AdminListener | None = None
    """Off by default; when set, ``/metrics`` moves from the public listener to this one."""


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """Keys of the built-in authorization server."""

    keys_dir: Path
    """Holds ``<kid>.pem`` private keys and ``jwks.json``; the newest key signs."""
    algorithm: Literal["RS256", "ES256"] = "ES256"
    generate_if_missing: bool = False
    """Demo only: create a key pair on first start."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """One OAuth2 client of the authorization server (from ``clients.yaml``)."""

    client_id: str
    auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"
    ]
    secret_hash: str | None = None
    """``pbkdf2_sha256$<iterations>$<salt-b64>$<hash-b64>`` (or similar) for secret methods."""
    jwks: Mapping[str, object] | None = None
    """Public JWKS for ``private_key_jwt`` (inline or loaded from ``jwks_file``)."""
    tls_subject: str | None = None
    """Certificate subject DN mapped to this client for ``tls_client_auth``."""
    instantie_type: str | None = None
    identifier_claims: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Claims put in the token, e.g. ``{"uzovi": "5151"}``."""
    extra_claims: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Other claims put in the token, e.g. ``{"instantie_naam": "Zorgkantoor Noord"}``."""
    allowed_scopes: frozenset[str] = frozenset()
    allowed_audiences: frozenset[str] = frozenset()
    """Audience URLs; ``"*routes*"`` in YAML expands to every configured route's audience."""
    allowed_actors: frozenset[str] = frozenset()
    """Values allowed for the ``actor`` request parameter (becomes ``act.sub``)."""
    auth_methods: frozenset[str] = frozenset()
    """Every authentication method accepted for this client (``auth_method`` is the first);
    empty means just ``auth_method``. Lets a secret client use both basic and post."""

    def accepts(self, method: str) -> bool:
        """Whether *method* may authenticate this client."""
        return method == self.auth_method or method in self.auth_methods


@dataclass(frozen=True, slots=True)
class BruteForceConfig:
    """Limits on failed client authentications at the token endpoint (moving window)."""

    max_failures_per_client: int = 10
    """Failures per claimed client_id within the window; then ``429`` for that client_id."""
    max_failures_per_address: int = 50
    """Failures per source address within the window; then ``429`` for that address."""
    window_seconds: int = 60


@dataclass(frozen=True, slots=True)
class AuthServerConfig:
    enabled: bool
    signing: SigningConfig
    token_lifetime: int = 3600
    """Seconds; at most 3600 (RFC0014)."""
    clients: tuple[ClientConfig, ...] = ()
    assertion_max_lifetime: int = 300
    """Longest accepted lifetime of a private_key_jwt client assertion, seconds."""
    brute_force: BruteForceConfig = BruteForceConfig()


@dataclass(frozen=True, slots=True)
class IdentifierClaim:
    """A token claim that carries the caller's identifier, and its identifier type."""

    claim: str
    """e.g. ``uzovi``, ``kvk``, ``kvknummer``."""
    id_type: str
    """e.g. ``UZOVI``, ``KVK``."""


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where the facts live in a token. Defaults fit our own tokens and nID's."""

    instantie_type: tuple[str, ...] = ("instantie_type",)
    identifiers: tuple[IdentifierClaim, ...] = ()
    scopes: tuple[str, ...] = ("scope", "scopes")
    client_id: tuple[str, ...] = ("client_id", "sub")
    actor: str = "act.sub"
    aggregated_claims: bool = True
    """Resolve OpenID aggregated claims (``_claim_names``/``_claim_sources``), verifying
    each nested JWT against a trusted issuer."""


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    issuer: str
    builtin: bool = False
    """The built-in authorization server (keys in process)."""
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    jwks_min_refresh_seconds: float = 30.0
    """An unknown ``kid`` triggers at most one JWKS fetch per this interval."""
    jwks_refresh_seconds: float = 300.0
    """The key set is refetched this often, so a key the issuer withdraws stops being trusted
    (and tokens it signed leave the verified-token cache); 0: only on an unknown ``kid``."""
    require_typ: bool = True
    """Require ``typ: at+jwt``."""


@dataclass(frozen=True, slots=True)
class TokenValidationConfig:
    trusted_issuers: tuple[TrustedIssuer, ...]
    leeway: float = 30.0
    claim_mapping: ClaimMapping = field(default_factory=ClaimMapping)
    cache_size: int = 10_000
    """Verified-token cache entries (keyed by the whole token, honours ``exp``)."""


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_query_length: int = 20_000
    max_depth: int = 15
    max_aliases: int = 30
    max_list_items: int = 1_000
    max_tokens: int = 5_000


@dataclass(frozen=True, slots=True)
class GraphQLConfig:
    limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    cache_size: int = 1_024
    """Parsed-document cache entries (LRU, keyed by the query text)."""


@dataclass(frozen=True, slots=True)
class Deelnemer:
    id_type: str
    """e.g. ``UZOVI``."""
    id: str
    kind: str
    """Scope word: ``zorgkantoor``, ``zorgaanbieder``, ``onderneming``, ..."""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0
    total: float = 30.0


@dataclass(frozen=True, slots=True)
class RouteConfig:
    path: str
    """e.g. ``/deelnemers/uzovi/5151/graphql``."""
    upstream: str
    """The deelnemer's resource server URL."""
    deelnemer: Deelnemer
    audience: str
    """``public_url`` + ``path`` unless set explicitly."""
    policies: tuple[Path, ...]
    required_scopes: Mapping[str, str]
    """Root field -> scope the token must hold, ``{kind}`` already filled in,
    e.g. ``{"zendNotificatie": "organisaties/zorgkantoor/notificaties/notificatie:create"}``.
    A root field not listed needs ``scope_default`` (if set), else is refused."""
    scope_default: str | None = None
    schema: Path | None = None
    """The GraphQL SDL requests are validated against; None: the bundled network schema."""
    schema_validation: bool = True
    """False only with an explicit ``schema: none`` (logged as a warning at start-up)."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    pool_size: int = 100
    allow_plain_jwt: bool = False
    """Accept tokens without ``typ: at+jwt`` (tokens of other issuers)."""
    strict_input: bool = False
    forward_authorization: bool = False
    """Pass the caller's ``Authorization`` header to the upstream. Off by default: the
    upstream gets the verified payload in the ``claims`` header, and forwarding the bearer
    token would let the resource server replay it."""


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    environment: str | None = None
    """Selects the data overlay (e.g. ``productie``, ``test``); None = the RFC defaults."""
    shadow: tuple[Path, ...] = ()
    """Policy files evaluated beside the active ones, logged, never enforced."""
    watch: bool = True
    watch_interval: float = 2.0


@dataclass(frozen=True, slots=True)
class AuditConfig:
    path: Path
    max_bytes: int = 100 * 1024 * 1024
    rotate_daily: bool = True
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    audit: AuditConfig | None = None
    decision_log: bool = True
    """Log one decision event per request (the audit sink, when set, always records)."""
    otel_endpoint: str | None = None
    access_log: bool = False
    """Log one ``access`` event per HTTP request (``GatewayAccessLogger``). Off by default:
    every PEP request already has its decision event; this adds the other endpoints
    (``/auth/token``, ``/metrics``, health probes) at the cost of a second line per request."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: Path
    issuer: str
    public_url: str
    server: ServerConfig
    authserver: AuthServerConfig | None
    tokens: TokenValidationConfig
    graphql: GraphQLConfig
    routes: tuple[RouteConfig, ...]
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    demo: bool = False
