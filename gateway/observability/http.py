"""HTTP side of observability: ``/metrics``, ``/healthz``, ``/readyz``, the admin listener's
app, request metrics and the access log."""

from __future__ import annotations

import asyncio
import functools
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


RequestCounter = Callable[[str, int, float], None]
"""Counts one answered request: (method, status, seconds)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _record(
    metrics: GatewayMetrics, template: str, method: str, status: int, seconds: float
) -> None:
    metrics.record_request(template, method if method in _METHODS else OTHER, status, seconds)


def counted(app: web.Application, handler: Handler) -> Handler:
    """*handler*, counting each request it answers in ``nid_gateway_http_requests_total``
    and the latency histogram: route template, method (unknown methods: ``other``), status,
    ``500`` for an exception, ``499`` when the client went away.

    Every route that does not count its own requests (:func:`counted_by_handler`, the PEP's)
    is registered with its handler wrapped so. Not a middleware: with any middleware
    aiohttp builds a handler chain and adds a coroutine level on every request, the PEP's
    too (~30k instructions a request, issue 17). Requests no route matched are counted by
    :func:`count_unmatched`. Without observability set up on *app*, *handler* itself.
    """
    metrics = app.get(METRICS_KEY)
    if metrics is None:
        return handler

    async def counting(request: web.Request) -> web.StreamResponse:
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
            _record(
                metrics,
                route_template(request),
                request.method,
                status,
                time.perf_counter() - start,
            )

    return functools.update_wrapper(counting, handler)


def count_unmatched(
    metrics: GatewayMetrics,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The ``on_response_prepare`` receiver counting the answers to requests no route took
    (404, and 405 for a method no route of the path allows) as route ``unmatched``. Their
    handler is aiohttp's (it raises at once): the seconds are those to the answer."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        match_info = request.match_info
        if match_info.http_exception is not None:
            _record(metrics, UNMATCHED, request.method, response.status, 0.0)

    return on_prepare


def counted_by_handler(app: web.Application, route: web.AbstractRoute) -> RequestCounter:
    """The counter *route*'s handler calls for each request it answers (the PEP's routes,
    registered without :func:`counted`).

    The handler reports each answered request (method, status, seconds from the handler's
    start) and the counter records it as :func:`counted` would: the same metric, route
    template, method label (unknown methods: ``other``) and status, ``499`` when the client
    went away. Without observability set up on *app*, the counter records nothing.
    """
    metrics = app.get(METRICS_KEY)
    if metrics is None:
        return _count_nothing
    template = route.resource.canonical if route.resource is not None else UNMATCHED
    record = metrics.record_request

    def count(method: str, status: int, seconds: float) -> None:
        record(template, method if method in _METHODS else OTHER, status, seconds)

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
        app.router.add_get("/metrics", counted(app, metrics_handler))
    app.router.add_get("/healthz", counted(app, healthz_handler))
    app.router.add_get("/readyz", counted(app, readyz_handler))


def create_admin_app(gateway: web.Application) -> web.Application:
    """The admin listener's app: ``/readyz`` with details, ``/metrics`` and ``/healthz`` of
    *gateway*. Not reachable through the public listener; bind it to a private address."""
    admin = web.Application()
    admin[GATEWAY_APP] = gateway
    admin.router.add_get("/readyz", readyz_detail_handler)
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz_handler)
    return admin
