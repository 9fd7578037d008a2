"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from arserver.api.deps import get_engine
from arserver.store.database import ping


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database answers",
        responses={503: {"description": "The database cannot be reached"}},
    )
    def readyz(engine: Annotated[Engine, Depends(get_engine)]) -> JSONResponse:
        try:
            ping(engine)
        except SQLAlchemyError as exc:
            reason = str(exc).splitlines()[0]
            return JSONResponse({"status": "unavailable", "database": reason}, status_code=503)
        return JSONResponse({"status": "ok", "database": engine.dialect.name})

    return router
