"""Failed client authentications at the token endpoint, limited per client_id and per address.

Counting is the ``limits`` library's moving window in process memory: a client_id (or a
source address) with ``max_failures`` failed authentications within the last
``window_seconds`` is refused with ``429`` until its oldest failure leaves the window, even
when it then presents the right secret. Successful authentications are not counted.

Memory stays bounded: a blocked address adds no new failures, so each address can name at
most ``max_failures_per_address`` new client_ids per window, and entries expire with it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gateway.config.model import BruteForceConfig

Limit = Literal["client", "address"]


@dataclass(frozen=True, slots=True)
class Blocked:
    """A token request refused before authentication: which limit, and for how long."""

    limit: Limit
    retry_after: int
    """Whole seconds until the limit allows an attempt again (at least 1)."""


class FailureLimiter:
    """Counts failed client authentications; says when a client_id or address is blocked."""

    def __init__(self, config: BruteForceConfig) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[Limit, RateLimitItem] = {
            "client": RateLimitItemPerSecond(config.max_failures_per_client, config.window_seconds),
            "address": RateLimitItemPerSecond(
                config.max_failures_per_address, config.window_seconds
            ),
        }

    def _keys(self, client_id: str | None, address: str) -> list[tuple[Limit, str]]:
        keys: list[tuple[Limit, str]] = [("address", address)]
        if client_id:
            keys.append(("client", client_id))
        return keys

    async def blocked(self, client_id: str | None, address: str) -> Blocked | None:
        """The limit that blocks this attempt now (the longer wait when both do), or None."""
        found: Blocked | None = None
        for limit, key in self._keys(client_id, address):
            item = self._items[limit]
            if await self._limiter.test(item, limit, key):
                continue
            stats = await self._limiter.get_window_stats(item, limit, key)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            if found is None or wait > found.retry_after:
                found = Blocked(limit, wait)
        return found

    async def failed(self, client_id: str | None, address: str) -> None:
        """Count one failed client authentication against the client_id and the address."""
        for limit, key in self._keys(client_id, address):
            await self._limiter.hit(self._items[limit], limit, key)
