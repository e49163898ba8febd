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

    def export(self, event: DecisionEvent) -> None:
        """Queue the span of one decision (the batch processor sends it later)."""
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
            attributes=_attributes(event),
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


def _attributes(event: DecisionEvent) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        "http.route": event.route,
        "http.response.status_code": event.status,
        "nid.decision_id": event.decision_id,
        "nid.outcome": event.outcome,
    }
    optional: dict[str, str | float | None] = {
        "nid.reason": event.reason,
        "nid.code": event.code,
        "nid.rule": event.rule,
        "nid.rule_location": event.location,
        "nid.client_id": event.client_id,
        "nid.instantie_type": event.instantie_type,
        "nid.actor": event.actor,
        "graphql.operation.type": event.operation_type,
        "graphql.operation.name": event.operation_name,
        "nid.root_field": event.root_field,
        "nid.event_type": event.event_type,
        "nid.afzender": event.afzender,
        "nid.ontvanger": event.ontvanger,
        "nid.upstream_ms": event.upstream_ms,
        "nid.policy_ms": event.policy_ms,
        "nid.upstream_error": event.upstream_error,
        "nid.policy_version": event.policy_version,
    }
    for key, value in optional.items():
        if value is not None:
            attrs[key] = value
    return attrs
