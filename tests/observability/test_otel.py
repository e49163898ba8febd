"""OpenTelemetry export of decisions to a real (in-process) OTLP/HTTP receiver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pytest_aiohttp import AiohttpServer

from gateway.appkeys import OBSERVER
from gateway.config.model import GatewayConfig
from gateway.observability.observer import GatewayObserver
from gateway.observability.otel import SPAN_NAME
from tests.fixtures.observability import REPO, ROUTE, decision, json_lines, observability_app


async def test_decision_span_reaches_the_otlp_receiver_in_the_request_trace(
    aiohttp_server: AiohttpServer, write_config: Callable[..., GatewayConfig]
) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", traces)
    collector = await aiohttp_server(receiver)

    app = observability_app(write_config(otel_endpoint=str(collector.make_url("/"))))
    observer = app[OBSERVER]
    assert isinstance(observer, GatewayObserver) and observer.spans is not None
    observer.decision(decision(outcome="deny", status=400, rule="afzender_id", reason="r"))
    # The exporter posts from its own thread; keep the loop free to answer it.
    flushed = await asyncio.get_running_loop().run_in_executor(None, observer.spans.force_flush)
    assert flushed
    observer.close()

    spans = [
        span
        for message in received
        for rs in message.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    (span,) = spans
    assert span.name == SPAN_NAME
    assert span.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["nid.outcome"].string_value == "deny"
    assert attributes["nid.rule"].string_value == "afzender_id"
    assert attributes["http.route"].string_value == ROUTE
    assert attributes["http.response.status_code"].int_value == 400
    service = {
        a.key: a.value.string_value for a in received[0].resource_spans[0].resource.attributes
    }
    assert service["service.name"] == "nid-gateway"


def test_missing_opentelemetry_gives_a_clear_startup_warning(
    write_config: Callable[..., GatewayConfig],
) -> None:
    config = write_config(otel_endpoint="http://127.0.0.1:4318")
    # A fresh interpreter in which the opentelemetry package cannot be imported.
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from pathlib import Path\n"
        "from gateway.config.loader import load_config\n"
        "from tests.fixtures.observability import observability_app\n"
        f"app = observability_app(load_config(Path({str(config.source)!r})))\n"
        "from gateway.appkeys import OBSERVER\n"
        "assert app[OBSERVER].spans is None\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (warning,) = [x for x in json_lines(result.stdout) if x["event"] == "otel_unavailable"]
    assert warning["level"] == "warning"
    assert "otel" in warning["detail"]
