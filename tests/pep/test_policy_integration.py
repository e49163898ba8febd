"""The PEP and the policy store together, through the real running gateway.

A failing PDP fails closed; a request no policy applies to is denied by default; policy
files are hot-reloaded (watching, SIGHUP, a broken set refused, reloads under load); a
shadow set is counted and logged but never enforced; ``policy.environment`` selects the
data overlay. Policies are copies of the real ``policies/iwlz`` in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.authserver.signing_keys import KeyStore
from gateway.authserver.tokens import issue_token
from gateway.facts import DecisionInput
from gateway.observability.http import readiness
from gateway.observability.logs import flush_pending
from gateway.pep import PEP
from gateway.policy import Decision, PolicyStore
from tests.fixtures.gateway import (
    NOTIFICATIE_5151,
    POLICIES,
    PUBLIC_URL,
    REPO,
    ZK_5151,
    Gateway,
    GatewayFactory,
    RecordingObserver,
    RecordingUpstream,
    gateway_yaml,
    route,
    seed_notification,
    write_config,
)

T = TypeVar("T")

ZK_5000 = "/deelnemers/uzovi/5000/graphql"
"""A route to VECOZO test zorgkantoor UZOVI 5000 (allowed only in environment ``test``)."""

INDICATIE_ROWS = (
    "{code: NIEUWE_INDICATIE_ZORGKANTOOR,",
    "{event_type: NIEUWE_INDICATIE_ZORGKANTOOR,",
)
"""The catalogue row that lets the CIZ send the seed 003 notification, and its binding to
the CIZ (gebonden_afzenders; a binding to an event type the table lacks does not load)."""

EVENT_TYPE_REFUSED = "ZendNotificatie mutation: event_type is not valid"


# ---------------------------------------------------------------------------- helpers


def copy_policies(directory: Path) -> Path:
    """A private copy of ``policies/iwlz`` the test may edit."""
    target = directory / "policies" / "iwlz"
    shutil.copytree(POLICIES, target)
    return target


def catalogue(policies: Path) -> Path:
    return policies / "catalogus" / "notificatietypen.yaml"


def write_atomically(path: Path, text: str) -> None:
    """Replace *path* in one step, as a deployment tool does (no half-written file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def without_indicatie(text: str) -> str:
    """The catalogue without NIEUWE_INDICATIE_ZORGKANTOOR: the CIZ's notification is refused."""
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not any(row in line for row in INDICATIE_ROWS)]
    assert len(kept) == len(lines) - 2
    return "".join(kept)


def refuse_indicatie(policies: Path) -> None:
    write_atomically(catalogue(policies), without_indicatie(catalogue(policies).read_text()))


def zk_route(
    upstream: RecordingUpstream, policies: Path, path: str = ZK_5151, ident: str = "5151"
) -> dict[str, Any]:
    return route(
        path, f"{upstream.url}/graphql", "UZOVI", ident, "zorgkantoor", policies=[str(policies)]
    )


def ciz_token(gateway: Gateway, path: str = ZK_5151) -> str:
    return gateway.token("ciz", [NOTIFICATIE_5151], path)


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 5.0) -> T:
    """Poll *probe* until it returns something other than None, at most *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def status_of(gateway: Gateway, token: str) -> int:
    response = await gateway.post(ZK_5151, token=token)
    await response.read()
    status: int = response.status
    return status


async def refused_now(gateway: Gateway, token: str) -> dict[str, Any] | None:
    """The refusal body once the seed notification is refused, else None."""
    response = await gateway.post(ZK_5151, token=token)
    body: dict[str, Any] = json.loads(await response.read())
    return body if response.status == 400 else None


async def policy_versions(gateway: Gateway) -> dict[str, str]:
    """The policy version per policy path tuple, as the admin listener's ``/readyz`` shows it
    (the public ``/readyz`` says only ready or not)."""
    _ready, detail = await readiness(gateway.client.app)
    versions: dict[str, str] = detail["policies"]["versions"]
    return versions


async def metric(gateway: Gateway, name: str, **labels: str) -> float | None:
    """One sample scraped from ``/metrics`` (None when absent)."""
    text = await (await gateway.client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture
async def metered_gateway(
    tmp_path: Path, upstream: RecordingUpstream, aiohttp_client: Any
) -> Callable[..., Awaitable[Gateway]]:
    """A gateway reporting to its REAL observer (metrics, logs): ``create_app(config)``.

    Its decisions go to that observer, so the returned ``Gateway.observer`` stays empty;
    tests read ``/metrics``, ``/readyz`` and the log instead.
    """

    async def make(**overrides: Any) -> Gateway:
        data = gateway_yaml(upstream.url, f"http://127.0.0.1:{unused_port()}/graphql", **overrides)
        config = write_config(tmp_path, data)
        client = await aiohttp_client(await create_app(config))
        return Gateway(client, config, upstream, RecordingObserver())

    return make


# ---------------------------------------------------------------------------- deciding


class ExplodingStore(PolicyStore):
    """The real iWlz store whose evaluation fails (stands in for a PDP bug)."""

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision:
        raise ZeroDivisionError("policy bug")


async def test_policy_that_raises_fails_closed_with_500(gateway: Gateway) -> None:
    handler = gateway.client.app[PEP].handlers[ZK_5151]
    handler.plan = dataclasses.replace(handler.plan, policy=ExplodingStore([POLICIES]))
    response = await gateway.post(ZK_5151, token=ciz_token(gateway))
    assert response.status == 500
    [error] = json.loads(await response.read())["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["message"] == "Policy evaluation failed"
    assert error["extensions"]["reason"] == "policy evaluation failed: ZeroDivisionError"
    assert gateway.upstream.received == []
    [event] = gateway.observer.decisions
    assert (event.outcome, event.status, event.code) == ("error", 500, "INTERNAL_SERVER_ERROR")


async def test_request_no_policy_applies_to_is_403_policy_access_denied(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    # The route grants every root field by scope_default, so only the policy can refuse:
    # no iWlz policy applies to `query notificaties` (default deny).
    routes = [
        route(
            ZK_5151,
            f"{upstream.url}/graphql",
            "UZOVI",
            "5151",
            "zorgkantoor",
            scope_default=NOTIFICATIE_5151,
        )
    ]
    gateway = await make_gateway(routes=routes)
    body = {"query": "query { notificaties { notificatieID } }"}
    response = await gateway.post(ZK_5151, body, token=ciz_token(gateway))
    assert response.status == 403
    [error] = json.loads(await response.read())["errors"]
    assert (error["extensions"]["code"], error["message"]) == ("FORBIDDEN", "Policy Access Denied")
    assert "WWW-Authenticate" not in response.headers
    assert gateway.upstream.received == []
    assert gateway.observer.decisions[-1].outcome == "deny"


# ---------------------------------------------------------------------------- hot reload


async def test_watched_policy_change_is_enforced_and_shown_as_the_new_version(
    metered_gateway: Callable[..., Awaitable[Gateway]],
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    policies = copy_policies(tmp_path)
    gateway = await metered_gateway(
        routes=[zk_route(upstream, policies)], policy={"watch": True, "watch_interval": 0.1}
    )
    token = ciz_token(gateway)
    [old] = (await policy_versions(gateway)).values()
    assert await metric(gateway, "nid_gateway_policy_loaded", version=old) == 1.0
    assert await status_of(gateway, token) == 200

    refuse_indicatie(policies)
    body = await eventually(lambda: refused_now(gateway, token))
    assert body["errors"][0]["message"] == EVENT_TYPE_REFUSED
    [new] = (await policy_versions(gateway)).values()
    assert new != old and new.startswith("sha256:")
    assert await metric(gateway, "nid_gateway_policy_loaded", version=new) == 1.0
    assert await metric(gateway, "nid_gateway_policy_loaded", version=old) == 0.0
    assert await metric(gateway, "nid_gateway_policy_reloads_total", outcome="ok") == 2.0
    # Polling forwarded what the old set allowed; a refusal under the new set reaches nothing.
    reached = len(upstream.received)
    assert await status_of(gateway, token) == 400
    assert len(upstream.received) == reached


async def test_broken_policy_file_is_refused_and_the_old_set_keeps_serving(
    metered_gateway: Callable[..., Awaitable[Gateway]],
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    policies = copy_policies(tmp_path)
    gateway = await metered_gateway(
        routes=[zk_route(upstream, policies)], policy={"watch": True, "watch_interval": 0.1}
    )
    token = ciz_token(gateway)
    [good] = (await policy_versions(gateway)).values()

    # A rule naming a list that does not exist: a load error, so the whole set is refused.
    notificatie = policies / "notificatie.yaml"
    write_atomically(
        notificatie,
        notificatie.read_text().replace("row: alleen_in_test", "row: alleen_in_tset", 1),
    )

    async def refused_count() -> float | None:
        return await metric(gateway, "nid_gateway_policy_reloads_total", outcome="refused")

    assert await eventually(refused_count) == 1.0
    assert await status_of(gateway, token) == 200
    assert await policy_versions(gateway) == {str(policies): good}
    assert await metric(gateway, "nid_gateway_policy_loaded", version=good) == 1.0
    assert await metric(gateway, "nid_gateway_policy_reloads_total", outcome="ok") == 1.0


async def test_reloads_under_concurrent_requests_never_fail_a_request(
    make_gateway: GatewayFactory, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    policies = copy_policies(tmp_path)
    gateway = await make_gateway(routes=[zk_route(upstream, policies)])
    pep = gateway.client.app[PEP]
    token = ciz_token(gateway)
    allowing = catalogue(policies).read_text()
    versions = [allowing, without_indicatie(allowing)]
    done = asyncio.Event()
    swaps = 0

    async def swap() -> None:
        # The SIGHUP path, in a worker thread as the watcher runs it: truly concurrent
        # with the requests on the event loop.
        nonlocal swaps
        while not done.is_set():
            swaps += 1
            write_atomically(catalogue(policies), versions[swaps % 2])
            await asyncio.to_thread(pep.reload_policies)

    bound = asyncio.Semaphore(20)

    async def one() -> tuple[int, bytes]:
        async with bound:
            response = await gateway.post(ZK_5151, token=token)
            return response.status, await response.read()

    swapper = asyncio.create_task(swap())
    try:
        answers = await asyncio.gather(*(one() for _ in range(200)))
    finally:
        done.set()
        await swapper
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 400}, statuses
    assert all(
        json.loads(body)["errors"][0]["message"] == EVENT_TYPE_REFUSED
        for status, body in answers
        if status == 400
    )
    assert swaps >= 2 and 200 in statuses and 400 in statuses
    assert len(upstream.received) == statuses.count(200)
    # Each request was decided by one whole set: every allow by one version, every
    # refusal by the other.
    events = gateway.observer.decisions
    allowed = {e.policy_version for e in events if e.outcome == "allow"}
    denied = {e.policy_version for e in events if e.outcome == "deny"}
    assert len(allowed) == 1 and len(denied) == 1 and allowed != denied


async def test_sighup_reload_path_applies_a_changed_policy_without_watching(
    make_gateway: GatewayFactory, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    policies = copy_policies(tmp_path)
    gateway = await make_gateway(routes=[zk_route(upstream, policies)], policy={"watch": False})
    token = ciz_token(gateway)
    assert await status_of(gateway, token) == 200
    refuse_indicatie(policies)
    assert await status_of(gateway, token) == 200  # not watching: nothing changes by itself
    gateway.client.app[PEP].reload_policies()  # what the SIGHUP handler calls
    body = await refused_now(gateway, token)
    assert body is not None and body["errors"][0]["message"] == EVENT_TYPE_REFUSED
    assert len(upstream.received) == 2  # the two allowed before the reload only
    first, *_, last = gateway.observer.decisions
    assert first.policy_version != last.policy_version


async def test_sighup_to_a_served_gateway_reloads_its_policies(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    policies = copy_policies(tmp_path)
    port = unused_port()
    data = gateway_yaml(
        upstream.url,
        f"http://127.0.0.1:{unused_port()}/graphql",
        routes=[zk_route(upstream, policies)],
        policy={"watch": False},
    )
    data["server"]["port"] = port
    # The policy versions are readiness detail: on the admin listener only.
    admin_port = unused_port()
    data["server"]["admin"] = {"host": "127.0.0.1", "port": admin_port}
    config = write_config(tmp_path, data)
    token = issue_token(
        config, KeyStore.load(config), "ciz", [NOTIFICATIE_5151], PUBLIC_URL + ZK_5151
    )
    base = f"http://127.0.0.1:{port}"
    admin = f"http://127.0.0.1:{admin_port}"
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--config",
                str(tmp_path / "gateway.yaml"),
            ],
            stdout=out,
            stderr=err,
            cwd=REPO,
        )
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool | None:
                assert proc.poll() is None, (tmp_path / "stderr").read_text()
                try:
                    async with session.get(f"{base}/healthz") as response:
                        return True if response.status == 200 else None
                except aiohttp.ClientConnectionError:
                    return None

            async def post() -> tuple[int, dict[str, Any]]:
                async with session.post(
                    f"{base}{ZK_5151}",
                    json=seed_notification(),
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    return response.status, await response.json(content_type=None)

            async def versions() -> dict[str, str]:
                async with session.get(f"{admin}/readyz") as response:
                    found: dict[str, str] = (await response.json())["checks"]["policies"][
                        "versions"
                    ]
                    return found

            await eventually(healthy, timeout=10.0)
            assert (await post())[0] == 200
            before = await versions()
            refuse_indicatie(policies)
            proc.send_signal(signal.SIGHUP)

            async def reloaded() -> bool | None:
                return True if await versions() != before else None

            # Wait for the new version before posting again: a post that raced the signal
            # would still be allowed and forwarded under the old set.
            await eventually(reloaded)
            status, body = await post()
            assert status == 400
            assert body["errors"][0]["message"] == EVENT_TYPE_REFUSED
            assert proc.poll() is None  # SIGHUP reloads, it does not stop the gateway
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, (tmp_path / "stderr").read_text()
    assert len(upstream.received) == 1


# ---------------------------------------------------------------------------- shadow


async def test_shadow_mismatch_is_counted_and_logged_but_never_enforced(
    metered_gateway: Callable[..., Awaitable[Gateway]],
    upstream: RecordingUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stricter = copy_policies(tmp_path / "shadow")
    refuse_indicatie(stricter)
    gateway = await metered_gateway(
        routes=[route(ZK_5151, f"{upstream.url}/graphql", "UZOVI", "5151", "zorgkantoor")],
        policy={"watch": False, "shadow": [str(stricter)]},
    )
    capsys.readouterr()
    assert await status_of(gateway, ciz_token(gateway)) == 200  # the active set decides
    assert len(upstream.received) == 1
    assert (
        await metric(
            gateway,
            "nid_gateway_shadow_mismatches_total",
            route=ZK_5151,
            active="allow",
            shadow="deny:400",
        )
        == 1.0
    )
    flush_pending()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    [logged] = [line for line in lines if line.get("event") == "shadow_mismatch"]
    assert (logged["route"], logged["active"], logged["shadow"]) == (ZK_5151, "allow", "deny:400")
    assert logged["shadow_rule"] == "iwlz-notificatie/event-type"


# ---------------------------------------------------------------------------- environment


async def test_test_uzovi_as_recipient_is_refused_by_default(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await make_gateway(routes=[zk_route(upstream, POLICIES, ZK_5000, "5000")])
    body = seed_notification(ontvangerID="5000")
    response = await gateway.post(ZK_5000, body, token=ciz_token(gateway, ZK_5000))
    assert response.status == 400
    [error] = json.loads(await response.read())["errors"]
    assert error["message"] == "ZendNotificatie mutation: ontvanger is not valid"
    assert upstream.received == []


async def test_test_uzovi_as_recipient_is_allowed_in_environment_test(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await make_gateway(
        routes=[zk_route(upstream, POLICIES, ZK_5000, "5000")],
        policy={"watch": False, "environment": "test"},
    )
    body = seed_notification(ontvangerID="5000")
    response = await gateway.post(ZK_5000, body, token=ciz_token(gateway, ZK_5000))
    assert response.status == 200, await response.text()
    assert len(upstream.received) == 1


# ---------------------------------------------------------------------------- require_tests


async def test_reload_whose_tests_fail_is_refused_with_require_tests(
    metered_gateway: Callable[..., Awaitable[Gateway]],
    upstream: RecordingUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policies = copy_policies(tmp_path)
    gateway = await metered_gateway(
        routes=[zk_route(upstream, policies)], policy={"watch": False, "require_tests": True}
    )
    token = ciz_token(gateway)
    [good] = (await policy_versions(gateway)).values()
    # A set that loads (the catalogue is well-formed) but decides the seed wrongly: the
    # CIZ's notification refused, as notificatie.test.yaml says it must not be.
    refuse_indicatie(policies)
    capsys.readouterr()
    gateway.client.app[PEP].reload_policies()  # what the SIGHUP handler calls
    assert await status_of(gateway, token) == 200  # the last good set keeps serving
    assert await policy_versions(gateway) == {str(policies): good}
    assert await metric(gateway, "nid_gateway_policy_reloads_total", outcome="refused") == 1.0
    flush_pending()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    [refused] = [line for line in lines if line.get("event") == "policy_reload_refused"]
    assert refused["kept_version"] == good
    failing = (
        f"{policies / 'notificatie.test.yaml'}:71:0: test case 'CIZ sends "
        "NIEUWE_INDICATIE_ZORGKANTOOR to zorgkantoor 5151 (the seed example)' fails"
    )
    assert any(error.startswith(failing) for error in refused["errors"]), refused["errors"]
