"""Optional OpenTelemetry export: one span per PEP decision, sent over OTLP/HTTP.

Needs the ``otel`` extra (``opentelemetry-sdk``, ``opentelemetry-exporter-otlp-proto-http``);
:func:`gateway.observability.setup_observability` imports this module only when
``observability.otel_endpoint`` is configured. The span joins the request's trace (the
``trace_id`` the PEP continued from ``traceparent``/B3 or created), so a tracing backend shows
the gateway's decision inside the caller's trace.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags
from opentelemetry.util.types import AttributeValue

from gateway.observability.events import DecisionEvent

SPAN_NAME = "nid_gateway.decision"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def traces_url(endpoint: str) -> str:
    """``http://collector:4318`` -> ``http://collector:4318/v1/traces`` (full URLs kept)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


class DecisionSpanExporter:
    """Builds a span per :class:`DecisionEvent` and exports it in batches from a thread."""

    def __init__(self, endpoint: str, *, service_name: str = "nid-gateway") -> None:
        """Exports to *endpoint* (OTLP/HTTP base URL or full ``.../v1/traces`` URL)."""
        self.endpoint = traces_url(endpoint)
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint, timeout=5))
        )
        self._tracer = self._provider.get_tracer("gateway.observability")

    def export(self, event: DecisionEvent, fields: Mapping[str, Any]) -> None:
        """Queue the span of one decision (*fields*: the event flattened; the batch
        processor sends it later)."""
        end = time.time_ns()
        start = end - int(event.total_ms * 1_000_000)
        context = None
        if event.trace_id:
            try:
                trace_id = int(event.trace_id, 16)
            except ValueError:
                trace_id = 0
            if trace_id:
                parent = SpanContext(
                    trace_id=trace_id & ((1 << 128) - 1),
                    span_id=random.getrandbits(64) or 1,
                    is_remote=True,
                    trace_flags=_SAMPLED,
                )
                context = trace.set_span_in_context(NonRecordingSpan(parent))
        span = self._tracer.start_span(
            SPAN_NAME,
            context=context,
            kind=SpanKind.SERVER,
            start_time=start,
            attributes=_attributes(event, fields),
        )
        if event.outcome == "error":
            span.set_status(Status(StatusCode.ERROR, event.reason or event.upstream_error))
        span.end(end_time=end)

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        """Send queued spans now (blocking; call from a thread when on the event loop)."""
        return self._provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the exporter thread."""
        self._provider.shutdown()


# Decision-log key -> span attribute, for the keys a span carries when they have a value.
_ATTRIBUTES = {
    "reason": "nid.reason",
    "code": "nid.code",
    "rule": "nid.rule",
    "location": "nid.rule_location",
    "client_id": "nid.client_id",
    "instantie_type": "nid.instantie_type",
    "actor": "nid.actor",
    "operation_type": "graphql.operation.type",
    "operation_name": "graphql.operation.name",
    "root_field": "nid.root_field",
    "upstream_ms": "nid.upstream_ms",
    "policy_ms": "nid.policy_ms",
    "upstream_error": "nid.upstream_error",
    "policy_version": "nid.policy_version",
}


def _attributes(event: DecisionEvent, fields: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "http.route": event.route,
        "http.response.status_code": event.status,
        "nid.decision_id": event.decision_id,
        "nid.outcome": event.outcome,
    }
    for key, name in _ATTRIBUTES.items():
        value = fields[key]
        if value is not None:
            attrs[name] = value
    # The audit values the policies named, under their names (text values; lists stay in
    # the log).
    for key, value in event.audit.items():
        if isinstance(value, str):
            attrs["nid." + key] = value
    return attrs
