"""``create_app(settings)``: the FastAPI application, its routers and its one error table."""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from arserver import __version__
from arserver.api.alerts import alerts_router
from arserver.api.align import align_router
from arserver.api.assets import assets_router
from arserver.api.audit import AuditLog
from arserver.api.audit_log import audit_router
from arserver.api.comments import comments_router
from arserver.api.docs import docs_router
from arserver.api.guard import RequestGuard
from arserver.api.headers import SecurityHeaders
from arserver.api.health import health_router
from arserver.api.inspections import inspections_router
from arserver.api.live import live_router
from arserver.api.metrics import install_metrics
from arserver.api.models import ERROR_RESPONSES
from arserver.api.parking import parking_router
from arserver.api.privacy import privacy_router
from arserver.api.ratelimit import AuthFailureLimit, RateLimits, WriteLimit
from arserver.api.register import register_router
from arserver.api.round_report import round_report_router
from arserver.api.rounds import rounds_router
from arserver.api.sensors import sensors_router
from arserver.api.sta import sta_router
from arserver.api.tiles import tiles_router
from arserver.api.tokens import tokens_router
from arserver.api.viewer import viewer_router
from arserver.config import Settings
from arserver.domain import Change
from arserver.errors import (
    ArserverError,
    AuthenticationError,
    BusyError,
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    TooLargeError,
    UnavailableError,
)
from arserver.ingest.mqtt import MqttIngest
from arserver.ingest.parking_sources import polled_sources
from arserver.ingest.writer import observation_writer, parking_service
from arserver.jobs.worker import Worker
from arserver.live.bus import open_bus
from arserver.live.hub import Hub
from arserver.live.mirror import RedisSessionMirror
from arserver.live.protocol import Limits
from arserver.security.oidc import verifier_from_settings
from arserver.security.tokens import Authenticator, TokenError
from arserver.services.alerts import AlertService
from arserver.services.alignment import lookup as alignment_lookup
from arserver.services.assets import AssetService
from arserver.services.audit import AuditService
from arserver.services.checks import storable_text
from arserver.services.comments import CommentService
from arserver.services.inspections import InspectionService
from arserver.services.parking_feeds import FeedImporter
from arserver.services.parking_poller import FeedPoller
from arserver.services.privacy import PrivacyService
from arserver.services.rounds import RoundService
from arserver.services.sensors import SensorService
from arserver.services.tokens import TokenService
from arserver.store.database import DatabaseError, open_database
from arserver.store.live import current_changes
from arserver.store.retention import run_retention
from arserver.store.tilestore import open_tile_store
from tiles.errors import TilesError

#: The one place where exceptions become HTTP statuses. An exception takes the status of the
#: nearest class along its MRO, so the order of this table does not matter.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    TooLargeError: 413,
    QueryError: 400,
    InputError: 422,
    TokenError: 422,
    TilesError: 422,
    DatabaseError: 503,
    BusyError: 503,
    UnavailableError: 503,
    ArserverError: 500,
}


def status_of(exc: BaseException) -> int:
    """The HTTP status of ``exc``: that of the first of its classes (MRO) in the table."""
    return next(
        (STATUS_BY_ERROR[kind] for kind in type(exc).__mro__ if kind in STATUS_BY_ERROR), 500
    )


#: A 422 lists at most this many problems, and echoes an input only when it is this short.
MAX_PROBLEMS = 20
MAX_ECHO_CHARS = 100


def describe_problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Request validation errors as clients see them: where (``loc``), what (``msg``, ``type``)
    and the offending value only when it is a short scalar, so that a multi-megabyte body is
    never sent back; text that cannot be encoded (a lone surrogate) is never echoed."""
    problems: list[dict[str, Any]] = []
    for error in errors[:MAX_PROBLEMS]:
        where = error.get("loc", ())
        problem = {
            "loc": [p if not isinstance(p, str) or storable_text(p) else "?" for p in where],
            "msg": error.get("msg"),
            "type": error.get("type"),
        }
        value = error.get("input")
        if (
            (value is None or isinstance(value, bool | int | float | str))
            and len(repr(value)) <= MAX_ECHO_CHARS
            and (not isinstance(value, str) or storable_text(value))
            and (not isinstance(value, float) or math.isfinite(value))  # JSON has no inf, nan
        ):
            problem["input"] = value
        problems.append(problem)
    if len(errors) > MAX_PROBLEMS:
        problems.append(
            {"loc": [], "msg": f"and {len(errors) - MAX_PROBLEMS} more problems", "type": "more"}
        )
    return problems


def _install_error_table(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, BusyError):
            headers = {"Retry-After": "5"}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": describe_problems(exc.errors())}, status_code=422)

    # Starlette looks handlers up along the MRO too; the roots suffice.
    for kind in (ArserverError, TilesError):
        app.add_exception_handler(kind, handle)
    app.add_exception_handler(RequestValidationError, invalid)


def _current_state(state: Any) -> list[Change]:
    """What is live when a hub starts: sensors, alerts and assets from the database, open
    inspections, visible comments and parking occupancy from their services."""
    return [
        *current_changes(state.engine),
        *state.inspections.current_changes(),
        *state.comments.current_changes(),
        *state.parking.current_changes(),
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment). The database is opened
    and migrated when the application starts."""
    settings = settings or Settings()
    store = open_tile_store(settings)
    oidc = verifier_from_settings(settings)  # OpenID Connect settings that cannot work fail here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = open_database(settings)
        app.state.bus = open_bus(settings)
        app.state.assets = AssetService(app.state.engine, settings.data_dir, store, app.state.bus)
        app.state.sensors = SensorService(app.state.engine)
        app.state.authenticator = Authenticator(app.state.engine, oidc)
        app.state.tokens = TokenService(app.state.engine, app.state.bus, app.state.authenticator)
        app.state.alerts = AlertService(app.state.engine, app.state.bus)
        app.state.inspections = InspectionService(
            app.state.engine,
            app.state.bus,
            categories=settings.inspection_categories,
            extent=settings.extent,
            max_photo_pixels=int(settings.max_photo_megapixels * 1_000_000),
        )
        app.state.rounds = RoundService(
            app.state.engine,
            app.state.tokens,
            extent=settings.extent,
            resident_retention=settings.resident_retention,
        )
        app.state.comments = CommentService(
            app.state.engine, app.state.rounds, app.state.bus, extent=settings.extent
        )
        app.state.audit = AuditService(app.state.engine)
        app.state.privacy = PrivacyService(app.state.engine, app.state.tokens, app.state.bus)
        app.state.parking = parking_service(settings, app.state.engine, app.state.bus)
        app.state.writer = observation_writer(
            settings, app.state.engine, app.state.bus, app.state.alerts, app.state.parking
        )
        app.state.hub = Hub(
            Limits(
                max_queue_bytes=settings.live_max_queue_bytes,
                retention_s=settings.live_retention_s,
            ),
            send_timeout_s=settings.live_send_timeout_s,
            flush_interval_s=settings.live_flush_interval_s,
            mirror=(
                RedisSessionMirror(settings.redis_url, settings.live_retention_s)
                if settings.redis_url
                else None
            ),
            alignments=alignment_lookup(app.state.engine, settings.alignment_lifetime),
        )
        current = await run_in_threadpool(_current_state, app.state)
        await app.state.hub.start(app.state.bus, current)
        stop = threading.Event()
        mqtt_ingest = app.state.mqtt = None
        if settings.mqtt_url:
            mqtt_ingest = MqttIngest(
                app.state.writer, settings.mqtt_url, settings.mqtt_client_id,
                shared_group=settings.mqtt_shared_group,
            )  # fmt: skip
            mqtt_ingest.start()
            app.state.mqtt = mqtt_ingest
        retention_thread = threading.Thread(
            target=run_retention, args=(app.state.engine, settings, stop), daemon=True
        )
        retention_thread.start()
        token_thread = threading.Thread(
            target=app.state.tokens.watch,
            args=(app.state.hub, stop, settings.live_token_check_s),
            name="arserver-live-tokens",
            daemon=True,
        )
        token_thread.start()
        parking_thread = threading.Thread(
            target=app.state.parking.run, args=(stop,), name="arserver-parking", daemon=True
        )
        parking_thread.start()
        feed_thread = None
        if settings.parking_feeds:
            poller = FeedPoller(
                FeedImporter(app.state.parking, app.state.sensors, app.state.writer),
                polled_sources(
                    settings.parking_feeds, allow_private=settings.parking_feeds_allow_private
                ),
                settings.parking_feed_interval_s,
            )
            feed_thread = threading.Thread(
                target=poller.run, args=(stop,), name="arserver-parking-feeds", daemon=True
            )
            feed_thread.start()
        worker_thread = app.state.worker = None
        if settings.embedded_worker:
            worker = Worker(app.state.engine, settings, bus=app.state.bus)
            app.state.worker = worker
            worker_thread = threading.Thread(
                target=worker.run, args=(stop,), name="arserver-worker", daemon=True
            )
            worker_thread.start()
        try:
            yield
        finally:
            if mqtt_ingest is not None:
                mqtt_ingest.stop()
            stop.set()
            retention_thread.join(timeout=60)
            token_thread.join(timeout=60)
            parking_thread.join(timeout=60)
            if feed_thread is not None:
                feed_thread.join(timeout=60)
            if worker_thread is not None:
                worker_thread.join(timeout=settings.job_timeout_s)
            await app.state.hub.stop()
            app.state.bus.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="arserver",
        version=__version__,
        summary="Location-bound data for AR and VR: 3D Tiles, live overlays, sensors.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,  # served from local assets by docs_router
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    _install_error_table(app)
    limits = app.state.rate_limits = RateLimits.from_settings(settings)
    # Innermost: writes are limited per token, which the request guard has found by then.
    app.add_middleware(WriteLimit, limits=limits)
    # Inside the others, so that its refusals (and the limits') still carry CORS headers.
    app.add_middleware(
        RequestGuard,
        upload_bytes=settings.max_upload_mib * (1 << 20),
        photo_bytes=int(settings.max_photo_mib * (1 << 20)),
    )
    # Just outside the guard: records its refusals and every write; throttled requests
    # (AuthFailureLimit, outside) never reach it.
    app.add_middleware(AuditLog)
    # Outside the guard: sees its 401s, and refuses throttled addresses before its lookup.
    app.add_middleware(AuthFailureLimit, limits=limits)
    app.add_middleware(SecurityHeaders)
    if settings.compress_responses:
        app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(
        CORSMiddleware,
        # "*" by default: safe because the API authenticates with bearer tokens, never cookies.
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "If-None-Match"],
        expose_headers=["ETag", "Retry-After"],
    )
    install_metrics(app)
    app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))
    app.include_router(viewer_router(settings.viewer_dir))
    app.include_router(health_router())
    app.include_router(assets_router())
    app.include_router(sensors_router())
    app.include_router(register_router())
    app.include_router(sta_router())
    app.include_router(align_router())
    app.include_router(alerts_router())
    app.include_router(inspections_router())
    app.include_router(live_router())
    app.include_router(tokens_router())
    app.include_router(audit_router())
    app.include_router(privacy_router())
    app.include_router(round_report_router())
    app.include_router(rounds_router())
    app.include_router(comments_router())
    app.include_router(parking_router())
    app.include_router(tiles_router(store, settings.tiles_redirect_s))
    return app
