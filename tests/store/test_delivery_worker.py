"""The delivery worker on both backends: two replicas' workers share one outbox and each
delivery is attempted once; a dead worker's claim is taken up after its lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from gateway.config.model import DeliveryConfig
from gateway.delivery.worker import DeliveryWorker, StaticResolver
from gateway.store.api import Party, Store
from tests.fixtures.delivery import Recipient, until
from tests.fixtures.store import ZORGAANBIEDER, Backend
from tests.fixtures.store import sample_delivery as delivery

SETTINGS = DeliveryConfig(
    poll_interval=0.05, backoff_initial=0.05, backoff_max=0.2, lease=2, timeout=1
)


@pytest.fixture
async def recipient() -> AsyncIterator[Recipient]:
    found = await Recipient().start()
    yield found
    await found.stop()


def worker(store: Store, recipient: Recipient) -> DeliveryWorker:
    return DeliveryWorker(store, StaticResolver({ZORGAANBIEDER: recipient.url}), SETTINGS)


async def test_two_replicas_workers_attempt_each_delivery_once(
    store_backend: Backend, recipient: Recipient
) -> None:
    replica_a, replica_b = await store_backend.open(), await store_backend.open()
    accepted = [delivery(n) for n in range(40)]
    await asyncio.gather(*(replica_a.enqueue(d) for d in accepted))
    workers = [worker(replica_a, recipient), worker(replica_b, recipient)]
    for each in workers:
        await each.start()
    try:
        await until(lambda: len(recipient.processed) == len(accepted))
        await until(lambda: _all_delivered(replica_b, len(accepted)))
    finally:
        for each in workers:
            await each.stop()
    attempts = Counter(a.key for a in recipient.attempts)
    assert attempts == dict.fromkeys((d.delivery_id for d in accepted), 1)


async def _all_delivered(store: Store, count: int) -> bool:
    return len(await store.list_deliveries("delivered")) == count


async def test_a_dead_workers_claim_is_taken_up_after_its_lease(
    store_backend: Backend, recipient: Recipient
) -> None:
    store = await store_backend.open()
    held = delivery(1)
    await store.enqueue(held)
    [claimed] = await store.claim_due(10, lease_seconds=1.0)  # a worker that then died
    assert claimed.delivery_id == held.delivery_id
    live = worker(store, recipient)
    await live.start()
    try:
        await asyncio.sleep(0.5)
        assert recipient.attempts == []  # still leased
        await until(lambda: held.delivery_id in recipient.processed, timeout=5)
    finally:
        await live.stop()


async def test_an_unknown_recipient_is_retried_not_dropped(
    store_backend: Backend, recipient: Recipient
) -> None:
    store = await store_backend.open()
    await store.enqueue(delivery(2))
    nowhere = DeliveryWorker(store, StaticResolver({Party("AGB", "0"): recipient.url}), SETTINGS)
    await nowhere.start()
    try:
        await until(lambda: _attempts(store, 2))
    finally:
        await nowhere.stop()
    [pending] = await store.list_deliveries("pending")
    assert pending.attempts[0].error == "no endpoint for AGB 12345678"


async def _attempts(store: Store, count: int) -> bool:
    found = await store.list_deliveries()
    return bool(found) and len(found[0].attempts) >= count
