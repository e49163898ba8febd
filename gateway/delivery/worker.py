"""The delivery worker: posts due deliveries from the outbox to their recipient until each
is delivered or dead (the uitvallijst).

It runs inside the gateway process, started and stopped with the app. Every
``poll_interval`` (and at once when a notification is accepted) it claims due deliveries
with a lease, so that several processes or replicas never attempt one delivery at the same
time; a worker that dies mid-attempt holds nothing once its lease runs out. Each attempt
re-resolves the recipient's endpoint, sends the original body bytes with the headers
decided on plus ``Idempotency-Key: <deliveryId>``, and is recorded (time, status, error).

2xx is delivered; 5xx, 408, 429, no answer and an unknown endpoint are retried after an
exponential back-off with jitter (tenacity's ``wait_exponential_jitter``) until
``max_attempts`` or ``max_age``; any other answer makes the delivery dead at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

import aiohttp
import structlog

from gateway.config.model import DeliveryConfig
from gateway.observability.logs import emit_json_event
from gateway.observability.metrics import GatewayMetrics
from gateway.store.api import Attempt, Delivery, DeliveryStore, Party, StoreUnavailable, now

log = structlog.get_logger("gateway.delivery")

Verdict = Literal["delivered", "retry", "dead"]
RETRIED_STATUSES = frozenset({408, 429})
STATS_INTERVAL = 5.0
"""Seconds between reports of the outbox depth to the metrics."""


class RecipientResolver(Protocol):
    """Finds a recipient's endpoint (the adresboek); asked again on every attempt."""

    async def resolve(self, recipient: Party) -> str | None:
        """The URL notifications for *recipient* go to, None when it has none."""


class StaticResolver:
    """A fixed recipient -> URL table (the routes' deelnemers, or a test's)."""

    def __init__(self, endpoints: Mapping[Party, str]) -> None:
        self._endpoints = dict(endpoints)

    async def resolve(self, recipient: Party) -> str | None:
        return self._endpoints.get(recipient)


def classify(status: int | None) -> Verdict:
    """What a recipient's answer means for the delivery (None: no answer at all)."""
    if status is None or status >= 500 or status in RETRIED_STATUSES:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "dead"


class Backoff:
    """Seconds to wait after the n-th failed attempt: ``initial * 2**(n-1)`` plus up to
    ``initial`` of jitter, capped at ``cap`` (tenacity's ``wait_exponential_jitter``)."""

    def __init__(self, initial: float, cap: float) -> None:
        import tenacity  # not imported by a start without delivery

        self._wait = tenacity.wait_exponential_jitter(multiplier=initial, max=cap, jitter=initial)

    def after(self, attempts: int) -> float:
        import tenacity

        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempts
        return float(self._wait(state))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt and what follows from it; *reason* says why a dead one is dead."""

    attempt: Attempt
    verdict: Verdict
    reason: str | None = None


class DeliveryWorker:
    """Claims due deliveries and attempts them, at most ``per_recipient`` at a time each."""

    def __init__(
        self,
        store: DeliveryStore,
        resolver: RecipientResolver,
        settings: DeliveryConfig,
        *,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.settings = settings
        self.metrics = metrics
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._wake = asyncio.Event()
        self._limits: dict[Party, asyncio.Semaphore] = {}
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._backlog = False
        self._reported = 0.0

    def wake(self) -> None:
        """Look for due deliveries now (a notification was just accepted)."""
        self._wake.set()

    async def start(self) -> None:
        """Open the client session, make every pending delivery due (a restart retries at
        once) and start claiming."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            connector=aiohttp.TCPConnector(limit=self.settings.batch),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
        try:
            await self.store.due_now()
        except StoreUnavailable as exc:
            log.warning("delivery_store_unavailable", error=str(exc))
        self._loop = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        """Stop claiming; let attempts in flight finish (each is bounded by ``timeout``)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.timeout + 1)
        for task in list(self._tasks):  # still waiting for its recipient: its lease runs out
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                log.warning("delivery_store_unavailable", error=str(exc))
            except Exception:
                log.exception("delivery_worker_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim what is due (as much as there is room for) and start attempting it."""
        if self.metrics is not None and time.monotonic() - self._reported >= STATS_INTERVAL:
            await self.report()
        room = self.settings.batch - len(self._inflight)
        if room <= 0:
            return 0
        claimed = await self.store.claim_due(room, self.settings.lease)
        self._backlog = len(claimed) == room
        for delivery in claimed:
            if delivery.delivery_id in self._inflight:
                continue
            self._inflight.add(delivery.delivery_id)
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def report(self) -> None:
        """Outbox depth per state and the oldest pending delivery's age, to the metrics."""
        assert self.metrics is not None
        self._reported = time.monotonic()
        stats = await self.store.outbox_stats()
        for state, count in stats.counts.items():
            self.metrics.outbox_depth.labels(state).set(count)
        oldest = stats.oldest_pending
        age = 0.0 if oldest is None else max(0.0, (now() - oldest).total_seconds())
        self.metrics.outbox_oldest_pending.set(age)

    async def _deliver(self, delivery: Delivery) -> None:
        limit = self._limits.setdefault(
            delivery.recipient, asyncio.Semaphore(self.settings.per_recipient)
        )
        try:
            # Waiting for the recipient's turn must end while the lease still covers the
            # attempt; if it does not, the lease runs out and the delivery is claimed again.
            queue_wait = self.settings.lease - self.settings.timeout - 1
            try:
                await asyncio.wait_for(limit.acquire(), max(queue_wait, 0.1))
            except TimeoutError:
                return
            try:
                outcome = await self.attempt(delivery)
            finally:
                limit.release()
            await self.record(delivery, outcome)
        except StoreUnavailable as exc:  # recorded nothing: the lease runs out, tried again
            log.warning("delivery_store_unavailable", error=str(exc))
        except Exception:
            log.exception("delivery_attempt_error", delivery_id=delivery.delivery_id)
        finally:
            self._inflight.discard(delivery.delivery_id)
            if self._backlog:
                self._wake.set()

    async def attempt(self, delivery: Delivery) -> Outcome:
        """Post *delivery* once to its recipient's current endpoint; what came of it."""
        assert self._session is not None, "start() first"
        at = now()
        status: int | None = None
        error: str | None
        try:
            url = await self.resolver.resolve(delivery.recipient)
        except Exception as exc:  # the adresboek failed: not the recipient's fault
            url, error = None, f"recipient not resolved: {exc}"
        else:
            error = f"no endpoint for {delivery.recipient.id_type} {delivery.recipient.id}"
        if url is not None:
            headers = {**delivery.headers, "Idempotency-Key": delivery.delivery_id}
            try:
                async with self._session.post(url, data=delivery.body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except TimeoutError:
                error = f"no answer within {self.settings.timeout:g} s"
            except (aiohttp.ClientError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        return self._judge(delivery, Attempt(at, status, error))

    def _judge(self, delivery: Delivery, attempt: Attempt) -> Outcome:
        verdict = classify(attempt.status)
        if verdict == "dead":
            return Outcome(attempt, "dead", "rejected")
        if verdict == "retry":
            if len(delivery.attempts) + 1 >= self.settings.max_attempts:
                return Outcome(attempt, "dead", "max_attempts")
            if attempt.at - delivery.created_at >= timedelta(seconds=self.settings.max_age):
                return Outcome(attempt, "dead", "max_age")
        return Outcome(attempt, verdict)

    async def record(self, delivery: Delivery, outcome: Outcome) -> None:
        """Store the attempt and the delivery's new state; count it; log a dead one."""
        attempt, delivery_id = outcome.attempt, delivery.delivery_id
        if outcome.verdict == "delivered":
            await self.store.mark_delivered(delivery_id, attempt)
        elif outcome.verdict == "retry":
            wait = self.backoff.after(len(delivery.attempts) + 1)
            await self.store.mark_retry(delivery_id, attempt, attempt.at + timedelta(seconds=wait))
        else:
            await self.store.mark_dead(delivery_id, attempt)
            self._dead_event(delivery, outcome)
        if self.metrics is not None:
            self.metrics.delivery_attempts.labels(outcome.verdict).inc()
            if outcome.verdict == "dead":
                self.metrics.deliveries_dead.labels(outcome.reason or "rejected").inc()

    @staticmethod
    def _dead_event(delivery: Delivery, outcome: Outcome) -> None:
        """The decision log's record that a delivery went to the uitvallijst."""
        fields = {
            "delivery_id": delivery.delivery_id,
            "decision_id": delivery.decision_id,
            "trace_id": delivery.trace_id,
            "sender": delivery.sender,
            "recipient": f"{delivery.recipient.id_type} {delivery.recipient.id}",
            "reason": outcome.reason,
            "attempts": len(delivery.attempts) + 1,
            "status": outcome.attempt.status,
            "last_error": outcome.attempt.error,
        }
        emit_json_event("gateway.decision", "warning", "delivery_dead", fields)
