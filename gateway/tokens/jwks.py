"""Keys of a remote trusted issuer, fetched from its JWKS URL.

The key set is cached. A token signed with a ``kid`` we do not know triggers a refresh, at
most once per ``jwks_min_refresh_seconds`` per issuer (an attacker sending random kids must
not turn the gateway into a JWKS hammer); concurrent misses share one fetch. The set is also
refetched every ``jwks_refresh_seconds``, so a key the issuer withdraws (rotated out, or
revoked after a compromise) stops being trusted: a refresh that drops or replaces a key we
trusted calls ``on_withdrawn`` (the verifier then forgets every token it verified). When the
endpoint fails or answers garbage the last good set stays in use. A ``kid`` is only ever a
dictionary key here, so a path-like ``kid`` (``../../x``) is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from gateway.config.model import TrustedIssuer
from gateway.observability.events import Observer
from gateway.tokens.verification_keys import VerificationKey, key_from_jwk

MAX_JWKS_BYTES = 512 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


class JwksError(Exception):
    """The JWKS endpoint could not be read or held no usable key."""


class RemoteJwks:
    """The cached key set of one remote issuer."""

    def __init__(
        self,
        issuer: TrustedIssuer,
        observer: Observer,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_withdrawn: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        if issuer.jwks_url is None:
            raise ValueError(f"issuer {issuer.issuer} has no jwks_url")
        self.issuer = issuer
        self.url: str = issuer.jwks_url
        self._observer = observer
        self._clock = clock
        self._keys: dict[str | None, VerificationKey] = {}
        self._last_attempt: float | None = None
        self._last_success: float | None = None
        self._inflight: asyncio.Future[bool] | None = None
        self._on_withdrawn = on_withdrawn

    @property
    def loaded(self) -> bool:
        """Whether a good key set has been fetched at least once."""
        return self._last_success is not None

    def cached(self, kid: str | None) -> VerificationKey | None:
        """The key for *kid* from the current set, without fetching.

        A token without ``kid`` is accepted only when the set holds exactly one key.
        """
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def key(self, kid: str | None, session: aiohttp.ClientSession) -> VerificationKey | None:
        """The key for *kid*, refreshing the set (rate-limited) when it is unknown."""
        found = self.cached(kid)
        if found is not None:
            return found
        await self.refresh(session)
        return self.cached(kid)

    async def refresh(self, session: aiohttp.ClientSession, *, force: bool = False) -> bool:
        """Fetch the key set unless one was fetched too recently; True when a new set is in use."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        now = self._clock()
        if (
            not force
            and self._last_attempt is not None
            and now - self._last_attempt < self.issuer.jwks_min_refresh_seconds
        ):
            self._observer.jwks_refresh(
                self.issuer.issuer,
                "rate_limited",
                f"unknown kid, last fetch under {self.issuer.jwks_min_refresh_seconds:g} s ago",
            )
            return False
        if not force:
            # Only kid-triggered refreshes count against the interval: a key rotated in
            # right after startup is still found.
            self._last_attempt = now
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight = future
        try:
            ok = await self._fetch(session)
            future.set_result(ok)
            return ok
        except BaseException as exc:  # cancellation: waiters must not hang
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            self._inflight = None

    async def refresh_periodically(self, session: Callable[[], aiohttp.ClientSession]) -> None:
        """Refetch the key set every ``jwks_refresh_seconds`` until cancelled (a failed
        fetch keeps the last good set and is retried at the next period)."""
        period = self.issuer.jwks_refresh_seconds
        if period <= 0:
            return
        while True:
            await asyncio.sleep(period)
            try:
                await self.refresh(session(), force=True)
            except Exception as exc:  # the refresher outlives any one failure: retry next period
                self._observer.jwks_refresh(self.issuer.issuer, "error", type(exc).__name__)

    async def _fetch(self, session: aiohttp.ClientSession) -> bool:
        try:
            keys = await self._download(session)
        except JwksError as exc:
            # Keep the last good set: an outage of the issuer must not lock out valid tokens.
            self._observer.jwks_refresh(self.issuer.issuer, "error", str(exc))
            return False
        withdrawn = [
            str(kid)
            for kid, old in self._keys.items()
            if (new := keys.get(kid)) is None
            or new.key != old.key
            or new.algorithms != old.algorithms
        ]
        self._keys = keys
        self._last_success = self._clock()
        if withdrawn and self._on_withdrawn is not None:
            self._on_withdrawn(self.issuer.issuer, withdrawn)
        self._observer.jwks_refresh(self.issuer.issuer, "ok")
        return True

    async def _download(self, session: aiohttp.ClientSession) -> dict[str | None, VerificationKey]:
        try:
            async with session.get(
                self.url, timeout=FETCH_TIMEOUT, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise JwksError(f"JWKS endpoint answered {response.status}")
                body = await response.content.read(MAX_JWKS_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise JwksError(f"JWKS endpoint unreachable: {reason}") from exc
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError("JWKS document too large")
        try:
            document: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise JwksError("JWKS document is not JSON") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksError("JWKS document has no keys list")
        keys: dict[str | None, VerificationKey] = {}
        for entry in entries:
            if isinstance(entry, dict) and (key := key_from_jwk(entry)) is not None:
                keys[key.kid] = key
        if not keys:
            raise JwksError("JWKS document holds no usable signing key")
        return keys
