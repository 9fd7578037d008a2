"""``/metrics`` for Prometheus: HTTP requests by route and status, request latency, and the job
queue (depth by status, conversion durations) read from the database, so that the figures cover
every worker on every machine. Labels are bounded whatever clients send: the method is one of
:data:`METHODS` or ``other``, the route is the matched route's template or ``unmatched``.

Reading them needs a token whose role may :attr:`~arserver.security.policy.Action.READ_METRICS`
(``admin``), or the scrape secret ``ARSERVER_METRICS_TOKEN``, which Prometheus sends as
``Authorization: Bearer`` (compared in constant time, and without a database lookup)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from arserver.api.deps import optional_token
from arserver.api.guard import presented_secret
from arserver.config import Settings
from arserver.security.policy import Action, authorize
from arserver.store.jobs import queue_figures


class _QueueCollector(Collector):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        engine = getattr(self.app.state, "engine", None)
        if engine is None:
            return
        depth = GaugeMetricFamily("arserver_jobs", "Conversion jobs by status", labels=["status"])
        durations = SummaryMetricFamily(
            "arserver_job_duration_seconds", "Time from start to end of finished conversion jobs"
        )
        try:
            counts, spent = queue_figures(engine)
        except SQLAlchemyError:
            return
        for status in ("queued", "running", "done", "failed"):
            depth.add_metric([status], float(counts.get(status, 0)))
        durations.add_metric([], count_value=len(spent), sum_value=sum(spent))
        yield depth
        yield durations


def install_metrics(app: FastAPI) -> None:
    """Count requests (a middleware) and serve ``/metrics``; one registry per application."""
    registry = CollectorRegistry()
    requests = Counter(
        "arserver_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "arserver_http_request_duration_seconds",
        "HTTP request latency",
        ["route"],
        registry=registry,
    )
    registry.register(_QueueCollector(app))

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = route_label(request.scope)
        requests.labels(method_label(request.method), route, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        return response

    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        description="Needs an admin token or the scrape secret `ARSERVER_METRICS_TOKEN`, as "
        "`Authorization: Bearer`.",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}},
            401: {"description": "No token, or neither an admin token nor the scrape secret"},
            403: {"description": "The token's role may not read the metrics"},
        },
    )
    def metrics(
        request: Request,
        access_token: Annotated[
            str | None, Query(description="The token, for scrapers that cannot set headers.")
        ] = None,
    ) -> Response:
        # The scrape secret first: it is no token, and needs no database lookup.
        if not is_scrape_secret(request):
            authorize(optional_token(request), Action.READ_METRICS)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)


#: The methods counted by name (RFC 9110's and PATCH); any other is counted as ``other``.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
#: The route label of requests that matched no route (404s of any path).
UNMATCHED = "unmatched"


def method_label(method: str) -> str:
    """The method as a label: a standard method's name, ``other`` for anything a client made
    up (so that invented methods cannot add series without bound)."""
    return method if method in METHODS else "other"


def route_label(scope: Mapping[str, Any]) -> str:
    """The route template a request matched (``/api/v1/sensors/{sensor_id}``), never the
    path it asked for; :data:`UNMATCHED` when it matched none."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def is_scrape_secret(request: Request) -> bool:
    """Whether the request presents ``ARSERVER_METRICS_TOKEN`` (constant time: the digests of
    both are compared, so not even the length shows)."""
    settings: Settings = request.app.state.settings
    presented = presented_secret(request)
    if settings.metrics_token is None or presented is None:
        return False
    expected = settings.metrics_token.get_secret_value()
    return hmac.compare_digest(_digest(presented), _digest(expected))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="replace")).digest()
