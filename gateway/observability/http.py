"""HTTP side of observability: ``/metrics``, ``/healthz``, ``/readyz``, the admin listener's
app, request metrics and the access log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.config.appkey import CONFIG
from gateway.observability.health import READINESS_CHECKS, ReadinessCheck
from gateway.observability.logs import get_logger
from gateway.observability.metrics import OTHER, GatewayMetrics
from gateway.observability.redact import redact_text

READINESS_TIMEOUT = 2.0
"""Seconds each readiness check may take before it counts as failed."""

READINESS_TIMEOUT_KEY: web.AppKey[float] = web.AppKey("readiness_timeout", float)
"""Optional per-app override of :data:`READINESS_TIMEOUT` (seconds)."""

METRICS_KEY: web.AppKey[GatewayMetrics] = web.AppKey("observability_metrics", GatewayMetrics)


@dataclass(frozen=True, slots=True)
class Malformed:
    """Why the server answered a request itself with 400."""

    error: str
    """The parser's error class name (``BadHttpMethod``, ``LineTooLong``, ...)."""
    head_parsed: bool
    """True when the head was fine and the body was not: method and path are real. Else the
    request is aiohttp's placeholder (it says ``GET /`` and has no route)."""


MALFORMED: web.RequestKey[Malformed] = web.RequestKey("malformed_request", Malformed)

GATEWAY_APP: web.AppKey[web.Application] = web.AppKey("gateway_app", web.Application)
"""On the admin app: the gateway app whose readiness and metrics it reports."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_template(request: web.BaseRequest) -> str:
    """The route's path template (``/deelnemers/uzovi/5151/graphql``), never the raw path."""
    try:
        match_info = getattr(request, "match_info", None)
    except AssertionError:
        # Never routed: aiohttp's placeholder for a request it could not parse (its
        # ``match_info`` asserts that routing happened).
        return UNMATCHED
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else UNMATCHED


SELF_COUNTED: web.AppKey[set[Any]] = web.AppKey("observability_self_counted", set)
"""The routes whose handler counts its own requests (the PEP's): the middleware skips them."""

RequestCounter = Callable[[str, int, float], None]
"""Counts one answered request: (method, status, seconds)."""


def request_metrics_middleware(metrics: GatewayMetrics, skipped: set[Any] | None = None) -> Any:
    """Middleware counting every response by route template, method and status.

    Requests to a route in *skipped* pass straight through: their handler counts them
    itself with the same labels (see :func:`counted_by_handler`), which saves the timing and
    label look-up on the PEP's per-request path (issue 17).
    """
    skip = skipped if skipped is not None else set()

    @web.middleware
    async def observe_request(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if skip and request.match_info.route in skip:
            return await handler(request)
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # client went away (nginx's convention)
            raise
        finally:
            method = request.method if request.method in _METHODS else OTHER
            counter, seconds = metrics.request_children(route_template(request), method, status)
            counter.inc()
            seconds.observe(time.perf_counter() - start)

    return observe_request


def counted_by_handler(app: web.Application, route: web.AbstractRoute) -> RequestCounter:
    """Take *route* out of the request-metrics middleware; the counter its handler calls.

    The handler reports each answered request (method, status, seconds from the handler's
    start) and the counter records it as the middleware would have: the same metric, route
    template, method label (unknown methods: ``other``) and status, ``499`` when the client
    went away. Without observability set up on *app*, the counter records nothing.
    """
    metrics = app.get(METRICS_KEY)
    skipped = app.get(SELF_COUNTED)
    if metrics is None or skipped is None:
        return _count_nothing
    skipped.add(route)
    template = route.resource.canonical if route.resource is not None else UNMATCHED
    children = metrics.request_children

    def count(method: str, status: int, seconds: float) -> None:
        counter, histogram = children(template, method if method in _METHODS else OTHER, status)
        counter.inc()
        histogram.observe(seconds)

    return count


def _count_nothing(method: str, status: int, seconds: float) -> None:
    """The counter of a handler on an app without request metrics."""


def gateway_app(request: web.Request) -> web.Application:
    """The gateway app a request reports on: its own, or the admin app's gateway app."""
    return request.app.get(GATEWAY_APP, request.app)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition (all workers in multiprocess mode)."""
    metrics = gateway_app(request)[METRICS_KEY]
    # Collecting reads every worker's mmap file in multiprocess mode: keep it off the loop.
    body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz_handler(_request: web.Request) -> web.Response:
    """``GET /healthz``: the process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


async def _run_check(name: str, check: ReadinessCheck, timeout: float) -> dict[str, Any]:
    try:
        ok, detail = await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return {"ok": False, "error": f"timed out after {timeout:g}s"}
    except Exception as exc:  # fail closed: a broken check means not ready
        get_logger("gateway.readiness").warning(
            "readiness_check_failed", check=name, error=type(exc).__name__
        )
        return {"ok": False, "error": redact_text(f"{type(exc).__name__}: {exc}")}
    return {**detail, "ok": bool(ok)}


async def readiness(app: web.Application) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every registered check concurrently: (all passed, detail per check)."""
    checks: dict[str, ReadinessCheck] = {}
    if READINESS_CHECKS in app:
        # A snapshot: rooms may still register. (mypy mis-infers the AppKey's value type.)
        checks = dict(app[READINESS_CHECKS])  # type: ignore[index]
    if not checks:
        # Nothing registered: ready exactly when a configuration was loaded.
        loaded = CONFIG in app
        return loaded, {"config": {"ok": loaded}}
    timeout = app.get(READINESS_TIMEOUT_KEY, READINESS_TIMEOUT)
    names = list(checks)
    outcomes = await asyncio.gather(*(_run_check(name, checks[name], timeout) for name in names))
    return all(r["ok"] for r in outcomes), dict(zip(names, outcomes, strict=True))


async def readyz_handler(request: web.Request) -> web.Response:
    """``GET /readyz`` on the public listener: ready or not, nothing else.

    The detail names upstream URLs, policy paths and key ids: operators read it on the
    admin listener (:func:`readyz_detail_handler`), not anyone who can reach the gateway.
    """
    ready, _detail = await readiness(gateway_app(request))
    return web.json_response(
        {"status": "ready" if ready else "not_ready"}, status=200 if ready else 503
    )


async def readyz_detail_handler(request: web.Request) -> web.Response:
    """``GET /readyz`` on the admin listener: the status and the detail of every check."""
    ready, detail = await readiness(gateway_app(request))
    body = {"status": "ready" if ready else "not_ready", "checks": detail}
    return web.json_response(body, status=200 if ready else 503)


class GatewayAccessLogger(AbstractAccessLogger):
    """aiohttp access logger that logs through structlog, one event per request.

    Logs method, path (no query string: it may carry credentials), status, duration, peer,
    and a short list of harmless headers; never ``Authorization``, cookies or bodies.
    Pass it to the runner: ``web.AppRunner(app, access_log_class=GatewayAccessLogger)``.
    """

    def __init__(self, logger: Any, log_format: str) -> None:
        """*logger* and *log_format* are aiohttp's; both are ignored (structlog formats)."""
        super().__init__(logger, log_format)
        self._log = get_logger("gateway.access")

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one finished request (a malformed one with ``error``, no method or path)."""
        malformed = request.get(MALFORMED)
        if malformed is not None:
            known = malformed.head_parsed
            self._log.info(
                "access",
                method=request.method if known else None,
                path=redact_text(request.path) if known else None,
                route=route_template(request) if known else UNMATCHED,
                status=response.status,
                error=malformed.error,
                duration_ms=round(time * 1000.0, 3),
                remote=request.remote,
            )
            return
        headers = request.headers
        self._log.info(
            "access",
            method=request.method,
            path=redact_text(request.path),
            route=route_template(request),
            status=response.status,
            duration_ms=round(time * 1000.0, 3),
            remote=request.remote,
            user_agent=headers.get("User-Agent"),
            request_id=headers.get("X-Request-Id"),
            traceparent=headers.get("traceparent"),
            response_bytes=response.body_length,
        )


def add_routes(app: web.Application, *, metrics: bool = True) -> None:
    """Register ``/healthz``, ``/readyz`` (status only) and, unless *metrics* is false (an
    admin listener serves them), ``/metrics`` on the public *app*."""
    if metrics:
        app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/readyz", readyz_handler)


def create_admin_app(gateway: web.Application) -> web.Application:
    """The admin listener's app: ``/readyz`` with details, ``/metrics`` and ``/healthz`` of
    *gateway*. Not reachable through the public listener; bind it to a private address."""
    admin = web.Application()
    admin[GATEWAY_APP] = gateway
    admin.router.add_get("/readyz", readyz_detail_handler)
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz_handler)
    return admin
