"""The real :class:`~gateway.observability.events.Observer`: events to log, audit, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway.observability.audit_trail import AuditWriter
from gateway.observability.events import DECISION_LOG_KEYS, DecisionEvent, TokenEvent
from gateway.observability.logs import (
    as_record,
    could_hold_secret,
    emit_json_body,
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

_dumps = orjson.dumps
_FRAGMENTS_MAX = 1024
"""Entries per fragment cache; a full cache starts over (the values come from a few routes,
policies, operations and cached tokens; a caller-chosen operation name must not grow it)."""
_NO_TOKEN = b',"client_id":null,"sub":null,"instantie_type":null,"identifier_type":null'
_NO_TOKEN += b',"identifier":null,"actor":null'
_NO_OPERATION = b',"operation_type":null,"operation_name":null,"root_field":null'
_NO_UPSTREAM_ERROR = b',"upstream_error":null}'


class DecisionLine:
    """The decision log's JSON object (``orjson.dumps(event.fields())``, byte for byte) from
    fragments rendered once per value and remembered.

    Per request only the per-request values are rendered (the ids, outcome, timings, audit
    values); the token's, the operation's and the deciding rule's fields, and the route's
    outcome/status/reason/code, are the same bytes for every request with the same values
    and come from small caches keyed by those values (never by object identity, so no
    fragment can outlive or cross the values it was rendered from). Why beside the generic
    render: bench/bench_logging.py --instructions (fields() alone is a 30-key dict display).
    The caller still runs the redaction byte check over the whole object.
    """

    __slots__ = ("_audit_keys", "_heads", "_operations", "_tokens")

    def __init__(self) -> None:
        self._heads: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        self._tokens: dict[tuple[Any, ...], bytes] = {}
        self._operations: dict[tuple[Any, ...], bytes] = {}
        self._audit_keys: dict[tuple[str, ...], bool] = {}

    def render(self, event: DecisionEvent) -> bytes | None:
        """The event's decision-log object as compact JSON, or None when the generic path
        must render it (an audit name named like a secret or like a log key, a value orjson
        cannot render, a status that is not an ``int``)."""
        audit = event.audit
        if type(audit) is not dict:
            return None
        if audit:
            names = tuple(audit)
            ok = self._audit_keys.get(names)
            if ok is None:
                ok = _audit_names_ok(names)
                _remember(self._audit_keys, names, ok)
            if not ok:
                return None
        status = event.status
        if type(status) is not int:
            return None
        try:
            # The route's outcome/status/reason/code and the deciding rule's fields: one key,
            # one lookup (a missing decision renders its fields as null, the same bytes).
            d = event.decision
            key: tuple[Any, ...] = (
                (event.outcome, status, event.route, event.reason, event.code, None, None, None)
                if d is None
                else (
                    event.outcome,
                    status,
                    event.route,
                    event.reason,
                    event.code,
                    d.rule,
                    d.location,
                    d.policy_version,
                )
            )
            verdict = self._heads.get(key)
            if verdict is None:
                head = _dumps(
                    {
                        "outcome": key[0],
                        "status": status,
                        "route": key[2],
                        "reason": key[3],
                        "code": key[4],
                        "rule": key[5],
                        "location": key[6],
                    }
                )
                verdict = (b"," + head[1:-1], b"," + _dumps({"policy_version": key[7]})[1:-1])
                _remember(self._heads, key, verdict)
            t = event.token
            if t is None:
                caller = _NO_TOKEN
            else:
                key = (
                    t.client_id,
                    t.subject,
                    t.instantie_type,
                    t.identifier_type,
                    t.identifier,
                    t.actor,
                )
                caller_found = self._tokens.get(key)
                if caller_found is None:
                    caller_found = (
                        b","
                        + _dumps(
                            {
                                "client_id": key[0],
                                "sub": key[1],
                                "instantie_type": key[2],
                                "identifier_type": key[3],
                                "identifier": key[4],
                                "actor": key[5],
                            }
                        )[1:-1]
                    )
                    _remember(self._tokens, key, caller_found)
                caller = caller_found
            o = event.operation
            if o is None:
                operation = _NO_OPERATION
            else:
                key = (o.operation_type, o.operation_name, o.root_field)
                op_found = self._operations.get(key)
                if op_found is None:
                    op_found = (
                        b","
                        + _dumps(
                            {
                                "operation_type": key[0],
                                "operation_name": key[1],
                                "root_field": key[2],
                            }
                        )[1:-1]
                    )
                    _remember(self._operations, key, op_found)
                operation = op_found
            # The audit values and the timings and ids are adjacent: one render for both.
            rest = _dumps(
                {
                    **audit,
                    "upstream_ms": event.upstream_ms,
                    "policy_ms": event.policy_ms,
                    "total_ms": event.total_ms,
                    "trace_id": event.trace_id,
                    "request_id": event.request_id,
                }
            )
            error = event.upstream_error
            return b"".join(
                (
                    b'{"decision_id":',
                    _dumps(event.decision_id),
                    verdict[0],
                    caller,
                    operation,
                    b"," + rest[1:-1],
                    verdict[1],
                    _NO_UPSTREAM_ERROR
                    if error is None
                    else b',"upstream_error":' + _dumps(error) + b"}",
                )
            )
        except TypeError:  # a value orjson cannot render: the generic path str()s it
            return None


def _audit_names_ok(names: tuple[str, ...]) -> bool:
    """Audit names the fast line may splice in: strings, none named like a secret (those are
    redacted by the generic path) or like one of the log's own keys (a dict display would
    merge those)."""
    return (
        all(type(n) is str for n in names)
        and not sensitive_keys(names)
        and DECISION_LOG_KEYS.isdisjoint(names)
    )


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _FRAGMENTS_MAX:
        cache.clear()
    cache[key] = value


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
        self._line = DecisionLine()

    # -- PEP ---------------------------------------------------------------------------

    def decision(self, event: DecisionEvent) -> None:
        """Record one PEP decision (log line, audit record, metrics, span)."""
        d, policy_ms, upstream_ms = event.decision, event.policy_ms, event.upstream_ms
        counter, total, policy, upstream = self.metrics.decision_series(
            event.outcome,
            event.route,
            event.code,
            None if d is None else d.rule,
            policy_ms is not None or upstream_ms is not None,
        )
        counter.inc()
        total.observe(event.total_ms / 1000.0)
        if policy_ms is not None:
            policy.observe(policy_ms / 1000.0)
        if upstream_ms is not None:
            upstream.observe(upstream_ms / 1000.0)
        log, audit, spans = self.decision_log, self.audit, self.spans
        if not (log or audit is not None or spans is not None):
            return
        # Rendered once, for the log line and the audit record alike (body None: needs
        # redaction). Without spans (which take the flattened fields) the object comes from
        # remembered fragments; the same byte check proves it clean.
        fields = None
        body = self._line.render(event) if spans is None else None
        if body is None or could_hold_secret(body):
            fields = event.fields()
            body = (
                render_flat(
                    fields, keys_safe=_LOG_KEYS_SAFE and not sensitive_keys(tuple(event.audit))
                )
                if log or audit is not None
                else None
            )
        if log:
            level = "warning" if event.outcome == "error" else "info"
            # A body proven clean is written as is, unless the lines are console ones (then
            # structlog's chain takes the fields, as it does for a body that needs redaction).
            if body is None or not emit_json_body("gateway.decision", level, "decision", body):
                if fields is None:
                    fields = event.fields()
                emit_json_event("gateway.decision", level, "decision", fields, body=body)
        if audit is not None:
            self._audit(audit, "decision", body, fields)
        if spans is not None:
            spans.export(event, event.fields() if fields is None else fields)

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
        audit: AuditWriter,
        kind: str,
        body: bytes | None,
        event: Mapping[str, Any] | TokenEvent | None,
    ) -> None:
        """One audit record: ``timestamp``, ``type``, then every field of *event* (None only
        with a *body*).

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
