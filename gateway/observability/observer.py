"""The real :class:`~gateway.observability.events.Observer`: events to log, audit, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.observability.audit_trail import AuditWriter
from gateway.observability.events import DECISION_LOG_KEYS, DecisionEvent, TokenEvent
from gateway.observability.logs import (
    as_record,
    emit_json_event,
    get_logger,
    iso_timestamp,
    render_flat,
)
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.redact import redact_event, sensitive_keys

if TYPE_CHECKING:
    from gateway.observability.otel import DecisionSpanExporter


_LOG_KEYS_SAFE = not sensitive_keys(tuple(DECISION_LOG_KEYS))
"""The decision log's own keys: none is named like a secret (so only the audit names, which
the policies choose, are checked per line: 5 keys instead of 30)."""


class GatewayObserver:
    """Turns pipeline events into the decision log, the audit trail, metrics and spans.

    Called on the event loop in the request path: every method is synchronous and cheap
    (a dict build, a log line, counter increments, one ``write(2)`` when auditing).
    """

    def __init__(
        self,
        metrics: GatewayMetrics,
        *,
        decision_log: bool = True,
        audit: AuditWriter | None = None,
        spans: DecisionSpanExporter | None = None,
    ) -> None:
        self.metrics = metrics
        self.decision_log = decision_log
        self.audit = audit
        self.spans = spans
        self._cache_hits = metrics.parse_cache_child("hit")
        self._cache_misses = metrics.parse_cache_child("miss")
        self._log = get_logger("gateway.observability")

    # -- PEP ---------------------------------------------------------------------------

    def decision(self, event: DecisionEvent) -> None:
        """Record one PEP decision (log line, audit record, metrics, span)."""
        m = self.metrics
        counter, total = m.decision_children(event.outcome, event.route, event.code, event.rule)
        counter.inc()
        total.observe(event.total_ms / 1000.0)
        if event.policy_ms is not None or event.upstream_ms is not None:
            policy, upstream = m.route_children(event.route)
            if event.policy_ms is not None:
                policy.observe(event.policy_ms / 1000.0)
            if event.upstream_ms is not None:
                upstream.observe(event.upstream_ms / 1000.0)
        if not (self.decision_log or self.audit is not None or self.spans is not None):
            return
        # Flattened once, rendered once, for the log line and the audit record alike (body
        # None: needs redaction), and the span.
        fields = event.fields()
        body = (
            render_flat(fields, keys_safe=_LOG_KEYS_SAFE and not sensitive_keys(tuple(event.audit)))
            if self.decision_log or self.audit is not None
            else None
        )
        if self.decision_log:
            level = "warning" if event.outcome == "error" else "info"
            emit_json_event("gateway.decision", level, "decision", fields, body=body)
        if self.audit is not None:
            self._audit(self.audit, "decision", body, fields)
        if self.spans is not None:
            self.spans.export(event, fields)

    def shadow_mismatch(self, route: str, active: str, shadow: str, rule: str | None) -> None:
        """The shadow policy decided differently from the enforced one."""
        m = self.metrics
        m.shadow_mismatches.labels(m.route_label(route), active, shadow).inc()
        self._log.warning(
            "shadow_mismatch", route=route, active=active, shadow=shadow, shadow_rule=rule
        )

    def parse_cache(self, hit: bool) -> None:
        """One parsed-document cache lookup."""
        (self._cache_hits if hit else self._cache_misses).inc()

    def upstream_error(self, route: str, kind: str) -> None:
        """One failed attempt to reach a route's upstream (``refused``, ``reset``, ``timeout``)."""
        m = self.metrics
        m.upstream_errors.labels(m.route_label(route), m.kind_label(kind)).inc()
        self._log.warning("upstream_error", route=route, kind=kind)

    # -- keys and policies ---------------------------------------------------------------

    def jwks_refresh(self, issuer: str, outcome: str, cause: str | None = None) -> None:
        """One JWKS fetch of a trusted issuer; *cause* says why one failed."""
        m = self.metrics
        m.jwks_refreshes.labels(m.issuer_label(issuer), m.kind_label(outcome)).inc()
        if outcome == "ok":
            self._log.info("jwks_refresh", issuer=issuer, outcome=outcome)
        else:
            self._log.warning("jwks_refresh", issuer=issuer, outcome=outcome, cause=cause)

    def policy_reload(self, outcome: str, version: str | None) -> None:
        """A policy (re)load: ``ok`` (now enforcing *version*) or ``refused`` (kept the old)."""
        m = self.metrics
        m.policy_reloads.labels("ok" if outcome == "ok" else "refused").inc()
        if outcome == "ok" and version is not None:
            m.set_policy_version(version)
            self._log.info("policy_reload", outcome=outcome, policy_version=version)
        else:
            self._log.warning("policy_reload", outcome=outcome, policy_version=version)

    def adresboek_reload(self, outcome: str) -> None:
        """An adresboek reload: ``applied`` or ``refused`` (logged by the adresboek itself)."""
        self.metrics.adresboek_reloads.labels(outcome).inc()

    # -- authorization server --------------------------------------------------------------

    def token(self, event: TokenEvent) -> None:
        """One token request (issued or refused); never carries the token or a secret."""
        m = self.metrics
        outcome = m.kind_label(event.outcome)
        m.tokens.labels(m.client_label(event.client_id), outcome).inc()
        m.token_seconds.labels(outcome).observe(event.duration_ms / 1000.0)
        if event.blocked_by is not None:
            m.token_blocks.labels(event.blocked_by).inc()
        body = render_flat(event) if self.decision_log or self.audit is not None else None
        if self.decision_log:
            level = "info" if event.outcome == "issued" else "warning"
            emit_json_event("gateway.token", level, "token", event, body=body)
        if self.audit is not None:
            self._audit(self.audit, "token", body, event)

    @staticmethod
    def _audit(
        audit: AuditWriter, kind: str, body: bytes | None, event: Mapping[str, Any] | TokenEvent
    ) -> None:
        """One audit record: ``timestamp``, ``type``, then every field of *event*.

        The audit trail gets the same redaction as the logs (a reason text can echo
        caller-chosen input, which must not smuggle a token in): *body* is the event already
        rendered and proven clean, else the record takes the full redaction pass.
        """
        stamp = iso_timestamp()
        if body is not None:
            rest = body[1:]  # '"decision_id":...}' (or '}' for an event with no fields)
            comma = "," if rest != b"}" else ""
            audit.write_line(
                f'{{"timestamp":"{stamp}","type":"{kind}"{comma}'.encode() + rest + b"\n"
            )
            return
        record = {"timestamp": stamp, "type": kind, **as_record(event)}
        audit.write(redact_event(None, "audit", record))

    def close(self) -> None:
        """Flush and close the audit file and the span exporter."""
        if self.audit is not None:
            self.audit.close()
        if self.spans is not None:
            self.spans.shutdown()
