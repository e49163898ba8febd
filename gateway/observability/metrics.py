"""Prometheus metrics of the gateway (``nid_gateway_*``).

Two modes:

* **per-app registry** (default): every application gets its own ``CollectorRegistry``, so
  tests can build several apps in one process; ``/metrics`` shows that app's metrics plus
  process/platform collectors.
* **multiprocess** (env ``PROMETHEUS_MULTIPROC_DIR`` set, as ``serve --workers N`` does
  before forking): values live in mmap files in that directory and ``/metrics`` on any worker
  aggregates all workers through prometheus_client's ``MultiProcessCollector``. The hot
  path's tallies reach this worker's file about every second (:data:`FLUSH_SECONDS`) and at
  shutdown.

Label values that come from outside (route, client, rule, issuer) are bounded: values not
known at load time are folded into ``other`` so a caller cannot grow the series count.
"""

from __future__ import annotations

import glob
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    multiprocess,
    values,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
"""Multiprocess mode: how often a worker writes its tallies to its mmap file."""
OTHER = "other"
NONE = "none"

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class BoundedLabel:
    """Maps raw label values onto a bounded set.

    Values listed at construction always pass; up to *limit* further distinct values are
    admitted first come, first served (rule ids, codes); everything after is ``other``.
    """

    __slots__ = ("_known", "_limit", "_lock")

    def __init__(self, known: frozenset[str] | set[str] = frozenset(), limit: int = 50) -> None:
        self._known: set[str] = set(known)
        self._limit = len(self._known) + limit
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        """The label value to use for *value*."""
        if value is None:
            return NONE
        if value in self._known:
            return value
        with self._lock:
            if len(self._known) < self._limit:
                self._known.add(value)
                return value
        return OTHER


class _StartedWorkersCollector(multiprocess.MultiProcessCollector):  # type: ignore[misc]
    """prometheus_client's multiprocess collector, skipping a worker's file that is still
    empty: a worker creates its file before it sizes it, and reading an empty file fails
    (``struct.error``), which made a scrape or a starting worker crash."""

    def collect(self) -> Iterable[Metric]:
        files = [path for path in glob.glob(os.path.join(self._path, "*.db")) if _size(path) >= 8]
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # removed meanwhile (a worker's gauges marked dead)
        return 0


class GatewayMetrics:
    """All gateway metrics, registered on one registry (see module docstring for modes)."""

    def __init__(
        self,
        *,
        routes: frozenset[str] = frozenset(),
        clients: frozenset[str] = frozenset(),
        issuers: frozenset[str] = frozenset(),
    ) -> None:
        self.multiprocess_dir = multiprocess_dir()
        # auto_describe would collect once at registration: in multiprocess mode that reads
        # every worker's file at start-up, while another worker may be creating its own.
        self.registry = CollectorRegistry(auto_describe=self.multiprocess_dir is None)
        # The hot path's children are plain tallies (see _Tally); this collector, registered
        # first, pushes them into the metrics before those are collected. In multiprocess
        # mode the push writes this worker's mmap file: a scrape pushes the answering
        # worker's tallies, and :meth:`flush` (about every second, and at shutdown: see
        # setup_observability) pushes every worker's, so the other workers' counts show
        # within a second.
        self._tallies: dict[Any, _Tally | _Buckets] = {}
        self._push = _PushTallies(self._tallies)
        self.registry.register(self._push)
        if self.multiprocess_dir is not None:
            _enable_multiprocess_values()
            # Metric objects write to the mmap files; they are not registered anywhere:
            # the collector reads every worker's files at scrape time.
            _StartedWorkersCollector(  # type: ignore[no-untyped-call]
                self.registry, path=self.multiprocess_dir
            )
            reg: CollectorRegistry | None = None
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            reg = self.registry

        # Route paths are configuration (plus framework resources for requests_total);
        # unknown ones (404s) are folded by BoundedLabel.
        self.route_label = BoundedLabel(routes, limit=20)
        self.client_label = BoundedLabel(clients, limit=0)
        self.issuer_label = BoundedLabel(issuers, limit=5)
        self.code_label = BoundedLabel(limit=40)
        self.rule_label = BoundedLabel(limit=200)
        self.kind_label = BoundedLabel(limit=10)

        self.decisions = Counter(
            "nid_gateway_decisions",
            "PEP decisions, one per request on a PEP route.",
            ["outcome", "route", "code", "rule"],
            registry=reg,
        )
        self.requests = Counter(
            "nid_gateway_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.request_seconds = Histogram(
            "nid_gateway_http_request_duration_seconds",
            "Time from request start to response prepared, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.decision_seconds = Histogram(
            "nid_gateway_decision_duration_seconds",
            "Total time the PEP spent on a request (incl. upstream), by route and outcome.",
            ["route", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.policy_seconds = Histogram(
            "nid_gateway_policy_duration_seconds",
            "Time spent evaluating the policy for one request.",
            ["route"],
            buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01),
            registry=reg,
        )
        self.upstream_seconds = Histogram(
            "nid_gateway_upstream_duration_seconds",
            "Time waiting for the deelnemer's resource server.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.upstream_errors = Counter(
            "nid_gateway_upstream_errors",
            "Upstream failures by route and kind (refused, reset, timeout, ...).",
            ["route", "kind"],
            registry=reg,
        )
        self.tokens = Counter(
            "nid_gateway_tokens",
            "Token requests at the authorization server by client and outcome "
            "(issued or the OAuth2 error code).",
            ["client", "outcome"],
            registry=reg,
        )
        self.token_blocks = Counter(
            "nid_gateway_token_auth_blocked",
            "Token requests refused with 429 after repeated failed client authentications, "
            "by the limit that tripped (client or address).",
            ["limit"],
            registry=reg,
        )
        self.token_seconds = Histogram(
            "nid_gateway_token_duration_seconds",
            "Time to answer a token request.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.parse_cache = Counter(
            "nid_gateway_parse_cache",
            "GraphQL parsed-document cache lookups by result (hit, miss).",
            ["result"],
            registry=reg,
        )
        self.jwks_refreshes = Counter(
            "nid_gateway_jwks_refreshes",
            "JWKS fetches of trusted issuers by outcome.",
            ["issuer", "outcome"],
            registry=reg,
        )
        self.policy_reloads = Counter(
            "nid_gateway_policy_reloads",
            "Policy reloads by outcome (ok, refused).",
            ["outcome"],
            registry=reg,
        )
        self.adresboek_reloads = Counter(
            "nid_gateway_adresboek_reloads",
            "Adresboek reloads by outcome (applied, refused: the last good one kept).",
            ["outcome"],
            registry=reg,
        )
        for outcome in ("applied", "refused"):
            self.adresboek_reloads.labels(outcome)  # both series from the start, at 0
        self.policy_info = Gauge(
            "nid_gateway_policy_loaded",
            "1 for the policy version (hash) currently enforced, 0 for earlier ones.",
            ["version"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.shadow_mismatches = Counter(
            "nid_gateway_shadow_mismatches",
            "Requests where the shadow policy decided differently from the active one.",
            ["route", "active", "shadow"],
            registry=reg,
        )
        # Reliable delivery (docs/delivery.md). The outbox gauges describe the shared store,
        # the same for every worker process: multiprocess mode shows the largest report.
        self.outbox_depth = Gauge(
            "nid_gateway_outbox_deliveries",
            "Deliveries in the outbox per state (pending, delivered, dead).",
            ["state"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.outbox_oldest_pending = Gauge(
            "nid_gateway_outbox_oldest_pending_seconds",
            "Age of the oldest pending delivery (0: none pending).",
            registry=reg,
            multiprocess_mode="max",
        )
        self.delivery_attempts = Counter(
            "nid_gateway_delivery_attempts",
            "Delivery attempts by outcome (delivered, retry, dead).",
            ["outcome"],
            registry=reg,
        )
        self.deliveries_dead = Counter(
            "nid_gateway_deliveries_dead",
            "Deliveries put on the uitvallijst, by reason.",
            ["reason"],
            registry=reg,
        )
        self._policy_version: str | None = None
        self._policy_lock = threading.Lock()
        # Label children cached by raw key: prometheus' labels() takes a lock and builds
        # a tuple per call; the hot path pays one dict lookup instead.
        self._children: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._series: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}

    def parse_cache_child(self, result: str) -> Any:
        """The parse-cache counter child for *result* (hit or miss)."""
        return self._fast(self.parse_cache.labels(result))

    def _fast(self, child: Any) -> Any:
        """A plain tally for *child*, pushed into it at scrape time and by :meth:`flush`."""
        tally = self._tallies.get(child)  # one per child: as bounded as the label values
        if tally is None:
            tally = _Buckets(child) if hasattr(child, "_upper_bounds") else _Tally(child)
            self._tallies[child] = tally
        return tally

    def decision_children(
        self, outcome: str, route: str, code: str | None, rule: str | None
    ) -> tuple[Any, Any]:
        """(counter child, total-latency child) for one decision's labels, cached."""
        key = ("decision", outcome, route, code, rule)
        children = self._children.get(key)  # the hit first: no closure built per request
        if children is not None:
            return children

        def build() -> tuple[Any, Any]:
            r = self.route_label(route)
            return (
                self._fast(
                    self.decisions.labels(outcome, r, self.code_label(code), self.rule_label(rule))
                ),
                self._fast(self.decision_seconds.labels(r, outcome)),
            )

        return _cached(self._children, key, build)

    def decision_series(
        self, outcome: str, route: str, code: str | None, rule: str | None, timed: bool
    ) -> tuple[Any, Any, Any, Any]:
        """(counter, total-latency, policy-latency, upstream-latency child) for one
        decision's labels: :meth:`decision_children` and, when *timed* (the decision has a
        policy or upstream time), :meth:`route_children` (else None, None: no series is
        created for a route that timed nothing), in one cached lookup (the decision's
        per-request path)."""
        key = (outcome, route, code, rule, timed)
        series = self._series.get(key)
        if series is None:
            series = (
                *self.decision_children(outcome, route, code, rule),
                *(self.route_children(route) if timed else (None, None)),
            )
            if len(self._series) < MAX_CACHED_CHILDREN:
                self._series[key] = series
        return series

    def record_decision(
        self,
        outcome: str,
        route: str,
        code: str | None,
        rule: str | None,
        total_ms: float,
        policy_ms: float | None,
        upstream_ms: float | None,
    ) -> None:
        """Count one decision and observe its times (milliseconds; a time that is None is
        not observed): the decision's one call per request, the counter and histograms of
        :meth:`decision_series` updated inline (what their ``inc`` and ``observe`` do)."""
        timed = policy_ms is not None or upstream_ms is not None
        series = self._series.get((outcome, route, code, rule, timed))
        if series is None:
            series = self.decision_series(outcome, route, code, rule, timed)
        counter, total, policy, upstream = series
        counter.value += 1.0
        seconds = total_ms / 1000.0
        total.sum += seconds
        total.counts[bisect_left(total.bounds, seconds)] += 1
        if policy_ms is not None:
            seconds = policy_ms / 1000.0
            policy.sum += seconds
            policy.counts[bisect_left(policy.bounds, seconds)] += 1
        if upstream_ms is not None:
            seconds = upstream_ms / 1000.0
            upstream.sum += seconds
            upstream.counts[bisect_left(upstream.bounds, seconds)] += 1

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its seconds (the HTTP layer's one call
        per request; *method* already folded to a known one or ``other``)."""
        children = self._children.get(("request", route, method, status))
        if children is None:
            children = self.request_children(route, method, status)
        counter, histogram = children
        counter.value += 1.0
        histogram.sum += seconds
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1

    def route_children(self, route: str) -> tuple[Any, Any]:
        """(policy-latency child, upstream-latency child) for *route*, cached."""
        key = ("route", route)
        children = self._children.get(key)
        if children is not None:
            return children

        def build() -> tuple[Any, Any]:
            r = self.route_label(route)
            return (
                self._fast(self.policy_seconds.labels(r)),
                self._fast(self.upstream_seconds.labels(r)),
            )

        return _cached(self._children, key, build)

    def request_children(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """(request counter child, request-latency child) for one response, cached."""
        key = ("request", route, method, status)
        children = self._children.get(key)
        if children is not None:
            return children

        def build() -> tuple[Any, Any]:
            r = self.route_label(route)
            return (
                self._fast(self.requests.labels(r, method, str(status))),
                self._fast(self.request_seconds.labels(r)),
            )

        return _cached(self._children, key, build)

    def set_policy_version(self, version: str) -> None:
        """Mark *version* as the enforced policy (the previous one drops to 0)."""
        with self._policy_lock:
            if self._policy_version is not None and self._policy_version != version:
                self.policy_info.labels(self._policy_version).set(0)
            self.policy_info.labels(version).set(1)
            self._policy_version = version

    def flush(self) -> None:
        """Push the hot path's tallies into their metrics now (in multiprocess mode: into
        this worker's mmap file, where the other workers' scrapes read them)."""
        self._push.collect()

    def exposition(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def mark_process_dead(self) -> None:
        """Multiprocess mode: write the last tallies, drop this worker's live gauges (call
        at shutdown)."""
        if self.multiprocess_dir is not None:
            self.flush()
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), self.multiprocess_dir
            )


class _Tally:
    """A counter child of the hot path as a plain number, pushed into the prometheus child
    at scrape time (issue 17: prometheus' ``inc`` takes a lock per call).

    Only the event loop adds; a scrape (in an executor thread) pushes the difference since
    its last push, so an increment racing a scrape is never lost: it shows at the next one.
    """

    __slots__ = ("_child", "_pushed", "value")

    def __init__(self, child: Any) -> None:
        self._child = child
        self.value = 0.0
        self._pushed = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Count *amount* (the prometheus child's signature)."""
        self.value += amount

    def push(self) -> None:
        """Add what was counted since the last push to the prometheus child."""
        value = self.value
        if value != self._pushed:
            self._child.inc(value - self._pushed)
            self._pushed = value


class _Buckets:
    """A histogram child of the hot path as a bucket array and a sum (one ``bisect`` per
    observation instead of prometheus' locked loop), pushed like :class:`_Tally`.

    The push adds to the child's own bucket and sum values (``_buckets``, ``_sum``:
    prometheus_client's, pinned in requirements/constraints.txt; tests compare /metrics).
    """

    __slots__ = ("_child", "_pushed", "_pushed_sum", "bounds", "counts", "sum")

    def __init__(self, child: Any) -> None:
        self._child = child
        self.bounds: list[float] = list(child._upper_bounds)  # ends with +Inf
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self._pushed = [0] * len(self.bounds)
        self._pushed_sum = 0.0

    def observe(self, amount: float) -> None:
        """Observe *amount* (counted in the first bucket whose bound is >= it).

        The per-request recorders (:meth:`GatewayMetrics.record_decision`,
        :meth:`GatewayMetrics.record_request`) do the same inline on ``bounds``, ``counts``
        and ``sum``: a method call per observation is most of its cost."""
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1

    def push(self) -> None:
        """Add what was observed since the last push to the prometheus child."""
        for i, count in enumerate(self.counts):
            if count != self._pushed[i]:
                self._child._buckets[i].inc(count - self._pushed[i])
                self._pushed[i] = count
        total = self.sum
        if total != self._pushed_sum:
            self._child._sum.inc(total - self._pushed_sum)
            self._pushed_sum = total


class _PushTallies:
    """A collector that yields nothing: registered first, it pushes the hot path's tallies
    into their metrics before the registry collects those (one push at a time)."""

    def __init__(self, tallies: dict[Any, _Tally | _Buckets]) -> None:
        self._tallies = tallies
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        """No metrics of its own (the registry asks at registration)."""
        return []

    def collect(self) -> list[Metric]:
        """Push every tally, then yield nothing."""
        with self._lock:
            for tally in list(self._tallies.values()):
                tally.push()
        return []


MAX_CACHED_CHILDREN = 20_000
"""Bound on cached label-child pairs (raw keys can come from outside: never unbounded)."""


def _cached(
    cache: dict[tuple[Any, ...], tuple[Any, Any]],
    key: tuple[Any, ...],
    build: Callable[[], tuple[Any, Any]],
) -> tuple[Any, Any]:
    """Label children by raw key: prometheus' labels() takes a lock and builds a tuple per
    call; the hot path pays one dict lookup instead (building only on a miss)."""
    children = cache.get(key)
    if children is None:
        children = build()
        if len(cache) < MAX_CACHED_CHILDREN:
            cache[key] = children
    return children


def _enable_multiprocess_values() -> None:
    """Switch prometheus_client to mmap-file values if it was imported before the env was set.

    prometheus_client picks its value class when first imported; ``serve --workers`` may set
    ``PROMETHEUS_MULTIPROC_DIR`` after that import (but before creating any metric).
    """
    if not isinstance(values.ValueClass, type) or values.ValueClass is not values.MutexValue:
        return
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
