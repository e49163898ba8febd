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
    direct_json,
    emit_bytes,
    emit_json_body,
    emit_json_event,
    get_logger,
    iso_timestamp,
    line_stamp,
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
"""Entries in the fixed-fragment cache; a full cache starts over (the values come from a few
routes, policies, operations and cached tokens; a caller-chosen operation name must not
grow it)."""

_HEAD_KEYS = (
    "outcome",
    "status",
    "route",
    "reason",
    "code",
    "rule",
    "location",
    "client_id",
    "sub",
    "instantie_type",
    "identifier_type",
    "identifier",
    "actor",
    "operation_type",
    "operation_name",
    "root_field",
)
"""The fixed values between ``decision_id`` and the audit values, in the log's order."""
_TAIL_KEYS = ("policy_version", "upstream_error")
"""The fixed values after the request's ids."""
_LINE_HEAD = b'{"logger":"gateway.decision",'
_LINE_END = b'Z"}\n'

Fixed = tuple[bytes, bytes, bytes, str]
"""A fixed-values entry: (``,"outcome":...,"root_field":...``, ``,"policy_version":...,
"upstream_error":...``, the same followed by the line's ``,"event":...,"timestamp":"``,
the line's level)."""
Pieces = tuple[bytes, int, Fixed]
"""A decision's rendered parts: its per-request object ``{"decision_id":...,<audit>,
...,"request_id":...}``, the end of the ``decision_id`` value in it, its fixed entry."""


_UNSEEN: Fixed = (b"", b"", b"", "")
"""The cache's answer for fixed values not rendered yet."""


class _Absent:
    """A fact not attached yet (no token, operation or decision): every field reads None."""

    __slots__ = ()
    client_id = subject = instantie_type = identifier_type = identifier = actor = None
    operation_type = operation_name = root_field = None
    rule = location = policy_version = None


_ABSENT = _Absent()


class DecisionLine:
    """The decision log's JSON line (the generic render, byte for byte) from one fragment of
    its fixed values, remembered, and the per-request values rendered.

    The values that repeat request after request (outcome, status, route, reason, code, the
    deciding rule, the token's and the operation's fields, the policy version, the audit
    names) are one flat key; its entry holds their fragments, rendered and proven clean once.
    Per request only the per-request object (the ids, the audit values, the timings) is
    rendered and byte-checked for redaction (:func:`could_hold_secret`), and the line is one
    ``b"".join``. The key is made of the values themselves (never of object identity), so a
    fragment is only ever used for exactly the values it was rendered from. Why beside the
    generic render: bench/bench_logging.py --instructions (``fields()`` alone is a 30-key
    dict display).
    """

    __slots__ = ("_fixed",)

    def __init__(self) -> None:
        self._fixed: dict[tuple[Any, ...], Fixed | None] = {}

    def pieces(self, event: DecisionEvent) -> Pieces | None:
        """The event's rendered parts, or None when the generic path must render it (an
        audit name named like a secret or like a log key, a value orjson cannot render or
        that needs redaction, a status that is not an ``int``)."""
        audit, status, decision_id = event.audit, event.status, event.decision_id
        if type(audit) is not dict or type(status) is not int or type(decision_id) is not str:
            return None
        t = _ABSENT if event.token is None else event.token
        o = _ABSENT if event.operation is None else event.operation
        d = _ABSENT if event.decision is None else event.decision
        key = (
            event.outcome,
            status,
            event.route,
            event.reason,
            event.code,
            d.rule,
            d.location,
            t.client_id,
            t.subject,
            t.instantie_type,
            t.identifier_type,
            t.identifier,
            t.actor,
            o.operation_type,
            o.operation_name,
            o.root_field,
            d.policy_version,
            event.upstream_error,
            tuple(audit),
        )
        try:
            fixed = self._fixed.get(key, _UNSEEN)
        except TypeError:  # an unhashable value: not one to remember
            return None
        if fixed is _UNSEEN:
            fixed = _render_fixed(key)
            if len(self._fixed) >= _FRAGMENTS_MAX:
                self._fixed.clear()
            self._fixed[key] = fixed
        if fixed is None:
            return None
        try:
            body = _dumps(
                {
                    "decision_id": decision_id,
                    **audit,
                    "upstream_ms": event.upstream_ms,
                    "policy_ms": event.policy_ms,
                    "total_ms": event.total_ms,
                    "trace_id": event.trace_id,
                    "request_id": event.request_id,
                }
            )
        except TypeError:  # a value orjson cannot render: the generic path str()s it
            return None
        if could_hold_secret(body):
            return None
        # No backslash in a checked body, so no escaped quote: the first quote after the
        # opening one of ``{"decision_id":"`` closes the value.
        return body, body.index(b'"', 16) + 1, fixed

    def render(self, event: DecisionEvent) -> bytes | None:
        """The event's decision-log object as compact JSON (the generic render, byte for
        byte), or None (see :meth:`pieces`)."""
        pieces = self.pieces(event)
        return None if pieces is None else decision_object(pieces)


def decision_object(pieces: Pieces) -> bytes:
    """The decision-log object of *pieces* (``orjson.dumps(event.fields())``)."""
    body, end, fixed = pieces
    return b"".join((body[:end], fixed[0], body[end:-1], fixed[1], b"}"))


def decision_line(pieces: Pieces) -> bytes:
    """The whole decision-log line of *pieces*, with its timestamp of now and a newline."""
    body, end, fixed = pieces
    return b"".join(
        (_LINE_HEAD, body[1:end], fixed[0], body[end:-1], fixed[2], line_stamp(), _LINE_END)
    )


def _render_fixed(key: tuple[Any, ...]) -> Fixed | None:
    """The entry of a fixed-values *key* (see :class:`DecisionLine`), None when its values
    must take the generic path: an audit name it cannot splice in, a value that is neither
    a string nor None (values that compare equal but render differently, ``1`` and
    ``True``, must not share an entry; the status is an ``int``, checked per request), a
    value that could hold a secret."""
    count = len(_HEAD_KEYS)
    values = (*key[:1], *key[2:-1])
    if not _audit_names_ok(key[-1]) or not all(v is None or isinstance(v, str) for v in values):
        return None
    head = _dumps(dict(zip(_HEAD_KEYS, key, strict=False)))
    tail = _dumps(dict(zip(_TAIL_KEYS, key[count:-1], strict=True)))
    if could_hold_secret(head) or could_hold_secret(tail):
        return None
    level = "warning" if key[0] == "error" else "info"
    frame = b',"event":"decision","level":"' + level.encode() + b'","timestamp":"'
    return b"," + head[1:-1], b"," + tail[1:-1], b"," + tail[1:-1] + frame, level


def _audit_names_ok(names: tuple[str, ...]) -> bool:
    """Audit names the fast line may splice in: strings, none named like a secret (those are
    redacted by the generic path) or like one of the log's own keys (a dict display would
    merge those)."""
    return (
        all(type(n) is str for n in names)
        and not sensitive_keys(names)
        and DECISION_LOG_KEYS.isdisjoint(names)
    )


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
        d = event.decision
        self.metrics.record_decision(
            event.outcome,
            event.route,
            event.code,
            None if d is None else d.rule,
            event.total_ms,
            event.policy_ms,
            event.upstream_ms,
        )
        log, audit, spans = self.decision_log, self.audit, self.spans
        if not (log or audit is not None or spans is not None):
            return
        # Without spans (which take the flattened fields) the line comes from remembered
        # fragments and the per-request values rendered (see DecisionLine); the object is
        # rendered once for the log line and the audit record alike (body None: it needs
        # redaction).
        fields = None
        body = None
        pieces = self._line.pieces(event) if spans is None else None
        if pieces is not None:
            if log and direct_json(pieces[2][3]):  # the typical request: one join, one queue
                emit_bytes(decision_line(pieces))
                log = False
            if log or audit is not None:
                body = decision_object(pieces)
        elif log or audit is not None:
            fields = event.fields()
            body = render_flat(
                fields, keys_safe=_LOG_KEYS_SAFE and not sensitive_keys(tuple(event.audit))
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
