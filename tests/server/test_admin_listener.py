"""The admin listener of the real ``serve`` process: readiness detail and metrics there, only
ready / not ready on the public listener."""

from __future__ import annotations

import json

from aiohttp.test_utils import unused_port

from tests.fixtures.serve import StartServe, get


def test_readiness_detail_and_metrics_move_to_the_admin_listener(serve: StartServe) -> None:
    admin_port = unused_port()
    gateway = serve(admin={"host": "127.0.0.1", "port": admin_port})
    gateway.wait_listening()
    assert f"nid-gateway admin listener on http://127.0.0.1:{admin_port}" in (
        gateway.stderr.read_text()
    )
    # The route's upstream (127.0.0.1:9) is down: not ready, and the public answer says no more.
    status, body = get(gateway.port, "/readyz")
    assert (status, json.loads(body)) == (503, {"status": "not_ready"})
    assert get(gateway.port, "/metrics")[0] == 404
    assert get(gateway.port, "/healthz")[0] == 200

    status, body = get(admin_port, "/readyz")
    detail = json.loads(body)
    assert status == 503 and detail["status"] == "not_ready"
    assert detail["checks"]["keys"]["ok"] is True
    assert detail["checks"]["upstream:/deelnemers/uzovi/5151/graphql"]["ok"] is False
    status, body = get(admin_port, "/metrics")
    # The gateway app's metrics: the public /healthz request above is counted.
    assert status == 200
    healthz = b'nid_gateway_http_requests_total{method="GET",route="/healthz",status="200"} 1.0'
    assert healthz in body
    assert get(admin_port, "/deelnemers/uzovi/5151/graphql")[0] == 404  # not the gateway
    assert gateway.stop() == 0


def test_without_an_admin_listener_metrics_stay_on_the_public_listener(
    serve: StartServe,
) -> None:
    gateway = serve()
    gateway.wait_listening()
    status, body = get(gateway.port, "/metrics")
    assert status == 200 and b"nid_gateway_" in body
    assert json.loads(get(gateway.port, "/readyz")[1]) == {"status": "not_ready"}
    assert gateway.stop() == 0
