"""Request dependencies: the database, the settings and the caller's token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from sqlalchemy import Engine

from arserver.api.guard import authenticator_of, checked_token, presented_secret
from arserver.config import Settings
from arserver.errors import AuthenticationError
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.alerts import AlertService
from arserver.services.assets import AssetService
from arserver.services.comments import CommentService
from arserver.services.inspections import InspectionService
from arserver.services.observations import ObservationWriter
from arserver.services.parking import ParkingService
from arserver.services.rounds import RoundService
from arserver.services.sensors import SensorService
from arserver.services.tokens import TokenService


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_assets(request: Request) -> AssetService:
    assets: AssetService = request.app.state.assets
    return assets


def get_writer(request: Request) -> ObservationWriter:
    writer: ObservationWriter = request.app.state.writer
    return writer


def get_alerts(request: Request) -> AlertService:
    alerts: AlertService = request.app.state.alerts
    return alerts


def get_inspections(request: Request) -> InspectionService:
    inspections: InspectionService = request.app.state.inspections
    return inspections


def get_rounds(request: Request) -> RoundService:
    rounds: RoundService = request.app.state.rounds
    return rounds


def get_comments(request: Request) -> CommentService:
    comments: CommentService = request.app.state.comments
    return comments


def get_parking(request: Request) -> ParkingService:
    parking: ParkingService = request.app.state.parking
    return parking


def get_sensors(request: Request) -> SensorService:
    sensors: SensorService = request.app.state.sensors
    return sensors


def get_tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def optional_token(
    request: Request,
    access_token: Annotated[
        str | None,
        Query(description="The token, for clients that cannot set headers (CesiumJS, headsets)."),
    ] = None,
) -> TokenRecord | None:
    """The caller's token from ``Authorization: Bearer`` or ``?access_token=``, if any
    (``access_token`` is declared here for the OpenAPI schema; :func:`presented_secret` reads
    both): one of our tokens or, when configured, an OpenID Connect JWT. A plain function, so
    FastAPI runs it in a worker thread (the lookup may wait on the database or the identity
    provider).

    A token that is presented but invalid is an error, not anonymity."""
    checked = checked_token(request.state)
    if checked is not None:  # the request guard looked it up already
        return checked
    secret = presented_secret(request)
    if secret is None:
        return None
    record = authenticator_of(request.app.state).authenticate(secret)
    if record is None:
        raise AuthenticationError("invalid or revoked token")
    return record


def require_reader(token: TokenRecord | None) -> TokenRecord:
    """The caller, if it may read non-public data (see :mod:`arserver.security.policy`)."""
    return authorize(token, Action.READ)
