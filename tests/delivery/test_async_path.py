"""Reliable delivery in the running gateway (contract: *Reliable delivery*): the async path,
the worker's retries and uitvallijst, ``GET /deliveries/<id>``, over real HTTP with a real
SQLite store and a real recipient that honours ``Idempotency-Key``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.delivery.setup import WORKER
from gateway.delivery.worker import Backoff, classify
from gateway.store.open import sqlite_path
from gateway.store.setup import STORE
from tests.fixtures.delivery import CENTRAL, Recipient, central_sections, until
from tests.fixtures.gateway import (
    NOTIFICATIE_5151,
    ZK_5151,
    Gateway,
    GatewayFactory,
    seed_notification,
)
from tests.observability.test_dashboard import (
    DELIVERY,
    check_queries,
    dashboard,
    exposed_labels,
    metric_names,
    targets,
)

ASYNC = {"Prefer": "respond-async"}
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "poll_interval": 0.1, "timeout": 2}


@pytest.fixture
async def recipient() -> AsyncIterator[Recipient]:
    found = await Recipient().start()
    yield found
    await found.stop()


async def central(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path, **delivery: Any
) -> Gateway:
    """A gateway with a store and the central route; the adresboek's UZOVI 5151 (the seed
    notification's recipient) is *recipient*."""
    return await make_gateway(
        **central_sections(tmp_path, recipient.url),
        store={"backend": "sqlite", "timeout": 0.3},
        data_dir=str(tmp_path / "data"),
        delivery={**FAST, **delivery},
    )


def ciz_token(gateway: Gateway, path: str = CENTRAL) -> str:
    return gateway.token("ciz", [NOTIFICATIE_5151], path)


async def accept(gateway: Gateway, body: Any = None) -> str:
    response = await gateway.post(CENTRAL, body, token=ciz_token(gateway), headers=ASYNC)
    assert response.status == 202, await response.text()
    delivery_id: str = (await response.json())["deliveryId"]
    assert response.headers["Location"] == f"/deliveries/{delivery_id}"
    return delivery_id


async def status(gateway: Gateway, delivery_id: str, client: str = "ciz") -> Any:
    token = gateway.token(client, [NOTIFICATIE_5151], CENTRAL)
    response = await gateway.client.get(
        f"/deliveries/{delivery_id}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json()


async def delivered(gateway: Gateway, delivery_id: str) -> bool:
    return bool((await status(gateway, delivery_id))[1]["state"] == "delivered")


async def test_an_accepted_notification_is_delivered_with_its_bytes_claims_and_key(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    body = json.dumps(seed_notification(), indent=3).encode()
    response = await gateway.post(
        CENTRAL,
        data=body,
        token=ciz_token(gateway),
        headers={**ASYNC, "Content-Type": "application/json", "Idempotency-Key": "mine"},
    )
    assert response.status == 202
    delivery_id = (await response.json())["deliveryId"]
    await until(lambda: delivered(gateway, delivery_id))
    [seen] = recipient.attempts
    assert seen.body == body
    assert seen.key == delivery_id and seen.headers.getall("Idempotency-Key") == [delivery_id]
    assert "Prefer" not in seen.headers
    assert json.loads(seen.headers["claims"])["client_id"] == "ciz"
    assert await status(gateway, delivery_id) == (
        200,
        {"deliveryId": delivery_id, "state": "delivered", "attempts": 1, "lastError": None},
    )
    stored = await gateway.client.app[STORE].get(delivery_id)
    assert stored is not None and stored.decision["allow"] is True
    decision = gateway.observer.decisions[-1]
    assert stored.decision_id == decision.decision_id and stored.trace_id == decision.trace_id


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"ontvangerID": "5152"}, "ontvanger is not valid"),  # not in the adresboek
        ({"afzenderID": "11111111"}, "afzender"),  # the policy refuses another sender's name
    ],
)
async def test_a_refused_notification_with_prefer_is_answered_as_without_and_not_stored(
    make_gateway: GatewayFactory,
    recipient: Recipient,
    tmp_path: Path,
    overrides: dict[str, str],
    reason: str,
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    wrong = seed_notification(**overrides)
    token = ciz_token(gateway)
    plain = await gateway.post(CENTRAL, wrong, token=token)
    preferred = await gateway.post(CENTRAL, wrong, token=token, headers=ASYNC)
    assert preferred.status == plain.status and plain.status >= 400
    first, second = await plain.json(), await preferred.json()
    for answer in (first, second):
        answer["errors"][0]["extensions"].pop("decision_id")
    assert first == second
    assert reason in first["errors"][0]["extensions"]["reason"]
    assert await gateway.client.app[STORE].list_deliveries() == []
    assert recipient.attempts == []


async def test_retried_on_5xx_408_429_and_connection_errors_then_delivered(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    recipient.answers = [503, 408, 429]
    delivery_id = await accept(gateway)
    await until(lambda: delivered(gateway, delivery_id))
    assert [a.key for a in recipient.attempts] == [delivery_id] * 4
    assert recipient.processed[delivery_id] == 1
    stored = await gateway.client.app[STORE].get(delivery_id)
    assert stored is not None
    assert [a.status for a in stored.attempts] == [503, 408, 429, 200]


async def test_a_4xx_answer_makes_the_delivery_dead_at_once_and_counts_it(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    recipient.answers = [400]
    delivery_id = await accept(gateway)
    await until(lambda: _state(gateway, delivery_id, "dead"))
    assert await status(gateway, delivery_id) == (
        200,
        {"deliveryId": delivery_id, "state": "dead", "attempts": 1, "lastError": "HTTP 400"},
    )
    metrics = await (await gateway.client.get("/metrics")).text()
    assert 'nid_gateway_deliveries_dead_total{reason="rejected"} 1.0' in metrics
    assert 'nid_gateway_delivery_attempts_total{outcome="dead"} 1.0' in metrics


async def _state(gateway: Gateway, delivery_id: str, state: str) -> bool:
    return bool((await status(gateway, delivery_id))[1]["state"] == state)


async def test_after_max_attempts_dead_then_replayed_and_delivered_by_the_running_gateway(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path, max_attempts=2)
    recipient.answers = [500, 502]
    delivery_id = await accept(gateway)
    await until(lambda: _state(gateway, delivery_id, "dead"))
    stored = await gateway.client.app[STORE].get(delivery_id)
    assert stored is not None and [a.status for a in stored.attempts] == [500, 502]
    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "outbox", "replay",
        "--config", str(gateway.config.source), delivery_id,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await replay.communicate()
    assert replay.returncode == 0 and out.decode() == f"{delivery_id}  replayed\n"
    await until(lambda: _state(gateway, delivery_id, "delivered"), timeout=5)
    assert recipient.processed[delivery_id] == 1


async def test_a_delivery_older_than_max_age_is_dead_after_its_failed_attempt(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path, max_age=1)
    recipient.answers = [503] * 1000
    delivery_id = await accept(gateway)
    await until(lambda: _state(gateway, delivery_id, "dead"), timeout=5)
    metrics = await (await gateway.client.get("/metrics")).text()
    assert 'nid_gateway_deliveries_dead_total{reason="max_age"} 1.0' in metrics


async def test_a_recipient_down_for_a_while_gets_every_accepted_notification_once(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    await recipient.stop()
    ids = [await accept(gateway) for _ in range(20)]
    await until(lambda: _all_tried(gateway, ids))
    await recipient.start()
    await until(lambda: _all_delivered(gateway, ids))
    assert recipient.processed == dict.fromkeys(ids, 1)


async def _all_tried(gateway: Gateway, ids: list[str]) -> bool:
    tried = [(await status(gateway, i))[1]["attempts"] for i in ids]
    return bool(min(tried) >= 2)


async def _all_delivered(gateway: Gateway, ids: list[str]) -> bool:
    return all([await delivered(gateway, i) for i in ids])


async def test_no_more_than_per_recipient_attempts_are_in_flight_at_once(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path, per_recipient=2)
    recipient.delay = 0.1
    ids = [await accept(gateway) for _ in range(8)]
    await until(lambda: _all_delivered(gateway, ids))
    assert recipient.max_in_flight == 2


async def test_deliveries_are_shown_only_to_their_sender(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    delivery_id = await accept(gateway)
    assert (await status(gateway, delivery_id, "zorgkantoor-5151"))[0] == 404
    assert (await status(gateway, "no-such-id"))[0] == 404
    wrong_audience = gateway.token("ciz", [NOTIFICATIE_5151], ZK_5151)
    response = await gateway.client.get(
        f"/deliveries/{delivery_id}", headers={"Authorization": f"Bearer {wrong_audience}"}
    )
    assert response.status == 401


async def test_an_unwritable_store_refuses_the_async_path_while_the_sync_path_works(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    lock = sqlite3.connect(sqlite_path(gateway.config), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the store's write lock
    try:
        token = ciz_token(gateway)
        refused = await gateway.post(CENTRAL, token=token, headers=ASYNC)
        assert refused.status == 503
        assert (await refused.json())["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        synchronous = await gateway.post(CENTRAL, token=token)
        assert synchronous.status == 200
        assert len(recipient.attempts) == 1 and recipient.attempts[0].key is None
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert await gateway.client.app[STORE].list_deliveries() == []


async def test_without_prefer_the_central_route_answers_synchronously(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    response = await gateway.post(CENTRAL, token=ciz_token(gateway))
    assert response.status == 200
    assert await gateway.client.app[STORE].list_deliveries() == []


def test_answers_are_classified_as_the_contract_says() -> None:
    assert [classify(s) for s in (200, 204, 299)] == ["delivered"] * 3
    assert [classify(s) for s in (None, 500, 503, 408, 429)] == ["retry"] * 5
    assert [classify(s) for s in (400, 401, 403, 404, 409, 422, 301)] == ["dead"] * 7


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(1.0, 10.0)
    assert 1.0 <= backoff.after(1) <= 2.0
    assert 4.0 <= backoff.after(3) <= 5.0
    assert backoff.after(20) == 10.0
    assert len({backoff.after(2) for _ in range(20)}) > 1


async def test_metrics_show_the_outbox_depth_and_the_oldest_pending_age(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path, max_attempts=1000)
    await recipient.stop()
    await accept(gateway)

    async def reported() -> bool:
        text = await (await gateway.client.get("/metrics")).text()
        return 'nid_gateway_outbox_deliveries{state="pending"} 1.0' in text

    await until(reported, timeout=8)
    text = await (await gateway.client.get("/metrics")).text()
    [age] = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("nid_gateway_outbox_oldest_pending_seconds ")
    ]
    assert 0 < age < 10
    assert 'nid_gateway_delivery_attempts_total{outcome="retry"}' in text


async def test_a_dead_delivery_is_a_decision_log_event(
    make_gateway: GatewayFactory,
    recipient: Recipient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = await central(make_gateway, recipient, tmp_path)
    recipient.answers = [404]
    delivery_id = await accept(gateway)
    await until(lambda: _state(gateway, delivery_id, "dead"))
    events = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"delivery_dead"' in line
    ]
    [event] = [e for e in events if e["delivery_id"] == delivery_id]
    assert event["logger"] == "gateway.decision" and event["reason"] == "rejected"
    assert event["status"] == 404 and event["sender"] == "ciz"


async def test_the_dashboards_delivery_panels_select_what_the_worker_exposes(
    make_gateway: GatewayFactory, recipient: Recipient, tmp_path: Path
) -> None:
    """docs/grafana-dashboard.json's delivery panels (depth per state, oldest pending age,
    attempts by outcome, dead by reason) against the /metrics of a gateway that retried a
    delivery and then put it on the uitvallijst."""
    gateway = await central(make_gateway, recipient, tmp_path)
    recipient.answers = [503, 400]
    delivery_id = await accept(gateway)
    await until(lambda: _state(gateway, delivery_id, "dead"))
    await gateway.client.app[WORKER].report()  # the 5-second outbox refresh, now
    text = await (await gateway.client.get("/metrics")).text()
    queries = [
        (title, target)
        for title, target in targets(dashboard())
        if metric_names(target["expr"]) <= DELIVERY
    ]
    assert check_queries(queries, exposed_labels(text)) == DELIVERY
    assert 'nid_gateway_outbox_deliveries{state="dead"} 1.0' in text
    assert 'nid_gateway_outbox_deliveries{state="pending"} 0.0' in text
    assert "nid_gateway_outbox_oldest_pending_seconds 0.0" in text
    assert 'nid_gateway_delivery_attempts_total{outcome="retry"} 1.0' in text
    assert 'nid_gateway_deliveries_dead_total{reason="rejected"} 1.0' in text
