"""The store's cost per call on each backend, same run: one indexed subscription lookup
(``active``, what a voluntary notification adds) and one durable ``enqueue`` (what the
async route adds before its 202; SQLite with ``synchronous=FULL``, fsync per commit).

SQLite always; PostgreSQL when ``NID_TEST_POSTGRES_DSN`` names a server (``tests/postgres.sh
start DIR`` starts a private one). Run: ``.venv/bin/python bench/bench_store.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from gateway.store.api import Delivery, Party, Store, Subscription, now
from gateway.store.postgresql import PostgresStore
from gateway.store.sqlite import SqliteStore

BRONHOUDER, TYPE = Party("UZOVI", "5151"), "GEWIJZIGDE_ZORGINNATURA_BIJ_ANDERE_ZORGAANBIEDER"
SUBSCRIPTIONS, LOOKUPS, ENQUEUES = 10_000, 5_000, 500


async def measure(name: str, store: Store) -> None:
    for n in range(SUBSCRIPTIONS):
        await store.record(
            Subscription(f"ab-{n}", BRONHOUDER, Party("AGB", f"{n:08d}"), TYPE, now())
        )
    samples = []
    for n in range(LOOKUPS):
        k = n * 7 % SUBSCRIPTIONS
        start = time.perf_counter()
        found = await store.active(
            f"ab-{k}",
            subscriber=Party("AGB", f"{k:08d}"),
            notificatietype=TYPE,
            bronhouder=BRONHOUDER,
        )
        samples.append(time.perf_counter() - start)
        assert found is not None
    start = time.perf_counter()
    for _ in range(ENQUEUES):
        moment = now()
        await store.enqueue(
            Delivery(
                uuid.uuid4().hex,
                "pending",
                "bench",
                Party("AGB", "1"),
                b"{}" * 500,
                {"claims": "e30"},
                "d",
                None,
                (),
                moment,
                None,
                moment,
                None,
            )
        )
    enqueue = (time.perf_counter() - start) / ENQUEUES
    print(
        f"{name:11} lookup median {statistics.median(samples) * 1e6:7.0f} µs"
        f"  p99 {sorted(samples)[int(LOOKUPS * 0.99)] * 1e6:7.0f} µs"
        f"  | enqueue {enqueue * 1e6:7.0f} µs ({1 / enqueue:6.0f}/s, one at a time)"
    )


async def main() -> None:
    print(f"{SUBSCRIPTIONS} subscriptions, {LOOKUPS} lookups, {ENQUEUES} enqueues, sequential")
    with tempfile.TemporaryDirectory() as folder:
        store = await SqliteStore.open(Path(folder) / "bench.sqlite3")
        await measure("sqlite", store)
        await store.close()
    if dsn := os.environ.get("NID_TEST_POSTGRES_DSN"):
        database = f"nid_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"CREATE DATABASE {database}")
        try:
            pg = await PostgresStore.open(dsn.rsplit("/", 1)[0] + f"/{database}")
            await measure("postgresql", pg)
            await pg.close()
        finally:
            await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
            await admin.close()
    else:
        print("postgresql  skipped: NID_TEST_POSTGRES_DSN not set")


if __name__ == "__main__":
    asyncio.run(main())
