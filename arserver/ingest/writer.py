"""The observation write path as every process that ingests builds it (the server, and
``arserver ingest``): the writer with the alert rules and parking occupancy it updates per
batch, publishing on ``bus`` after each commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from arserver.config import Settings
from arserver.insight.parking.occupancy import Thresholds
from arserver.live.bus import Bus
from arserver.services.alerts import AlertService
from arserver.services.observations import ObservationWriter
from arserver.services.parking import ParkingService


def parking_service(settings: Settings, engine: Engine, bus: Bus | None) -> ParkingService:
    """The parking service with the silence and stuck thresholds of ``settings``."""
    return ParkingService(
        engine,
        bus,
        thresholds=Thresholds(
            bay_silent_after=timedelta(hours=settings.parking_bay_silent_after_h),
            bay_stuck_after=timedelta(hours=settings.parking_bay_stuck_after_h),
            counter_silent_after=timedelta(minutes=settings.parking_counter_silent_after_min),
        ),
    )


def observation_writer(
    settings: Settings,
    engine: Engine,
    bus: Bus | None,
    alerts: AlertService | None = None,
    parking: ParkingService | None = None,
) -> ObservationWriter:
    """The writer for ``settings``; ``alerts`` and ``parking`` are made when not given."""
    return ObservationWriter(
        engine,
        raw_retention=settings.raw_retention,
        bus=bus,
        alerts=alerts or AlertService(engine, bus),
        parking=parking or parking_service(settings, engine, bus),
    )
