"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from arserver.api.deps import get_engine
from arserver.store.database import ping

log = logging.getLogger(__name__)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database answers",
        description="`database`: the backend's name; `mqtt` (when ARSERVER_MQTT_URL is set): "
        "`subscribed` while the broker delivers uplinks, else `connecting` (HTTP is served "
        "either way, so it does not make the server unready).",
        responses={503: {"description": "The database cannot be reached"}},
    )
    def readyz(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> JSONResponse:
        try:
            ping(engine)
        except SQLAlchemyError:
            log.exception("readiness: the database does not answer")
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        body: dict[str, Any] = {"status": "ok", "database": engine.dialect.name}
        mqtt = getattr(request.app.state, "mqtt", None)
        if mqtt is not None:
            body["mqtt"] = mqtt.state
        return JSONResponse(body)

    return router
