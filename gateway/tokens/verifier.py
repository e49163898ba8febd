"""Verify bearer access tokens against the trusted issuers, and cache the verified ones.

A token is believed when: it is a compact JWS; its ``iss`` is a trusted issuer; its ``alg``
is on that issuer's allow-list and fits the signing key (never ``none``, never HMAC); the key
named by ``kid`` belongs to that issuer (built-in key store or the issuer's JWKS); the
signature verifies; ``exp``, ``iat``, ``iss`` and ``aud`` are present, ``exp``/``nbf``/``iat``
are JSON numbers (not strings, not booleans) and hold within the leeway. A token that is not
ASCII is malformed. Per route, ``aud`` must contain the route's audience and ``typ`` must
be ``at+jwt`` unless the route accepts plain JWTs.

Verification costs ~65-110 µs of CPU, so verified tokens are cached by the whole token
string (bounded LRU) until their ``exp``; audience and ``typ`` are still checked per route
on a hit. Decisions are never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import jwt

from gateway.config.model import TokenValidationConfig, TrustedIssuer
from gateway.facts import TokenFacts
from gateway.observability.events import Observer
from gateway.observability.logs import get_logger
from gateway.refusals import Unauthenticated
from gateway.tokens.claims import map_claims
from gateway.tokens.jwks import RemoteJwks
from gateway.tokens.verification_keys import ASYMMETRIC_ALGORITHMS, VerificationKey, key_from_pyjwk

log = get_logger("gateway.tokens")

MAX_TOKEN_LENGTH = 16 * 1024
MAX_KID_LENGTH = 256
AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud"]
TIME_CLAIMS = ("exp", "nbf", "iat")


class BuiltinKeys(Protocol):
    """What the verifier needs from the built-in authorization server's key store."""

    def verification_key(self, kid: str) -> jwt.PyJWK | None: ...


class NestedTokenError(Exception):
    """An aggregated claim's nested JWT did not verify against a trusted issuer."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A verified token, as cached: the facts plus what is checked per route."""

    facts: TokenFacts
    audiences: frozenset[str]
    at_jwt: bool
    """The header's ``typ`` is ``at+jwt`` (RFC 9068)."""
    require_typ: bool
    """The issuer requires ``at+jwt``."""
    expires: float
    """``exp`` as a Unix timestamp; the cache entry dies then."""
    claims_header: str
    """The verified payload as compact ASCII JSON (the upstream ``claims`` header)."""


def _refuse(message: str, reason: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason, token_sent=True)


def _check_time_claims(payload: Mapping[str, Any]) -> None:
    """``exp``, ``nbf`` and ``iat``, when present, are finite JSON numbers (RFC 7519
    NumericDate). PyJWT would read ``"9999999999"`` with ``int()`` and ``true`` as 1."""
    for claim in TIME_CLAIMS:
        if claim not in payload:
            continue
        value = payload[claim]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _refuse(f"Token claim {claim} must be a number", f"malformed_{claim}")


def token_audiences(payload: Mapping[str, Any]) -> frozenset[str]:
    """The audiences a token payload's ``aud`` names (a string or a list of strings)."""
    value = payload.get("aud")
    if value is None:
        raise _refuse("Token lacks required claim aud", "missing_aud")
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise _refuse("Token audience is malformed", "malformed_audience")


def require_audience(audiences: frozenset[str], audience: str) -> None:
    """Refuse a token whose audiences do not name the route's *audience*."""
    if audience not in audiences:
        raise _refuse("Token audience does not match this route", "wrong_audience")


class TokenCache:
    """Verified tokens keyed by the whole token string: bounded, least recently used dropped
    first, each entry only until the token's ``exp`` (a time-aware LRU).

    A hit is one dict lookup, one clock read, the ``exp`` comparison and the LRU move
    (``OrderedDict.move_to_end``, C): 2.7k instructions, where cachetools' ``TLRUCache``
    took 5.7k through four Python calls (its timer wrapper, two ``__getitem__`` levels).
    Only the hit runs per request; an entry past its ``exp`` is never answered, and is
    dropped when read or as the least recently used."""

    __slots__ = ("_clock", "_entries", "maxsize", "size")

    def __init__(self, size: int, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.maxsize = max(1, size)
        self._clock = clock
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()

    def get(self, key: str, default: VerifiedToken | None = None) -> VerifiedToken | None:
        """The live entry for *key* (now the most recently used), else *default*."""
        entry = self._entries.get(key)
        if entry is None:
            return default
        if self._clock() < entry.expires:
            self._entries.move_to_end(key)
            return entry
        del self._entries[key]
        return default

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Remember *entry* until its ``exp`` (a size of 0 turns the cache off); the least
        recently used entry goes when the cache is full."""
        if self.size <= 0 or not self._clock() < entry.expires:
            return
        entries = self._entries
        entries[token] = entry
        entries.move_to_end(token)
        while len(entries) > self.maxsize:
            entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (a trusted key was withdrawn)."""
        self._entries.clear()

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key)  # type: ignore[call-overload]
        return entry is not None and self._clock() < entry.expires

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    """Verifies access tokens for the PEP routes."""

    def __init__(
        self,
        config: TokenValidationConfig,
        keystore: BuiltinKeys | None,
        observer: Observer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._keystore = keystore
        self._observer = observer
        self._clock = clock
        self._issuers: dict[str, TrustedIssuer] = {i.issuer: i for i in config.trusted_issuers}
        self.remote: dict[str, RemoteJwks] = {
            i.issuer: RemoteJwks(i, observer, on_withdrawn=self._keys_withdrawn)
            for i in config.trusted_issuers
            if i.jwks_url
        }
        self.cache = TokenCache(config.cache_size, clock)
        self._session: aiohttp.ClientSession | None = None
        self._refreshers: list[asyncio.Task[None]] = []
        self._key_generation = 0
        """Bumped whenever a trusted remote key is withdrawn."""

    async def start(self) -> None:
        """Open the JWKS client, fetch every remote issuer's keys once (failures are not
        fatal: a later unknown ``kid`` retries, rate-limited) and keep refetching them every
        ``jwks_refresh_seconds``."""
        session = self._jwks_session()
        for jwks in self.remote.values():
            await jwks.refresh(session, force=True)
        self._refreshers = [
            asyncio.create_task(
                jwks.refresh_periodically(self._jwks_session),
                name=f"jwks-refresh {jwks.issuer.issuer}",
            )
            for jwks in self.remote.values()
            if jwks.issuer.jwks_refresh_seconds > 0
        ]

    def _keys_withdrawn(self, issuer: str, kids: list[str]) -> None:
        """A remote issuer no longer publishes a key we trusted: tokens verified with it
        must not be believed from the cache any more. Verification is cached per token,
        not per key, so the whole cache goes (key withdrawals are rare; the cost is one
        full verification per live token)."""
        self._key_generation += 1
        self.cache.clear()
        log.warning("jwks_keys_withdrawn", issuer=issuer, kids=kids)

    async def close(self) -> None:
        """Stop the periodic refreshes and close the JWKS client."""
        refreshers, self._refreshers = self._refreshers, []
        for task in refreshers:
            task.cancel()
        for task in refreshers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _jwks_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def verify(
        self, token: str, *, audience: str, allow_plain_jwt: bool = False
    ) -> VerifiedToken:
        """Verify *token* for a route with *audience*; raise :class:`Unauthenticated`."""
        # The cache's hit in place (TokenCache.get: one dict lookup, the clock, the LRU
        # move); anything else (no entry, one past its exp) goes through get itself.
        cache = self.cache
        entry = cache._entries.get(token)
        if entry is not None and cache._clock() < entry.expires:
            cache._entries.move_to_end(token)
        else:
            entry = cache.get(token)
        if entry is None:
            generation = self._key_generation
            entry = await self._verify_fully(token)
            # Not cached when a key was withdrawn while this verification awaited a fetch:
            # it may have used the withdrawn key.
            if entry.expires > self._clock() and generation == self._key_generation:
                self.cache.put(token, entry)
        if audience not in entry.audiences:  # require_audience, in place (per request)
            raise _refuse("Token audience does not match this route", "wrong_audience")
        if entry.require_typ and not entry.at_jwt and not allow_plain_jwt:
            raise _refuse("Token type must be at+jwt", "wrong_typ")
        return entry

    def _issuer_of(self, unverified: Mapping[str, Any]) -> TrustedIssuer:
        """The trusted issuer the (unverified) payload names; checks the claims PyJWT would
        misread."""
        # Before PyJWT validates them: it coerces with int() (and int(inf) raises).
        _check_time_claims(unverified)
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise _refuse("Token lacks required claim iss", "missing_iss")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise _refuse("Token issuer is not trusted", "untrusted_issuer")
        return issuer

    @staticmethod
    def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and payload of *token*, decoded once and not yet verified (to find the
        issuer and the key that will verify it)."""
        # A compact JWS is ASCII. aiohttp hands other header bytes over as surrogate escapes,
        # which PyJWT cannot even encode (a 500 before this check).
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2 or not token.isascii():
            raise _refuse("Malformed token", "malformed")
        try:
            complete = jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refuse("Malformed token", "malformed") from None
        return complete["header"], complete["payload"]

    def _locate(self, token: str) -> tuple[dict[str, Any], str, str | None, TrustedIssuer]:
        """Header, algorithm, key id and trusted issuer of a token not yet verified."""
        header, unverified = self._unverified(token)
        alg, kid = self._header(header)
        return header, alg, kid, self._issuer_of(unverified)

    @staticmethod
    def _header(header: Mapping[str, Any]) -> tuple[str, str | None]:
        """The token's algorithm and key id, refused unless allowed and well formed."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise _refuse("Token algorithm is not allowed", "alg_not_allowed")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise _refuse("Token key id is malformed", "malformed_kid")
        return alg, kid

    def _builtin_key(self, kid: str | None) -> VerificationKey | None:
        if self._keystore is None or kid is None:
            return None
        pyjwk = self._keystore.verification_key(kid)
        return key_from_pyjwk(pyjwk, kid) if pyjwk is not None else None

    async def _key(self, issuer: TrustedIssuer, kid: str | None) -> VerificationKey | None:
        key = self._builtin_key(kid) if issuer.builtin else None
        jwks = self.remote.get(issuer.issuer)
        if key is None and jwks is not None:
            key = await jwks.key(kid, self._jwks_session())
        return key

    def _cached_key(self, issuer: TrustedIssuer, kid: str | None) -> VerificationKey | None:
        key = self._builtin_key(kid) if issuer.builtin else None
        jwks = self.remote.get(issuer.issuer)
        if key is None and jwks is not None:
            key = jwks.cached(kid)
        return key

    def _decode(
        self, token: str, key: VerificationKey, alg: str, issuer: TrustedIssuer, require: list[str]
    ) -> dict[str, Any]:
        if alg not in issuer.algorithms or alg not in key.algorithms:
            raise _refuse("Token algorithm is not allowed for this key", "alg_not_allowed")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=issuer.issuer,
                leeway=self.config.leeway,
                options={"require": require, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise _refuse("Token expired", "expired") from None
        except jwt.ImmatureSignatureError:
            raise _refuse("Token not yet valid", "not_yet_valid") from None
        except jwt.MissingRequiredClaimError as exc:
            claim = exc.claim
            raise _refuse(f"Token lacks required claim {claim}", f"missing_{claim}") from None
        except jwt.InvalidSignatureError:
            raise _refuse("Token signature is invalid", "bad_signature") from None
        except jwt.InvalidIssuerError:
            raise _refuse("Token issuer is not trusted", "untrusted_issuer") from None
        except jwt.InvalidAlgorithmError:
            raise _refuse("Token algorithm is not allowed", "alg_not_allowed") from None
        except jwt.PyJWTError:
            raise _refuse("Token is invalid", "invalid") from None
        return payload

    async def _verify_fully(self, token: str) -> VerifiedToken:
        header, alg, kid, issuer = self._locate(token)
        key = await self._key(issuer, kid)
        if key is None:
            raise _refuse("Token signing key is unknown", "unknown_kid")
        payload = self._decode(token, key, alg, issuer, REQUIRED_CLAIMS)
        audiences = token_audiences(payload)
        mapping = self.config.claim_mapping
        if mapping.aggregated_claims and isinstance(payload.get("_claim_sources"), Mapping):
            await self._prefetch_nested_keys(payload["_claim_sources"])
        try:
            facts = map_claims(payload, mapping, nested=self.verify_nested)
        except NestedTokenError as exc:
            raise _refuse(f"Aggregated claim rejected: {exc}", "bad_aggregated_claim") from None
        typ = header.get("typ")
        return VerifiedToken(
            facts=facts,
            audiences=audiences,
            at_jwt=isinstance(typ, str) and typ.lower() in AT_JWT_TYPES,
            require_typ=issuer.require_typ,
            expires=float(payload["exp"]),
            # ASCII JSON: header values must stay 7-bit; json escapes control characters,
            # so the value cannot split the header. Computed once per token, then cached.
            claims_header=json.dumps(payload, separators=(",", ":"), ensure_ascii=True),
        )

    async def _prefetch_nested_keys(self, sources: Mapping[str, Any]) -> None:
        """Make sure keys of remote issuers named by nested JWTs are loaded, so the
        synchronous :meth:`verify_nested` can find them."""
        for source in sources.values():
            nested = source.get("jwt") if isinstance(source, Mapping) else None
            if not isinstance(nested, str):
                continue
            try:
                _header, _alg, kid, issuer = self._locate(nested)
            except Unauthenticated:
                continue  # verify_nested reports it if the claim is actually used
            jwks = self.remote.get(issuer.issuer)
            if jwks is not None and self._cached_key(issuer, kid) is None:
                await jwks.key(kid, self._jwks_session())

    def verify_nested(self, token: str) -> Mapping[str, Any]:
        """Verify an aggregated claim's nested JWT against a trusted issuer; its payload.

        Signature, issuer and (when present) ``exp``/``nbf`` are checked; ``aud`` is not,
        since a claims JWT names no audience of ours.
        """
        try:
            _header, alg, kid, issuer = self._locate(token)
            key = self._cached_key(issuer, kid)
            if key is None:
                raise _refuse("Token signing key is unknown", "unknown_kid")
            return self._decode(token, key, alg, issuer, ["iss"])
        except Unauthenticated as exc:
            raise NestedTokenError(exc.message.replace("Token", "nested JWT", 1)) from None
