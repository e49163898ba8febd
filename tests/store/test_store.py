"""The store's API on both backends, over a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.store.api import (
    Attempt,
    Party,
    SchemaTooNew,
    Store,
    StoreUnavailable,
    Subscription,
    now,
)
from gateway.store.migrations import migrations
from gateway.store.sqlite import SqliteStore
from tests.fixtures.store import Backend
from tests.fixtures.store import sample_delivery as delivery

ZORGKANTOOR = Party("UZOVI", "5151")
ZORGAANBIEDER = Party("AGB", "12345678")
OTHER = Party("AGB", "87654321")
TYPE = "GEWIJZIGDE_ZORGINNATURA_BIJ_ANDERE_ZORGAANBIEDER"


def subscription(abonnement_id: str = "ab-1", subscriber: Party = ZORGAANBIEDER) -> Subscription:
    return Subscription(abonnement_id, ZORGKANTOOR, subscriber, TYPE, now())


async def test_migrations_apply_once_and_reopening_applies_nothing(
    store_backend: Backend,
) -> None:
    await store_backend.open()
    await store_backend.open()
    rows = await store_backend.raw("SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(m.version, m.name) for m in migrations(store_backend.name)]
    assert len(rows) >= 1


async def test_a_newer_schema_refuses_to_start_with_a_clear_message(
    store_backend: Backend,
) -> None:
    await store_backend.open()
    await store_backend.raw("INSERT INTO schema_version VALUES (999, 'from_the_future', 0)")
    with pytest.raises(SchemaTooNew, match=r"schema is version 999, newer than this gateway"):
        await store_backend.open()


async def test_a_subscription_survives_reopening_the_store(store_backend: Backend) -> None:
    first = await store_backend.open()
    assert await first.record(subscription()) is True
    await first.close()
    reopened = await store_backend.open()
    found = await reopened.active(
        "ab-1", subscriber=ZORGAANBIEDER, notificatietype=TYPE, bronhouder=ZORGKANTOOR
    )
    assert found is not None and found.subscriber == ZORGAANBIEDER and found.ended_at is None


async def test_active_matches_subscriber_type_and_bronhouder_and_not_ended(store: Store) -> None:
    await store.record(subscription())
    assert await store.record(subscription()) is False  # the same abonnementId twice

    def lookup(
        subscriber: Party = ZORGAANBIEDER, type_: str = TYPE, bronhouder: Party = ZORGKANTOOR
    ) -> asyncio.Future[Subscription | None]:
        return asyncio.ensure_future(
            store.active(
                "ab-1", subscriber=subscriber, notificatietype=type_, bronhouder=bronhouder
            )
        )

    assert await lookup() is not None
    assert await lookup(subscriber=OTHER) is None
    assert await lookup(type_="GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER") is None
    assert await lookup(bronhouder=Party("UZOVI", "5152")) is None
    assert await store.end("ab-1", by=ZORGKANTOOR, reason="contract beëindigd") is True
    assert await store.end("ab-1", by=ZORGKANTOOR) is False  # ended already
    assert await lookup() is None
    ended = await store.get_subscription("ab-1")
    assert ended is not None and ended.ended_by == ZORGKANTOOR
    assert ended.end_reason == "contract beëindigd" and ended.ended_at is not None


async def test_list_for_gives_the_subscriber_and_the_bronhouder_their_subscriptions(
    store: Store,
) -> None:
    await store.record(subscription("ab-1"))
    await store.record(subscription("ab-2", subscriber=OTHER))
    await store.end("ab-2", by=OTHER)
    assert [s.abonnement_id for s in await store.list_for(ZORGAANBIEDER)] == ["ab-1"]
    assert [s.abonnement_id for s in await store.list_for(ZORGKANTOOR)] == ["ab-1"]
    everything = await store.list_for(ZORGKANTOOR, include_ended=True)
    assert [s.abonnement_id for s in everything] == ["ab-1", "ab-2"]


async def test_two_stores_on_one_database_see_each_others_writes_at_once(
    store_backend: Backend,
) -> None:
    replica_a, replica_b = await store_backend.open(), await store_backend.open()
    await replica_a.record(subscription())
    assert await replica_b.get_subscription("ab-1") is not None
    await replica_b.end("ab-1", by=ZORGAANBIEDER)
    assert (
        await replica_a.active(
            "ab-1", subscriber=ZORGAANBIEDER, notificatietype=TYPE, bronhouder=ZORGKANTOOR
        )
        is None
    )


async def test_a_delivery_keeps_its_bytes_headers_and_every_attempt(store: Store) -> None:
    accepted = delivery()
    await store.enqueue(accepted)
    [claimed] = await store.claim_due(10, lease_seconds=30)
    assert claimed.body == accepted.body and claimed.headers == accepted.headers
    assert claimed.lease_until is not None
    failed = Attempt(now(), 503, "recipient answered 503")
    await store.mark_retry(accepted.delivery_id, failed, now() + timedelta(hours=1))
    assert await store.claim_due(10, lease_seconds=30) == []  # not due yet
    await store.mark_dead(accepted.delivery_id, Attempt(now(), None, "connection refused"))
    dead = await store.get(accepted.delivery_id)
    assert dead is not None and dead.state == "dead"
    assert [(a.status, a.error) for a in dead.attempts] == [
        (503, "recipient answered 503"),
        (None, "connection refused"),
    ]
    assert [d.delivery_id for d in await store.list_deliveries("dead")] == [accepted.delivery_id]
    assert await store.replay([accepted.delivery_id, "unknown"]) == [accepted.delivery_id]
    [again] = await store.claim_due(10, lease_seconds=30)
    await store.mark_delivered(again.delivery_id, Attempt(now(), 200, None))
    assert await store.purge(now() - timedelta(hours=1)) == 0
    assert await store.purge(now() + timedelta(seconds=1)) == 1
    assert await store.get(accepted.delivery_id) is None


async def test_claim_due_hands_each_delivery_to_exactly_one_of_two_claimers(
    store_backend: Backend,
) -> None:
    worker_a, worker_b = await store_backend.open(), await store_backend.open()
    accepted = [delivery(n) for n in range(40)]
    for item in accepted:
        await worker_a.enqueue(item)

    async def claim_all(worker: Store) -> list[str]:
        taken: list[str] = []
        while batch := await worker.claim_due(3, lease_seconds=60):
            taken += [d.delivery_id for d in batch]
        return taken

    taken_a, taken_b = await asyncio.gather(claim_all(worker_a), claim_all(worker_b))
    assert not set(taken_a) & set(taken_b)
    assert sorted(taken_a + taken_b) == sorted(d.delivery_id for d in accepted)


async def test_an_expired_lease_is_claimable_again(store: Store) -> None:
    await store.enqueue(delivery())
    [first] = await store.claim_due(1, lease_seconds=0.2)
    assert await store.claim_due(1, lease_seconds=0.2) == []  # leased
    await asyncio.sleep(0.3)
    [again] = await store.claim_due(1, lease_seconds=60)
    assert again.delivery_id == first.delivery_id


async def test_an_unopenable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file")
    with pytest.raises(StoreUnavailable, match="not-a-dir"):
        await SqliteStore.open(tmp_path / "not-a-dir" / "nid-gateway.sqlite3")


async def test_due_now_makes_waiting_deliveries_due_and_stats_count_each_state(
    store: Store,
) -> None:
    waiting, dead = delivery(1), delivery(2)
    for item in (waiting, dead):
        await store.enqueue(item)
    await store.claim_due(10, lease_seconds=0.001)
    later = now() + timedelta(hours=1)
    await store.mark_retry(waiting.delivery_id, Attempt(now(), 503, "HTTP 503"), later)
    await store.mark_dead(dead.delivery_id, Attempt(now(), 400, "HTTP 400"))
    assert await store.claim_due(10, lease_seconds=30) == []
    assert await store.due_now() == 1  # a restart: every pending delivery is due at once
    [claimed] = await store.claim_due(10, lease_seconds=30)
    assert claimed.delivery_id == waiting.delivery_id
    stats = await store.outbox_stats()
    assert stats.counts == {"pending": 1, "delivered": 0, "dead": 1}
    assert stats.oldest_pending is not None
    assert abs((stats.oldest_pending - waiting.created_at).total_seconds()) < 0.01


async def test_enqueues_arriving_together_are_all_committed_and_readable(store: Store) -> None:
    accepted = [delivery(n) for n in range(50)]
    await asyncio.gather(*(store.enqueue(item) for item in accepted))
    stored = await store.list_deliveries("pending")
    assert {d.delivery_id for d in stored} == {d.delivery_id for d in accepted}
    clash = dataclasses.replace(delivery(99), delivery_id=accepted[0].delivery_id)
    results = await asyncio.gather(
        store.enqueue(clash), store.enqueue(delivery(100)), return_exceptions=True
    )
    assert isinstance(results[0], StoreUnavailable) and results[1] is None
