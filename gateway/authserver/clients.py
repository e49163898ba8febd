"""Client registrations prepared for authentication: secrets parsed, JWKS imported, once."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Any

from joserfc.jwk import KeySet

from gateway.config.model import ClientConfig
from gateway.config.secrets import parse_secret_hash, verify_secret

GRANT_TYPE = "client_credentials"

# What a secret is compared with when there is no stored hash to compare it with (unknown
# client_id, client without a secret): the same work as a real check, so timing does not
# tell whether a client exists. Random per process; no secret can match it.
_UNMATCHABLE = (secrets.token_bytes(16), secrets.token_bytes(32))


def check_unregistered_secret(secret: str) -> bool:
    """Compare *secret* with nothing that can match, at the cost of a real check (False)."""
    verify_secret(secret, *_UNMATCHABLE)
    return False


class RegisteredClient:
    """An OAuth2 client as authlib's ``ClientMixin`` expects it, backed by a ClientConfig.

    Everything that can be prepared at load time (hash parsing, JWKS import) is done here,
    so authenticating a request does no parsing.
    """

    __slots__ = ("_digest", "_salt", "config", "keyset")

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._salt: bytes | None = None
        self._digest: bytes | None = None
        if config.secret_hash is not None:
            self._salt, self._digest = parse_secret_hash(config.secret_hash)
        self.keyset: KeySet | None = (
            KeySet.import_key_set(dict(config.jwks)) if config.jwks is not None else None  # type: ignore[arg-type]
        )

    # -- authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        """The client_id."""
        return self.config.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison against the stored salted hash."""
        if self._salt is None or self._digest is None:
            return check_unregistered_secret(client_secret)
        return verify_secret(client_secret, self._salt, self._digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Only the registered authentication method(s), only at the token endpoint."""
        return endpoint == "token" and self.config.accepts(method)

    def check_grant_type(self, grant_type: str) -> bool:
        """client_credentials is the only grant."""
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this client may have (authlib interface; unused for checks)."""
        return " ".join(s for s in scope.split() if s in self.config.allowed_scopes)

    def __repr__(self) -> str:
        return f"<RegisteredClient {self.config.client_id}>"


class ReplayCache:
    """Seen ``(client_id, jti)`` pairs of client assertions until their ``exp``.

    Bounded: assertions live at most ``assertion_max_lifetime`` seconds, so expired entries
    are dropped from the front. When the cache is full of live entries, new assertions are
    refused (fail closed) rather than forgetting a live jti and allowing its replay.
    """

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def _expire(self, now: float) -> None:
        seen = self._seen
        # Entries are added in time order and share one maximum lifetime, so the front
        # holds the oldest; stop at the first live one.
        while seen:
            _key, exp = next(iter(seen.items()))
            if exp > now:
                break
            seen.popitem(last=False)

    def add(self, client_id: str, jti: str, exp: float, *, now: float | None = None) -> str | None:
        """Record a new jti; returns None when accepted, else the reason it is refused."""
        moment = time.time() if now is None else now
        self._expire(moment)
        key = (client_id, jti)
        if key in self._seen:
            return "assertion jti was used before"
        if len(self._seen) >= self.capacity:
            return "too many assertions in flight, retry later"
        self._seen[key] = exp
        return None

    def __len__(self) -> int:
        return len(self._seen)


def jwks_keyset(data: dict[str, Any]) -> KeySet:
    """Import a public JWKS (helper for tests and tools)."""
    return KeySet.import_key_set(data)  # type: ignore[arg-type]
