"""PolicyStore: fail-closed start, hot reload with atomic swap, watching, shadow mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.observability.metrics import GatewayMetrics
from gateway.observability.observer import GatewayObserver
from gateway.policy import Decision, PolicyLoadError, PolicySet, PolicyStore
from tests.fixtures.policy import Writer, facts

POLICY = """
policy: p
applies_to: {{graphql: {{operation: mutation, field: zendNotificatie}}}}
checks:
  - id: soort
    require: {{fact: args.t, in: [{allowed}]}}
    reason: soort is not valid
"""


def write_policy(write: Writer, allowed: str = "A", name: str = "set/p.yaml") -> Path:
    return write(name, POLICY.format(allowed=allowed))


def observer() -> tuple[GatewayObserver, GatewayMetrics]:
    metrics = GatewayMetrics()
    return GatewayObserver(metrics, decision_log=False), metrics


def sample(metrics: GatewayMetrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_store_refuses_to_start_on_a_broken_set(write: Writer) -> None:
    file = write("set/p.yaml", "policy: p\n")
    with pytest.raises(PolicyLoadError) as info:
        PolicyStore([file.parent])
    assert info.value.errors[0].startswith(f"{file}:1:1: missing required key 'applies_to'")


def test_reload_swaps_in_a_good_set(write: Writer) -> None:
    file = write_policy(write, "A")
    obs, metrics = observer()
    store = PolicyStore([file.parent], observer=obs)
    first = store.version
    assert store.decide(facts({"t": "A"})).allow
    write_policy(write, "B")
    assert store.changed()
    assert store.reload() is True
    assert store.version != first
    assert not store.decide(facts({"t": "A"})).allow
    decision = store.decide(facts({"t": "B"}))
    assert decision.allow and decision.policy_version == store.version
    assert sample(metrics, "nid_gateway_policy_reloads_total", {"outcome": "ok"}) == 1.0
    assert sample(metrics, "nid_gateway_policy_loaded", {"version": store.version}) == 1.0


def test_broken_set_is_refused_and_the_old_one_keeps_serving(write: Writer) -> None:
    file = write_policy(write, "A")
    obs, metrics = observer()
    store = PolicyStore([file.parent], observer=obs)
    good = store.version
    file.write_text(POLICY.format(allowed="A").replace("in: [A]", "in: onbekend"))
    assert store.reload() is False
    assert store.version == good
    assert store.decide(facts({"t": "A"})).allow
    assert sample(metrics, "nid_gateway_policy_reloads_total", {"outcome": "refused"}) == 1.0
    assert not store.changed()  # the broken content is not retried until it changes again


def test_decide_never_fails_while_reloading(write: Writer) -> None:
    file = write_policy(write, "A")
    store = PolicyStore([file.parent])
    versions = {store.version}
    stop = threading.Event()
    failures: list[BaseException] = []
    seen: set[str | None] = set()

    def decide_loop() -> None:
        try:
            while not stop.is_set():
                decision: Decision = store.decide(facts({"t": "A"}))
                seen.add(decision.policy_version)
                # A decision is always the whole answer of one set: A allowed only under v1.
                assert decision.allow == (decision.policy_version in versions_a)
        except BaseException as exc:  # collected for the assertion below
            failures.append(exc)

    # The version is a content hash: every "A" set has the first version.
    versions_a = {store.version}
    threads = [threading.Thread(target=decide_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(6):
            allowed = "A" if n % 2 else "B"
            write_policy(write, allowed)
            assert store.reload()
            versions.add(store.version)
            file.write_text("policy: [broken")
            assert not store.reload()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(versions) == 2
    assert seen == versions  # the decisions did run during the reloads, under both sets


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until *predicate* holds, at most *timeout* seconds (then fail)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def watching(store: PolicyStore) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``store.watch`` (short debounce) for the body; stop it by its event afterwards."""
    stop = asyncio.Event()
    task = asyncio.create_task(store.watch(stop, debounce=0.05))
    # awatch installs its inotify watches in its first step, before it first awaits.
    await asyncio.sleep(0)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)  # the stop event ends it: no cancellation


async def test_watch_reloads_when_a_file_changes(write: Writer) -> None:
    file = write_policy(write, "A")
    store = PolicyStore([file.parent])
    first = store.version
    async with watching(store):
        write_policy(write, "B")
        await until(lambda: store.version != first)
        assert store.decide(facts({"t": "B"})).allow


async def test_watch_sees_an_editor_save_by_rename_over_a_watched_file(write: Writer) -> None:
    file = write_policy(write, "A")
    store = PolicyStore([file])  # the file itself configured, not its directory
    first = store.version
    async with watching(store):
        temporary = file.with_name(".p.yaml.swp")
        temporary.write_text(POLICY.format(allowed="B"), encoding="utf-8")
        os.replace(temporary, file)  # a new inode under the old name
        await until(lambda: store.version != first)
        assert store.decide(facts({"t": "B"})).allow
        file.write_text(POLICY.format(allowed="C"), encoding="utf-8")  # and still watched after
        await until(lambda: store.decide(facts({"t": "C"})).allow)


async def test_watch_keeps_the_last_good_set_on_a_bad_edit(write: Writer) -> None:
    file = write_policy(write, "A")
    obs, metrics = observer()
    store = PolicyStore([file.parent], observer=obs)
    good = store.version
    refused = {"outcome": "refused"}
    async with watching(store):
        file.write_text("policy: [broken", encoding="utf-8")
        await until(lambda: sample(metrics, "nid_gateway_policy_reloads_total", refused) == 1.0)
        assert store.version == good and store.decide(facts({"t": "A"})).allow
        write_policy(write, "B")  # fixed: the next save is enforced
        await until(lambda: store.version != good)
    assert store.decide(facts({"t": "B"})).allow
    assert sample(metrics, "nid_gateway_policy_reloads_total", refused) == 1.0
    assert sample(metrics, "nid_gateway_policy_reloads_total", {"outcome": "ok"}) == 1.0


def test_shadow_differences_are_reported_never_enforced(write: Writer) -> None:
    active = write_policy(write, "A, B", "active/p.yaml")
    shadow = write_policy(write, "A", "shadow/p.yaml")
    obs, metrics = observer()
    store = PolicyStore([active.parent], shadow=[shadow.parent], observer=obs)
    assert store.shadow_version is not None and store.shadow_version != store.version
    assert store.decide(facts({"t": "A"})).allow  # same answer: nothing reported
    assert store.decide(facts({"t": "B"})).allow  # shadow would refuse: reported, not enforced
    # A fresh GatewayMetrics admits the first 20 route paths as labels: the route is its own.
    route = "/deelnemers/uzovi/5151/graphql"
    mismatches = [
        (s.labels, s.value)
        for m in metrics.registry.collect()
        if m.name == "nid_gateway_shadow_mismatches"
        for s in m.samples
        if s.name == "nid_gateway_shadow_mismatches_total"
    ]
    assert mismatches == [({"route": route, "active": "allow", "shadow": "deny:400"}, 1.0)]


class ExplodingSet(PolicySet):
    """A shadow set whose evaluation fails (stands in for any shadow bug)."""

    def decide(self, facts: object, *, explain: bool = False) -> Decision:  # type: ignore[override]
        raise RuntimeError("shadow bug")


def test_a_failing_shadow_never_changes_the_answer(write: Writer) -> None:
    active = write_policy(write, "A", "active/p.yaml")
    store = PolicyStore([active.parent], shadow=[active.parent])
    real = store.shadow
    assert real is not None
    store._shadow = ExplodingSet(real.version, None, real.files, (), real.data)
    assert store.decide(facts({"t": "A"})).allow
    assert not store.decide(facts({"t": "B"})).allow
