"""Refusals for queries over a configured :class:`~gateway.config.model.GraphQLLimits`.

Each message names the limit (its configuration key) and its value, so a sender
and an operator both know what to change.
"""

from __future__ import annotations

from gateway.refusals import LimitExceeded

__all__ = ["over_limit"]


def over_limit(what: str, key: str, limit: int) -> LimitExceeded:
    """A refusal saying ``what`` is over ``key`` = ``limit``."""
    return LimitExceeded(f"{what}, over the limit of {limit} ({key})", reason=key)
