"""What the store keeps and the typed async API over it, the same for every backend.

Times are timezone-aware UTC datetimes here and seconds since the epoch in the tables, so
both backends store them the same way. Every failure of the store itself (file, server,
lock timeout) is a :class:`StoreUnavailable`: callers fail closed on it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

DeliveryState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: tuple[DeliveryState, ...] = ("pending", "delivered", "dead")


class StoreUnavailable(Exception):
    """The store cannot be read or written now; the request must fail closed (503)."""


class SchemaTooNew(StoreUnavailable):
    """The store's schema is newer than this gateway knows: a newer gateway migrated it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Party:
    """A deelnemer as the network names it: identifier type (``AGB``, ``UZOVI``) and value."""

    id_type: str
    id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    """An abonnement the bronhouder confirmed (its ``abonnementId``), ended or not."""

    abonnement_id: str
    bronhouder: Party
    subscriber: Party
    notificatietype: str
    created_at: datetime
    ended_at: datetime | None = None
    ended_by: Party | None = None
    end_reason: str | None = None
    organisatie_id: str | None = None
    """createAbonnement's ``organisatieId`` as the subscriber sent it (seed 001 section 5.3)."""

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt: when, the recipient's HTTP status (None: no answer), error."""

    at: datetime
    status: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.timestamp(), "status": self.status, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(_time(data["at"]), data.get("status"), data.get("error"))


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A notification accepted for reliable delivery: the exact bytes and headers decided
    on, who sent it (client id) and to whom, and every attempt so far."""

    delivery_id: str
    state: DeliveryState
    sender: str
    recipient: Party
    body: bytes
    headers: Mapping[str, str]
    decision_id: str
    trace_id: str | None
    attempts: tuple[Attempt, ...]
    next_attempt_at: datetime
    lease_until: datetime | None
    created_at: datetime
    finished_at: datetime | None
    decision: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The decision that allowed it (allow, rule, location, policy version)."""


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxStats:
    """The outbox at a glance, for metrics: how many per state, oldest pending."""

    counts: Mapping[DeliveryState, int]
    oldest_pending: datetime | None


class SubscriptionStore(Protocol):
    """Subscriptions, recorded only from a bronhouder's confirmed answer."""

    async def record(self, subscription: Subscription) -> bool:
        """Keep *subscription*; False when its ``abonnementId`` is already known."""

    async def end(self, abonnement_id: str, *, by: Party, reason: str | None = None) -> bool:
        """End an active subscription (who ended it, now, why); False if none was active."""

    async def active(
        self, abonnement_id: str, *, subscriber: Party, notificatietype: str, bronhouder: Party
    ) -> Subscription | None:
        """The active subscription *abonnement_id* of *subscriber* to *notificatietype* at
        *bronhouder*, else None: the one indexed read a voluntary notification costs."""

    async def get_subscription(self, abonnement_id: str) -> Subscription | None:
        """The subscription *abonnement_id*, active or ended."""

    async def list_for(self, party: Party, *, include_ended: bool = False) -> list[Subscription]:
        """Subscriptions *party* placed, and those placed with it as bronhouder."""


class DeliveryStore(Protocol):
    """The outbox: a delivery is pending until delivered or dead (the uitvallijst)."""

    async def enqueue(self, delivery: Delivery) -> None:
        """Store *delivery* durably (committed, fsynced) before the caller answers 202."""

    async def claim_due(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to *limit* pending deliveries due now and not leased, each leased to the
        caller for *lease_seconds*: no other claimer gets it until the lease expires."""

    async def mark_delivered(self, delivery_id: str, attempt: Attempt) -> None:
        """Record the successful *attempt*; the delivery is done."""

    async def mark_retry(
        self, delivery_id: str, attempt: Attempt, next_attempt_at: datetime
    ) -> None:
        """Record the failed *attempt*; try again at *next_attempt_at*."""

    async def mark_dead(self, delivery_id: str, attempt: Attempt) -> None:
        """Record the last failed *attempt*; the delivery goes to the uitvallijst."""

    async def get(self, delivery_id: str) -> Delivery | None:
        """The delivery *delivery_id* or None."""

    async def list_deliveries(
        self, state: DeliveryState | None = None, limit: int = 1000
    ) -> list[Delivery]:
        """Deliveries, oldest first, optionally only those in *state*."""

    async def replay(self, delivery_ids: Sequence[str]) -> list[str]:
        """Put dead deliveries back to pending, due now; the ids that were dead."""

    async def purge(self, delivered_before: datetime) -> int:
        """Delete deliveries delivered before *delivered_before*; how many."""

    async def due_now(self) -> int:
        """Make every pending delivery due now (a restart retries at once); how many."""

    async def outbox_stats(self) -> OutboxStats:
        """Deliveries per state and the creation time of the oldest pending one."""


class Store(SubscriptionStore, DeliveryStore, Protocol):
    """Both APIs on one connection (pool), with its life cycle and health."""

    backend: ClassVar[str]

    async def ping(self) -> dict[str, Any]:
        """Detail for ``/readyz``; raises :class:`StoreUnavailable` when not writable."""

    async def close(self) -> None:
        """Release the file or the pool."""


def now() -> datetime:
    return datetime.now(UTC)


def _time(value: float | None) -> Any:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _party(row: Mapping[str, Any], prefix: str) -> Party | None:
    id_type = row[f"{prefix}_id_type"]
    return None if id_type is None else Party(id_type, row[f"{prefix}_id"])


def subscription_from_row(row: Mapping[str, Any]) -> Subscription:
    return Subscription(
        abonnement_id=row["abonnement_id"],
        bronhouder=Party(row["bronhouder_id_type"], row["bronhouder_id"]),
        subscriber=Party(row["subscriber_id_type"], row["subscriber_id"]),
        notificatietype=row["notificatietype"],
        created_at=_time(row["created_at"]),
        ended_at=_time(row["ended_at"]),
        ended_by=_party(row, "ended_by"),
        end_reason=row["end_reason"],
        organisatie_id=row["organisatie_id"],
    )


def delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=row["delivery_id"],
        state=row["state"],
        sender=row["sender"],
        recipient=Party(row["recipient_id_type"], row["recipient_id"]),
        body=bytes(row["body"]),
        headers=json.loads(row["headers"]),
        decision_id=row["decision_id"],
        trace_id=row["trace_id"],
        attempts=tuple(Attempt.from_json(a) for a in json.loads(row["attempts"])),
        next_attempt_at=_time(row["next_attempt_at"]),
        lease_until=_time(row["lease_until"]),
        created_at=_time(row["created_at"]),
        finished_at=_time(row["finished_at"]),
        decision=json.loads(row["decision"]),
    )
