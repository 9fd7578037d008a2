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
        summary="Readiness: the database answers and the background loops run",
        description="`database`: the backend's name; `mqtt` (when ARSERVER_MQTT_URL is set): "
        "`subscribed` while the broker delivers uplinks, `connecting` while it does not (HTTP "
        "is served either way, so that does not make the server unready), `stopped` once the "
        "consumer no longer runs; `worker` (with the embedded conversion worker): `starting`, "
        "`running` or `stopped`.",
        responses={
            503: {
                "description": "The database cannot be reached, or the MQTT consumer or the "
                "embedded worker stopped"
            }
        },
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
        # Loops of the app (app.state.mqtt, app.state.worker), when it runs them.
        for name in ("mqtt", "worker"):
            loop = getattr(request.app.state, name, None)
            if loop is not None:
                body[name] = loop.state
                if loop.state == "stopped":
                    body["status"] = "unavailable"
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return router
