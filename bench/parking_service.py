"""Benchmark: the parking service on a real database, 1,000 car parks with four weeks of counts.

Each car park has a counter with one reading every 15 minutes for 28 days (the synthetic
generator's lots, resampled), stored through the observation store. Timed, in one run: training
(reading every history from the database and fitting), the first refresh after it (occupancy of
every place, history rows, forecasts), a warm refresh (histories in memory), and as the baseline
the forecaster alone on the same histories (``Forecaster.forecast_many``). Goals of the issue:
a refresh of 1,000 forecasts under 1 s, training under 60 s.

    python bench/parking_service.py [--places 1000] [--days 28] [--postgres URL]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine

from arserver.config import Settings
from arserver.domain import Reading
from arserver.insight.parking.synthetic import generate_series
from arserver.services.parking import NewPlace, ParkingService
from arserver.store.database import open_database
from arserver.store.sensors import create_sensor, store_readings, streams_of

STEP = 900.0


def seed(settings: Settings, places: int, days: int, now: datetime) -> None:
    engine = open_database(settings)
    service = ParkingService(engine, now=lambda: now)
    lots = generate_series(places, days + 1, seed=7, start=now.timestamp() - (days + 1) * 86400)
    grid = now.timestamp() - STEP * np.arange(days * 96, 0, -1)
    for number, (lot_id, series) in enumerate(lots.items()):
        lon, lat = 4.8 + 0.0002 * (number % 100), 52.3 + 0.0002 * (number // 100)
        create_sensor(engine, {"id": lot_id, "name": lot_id, "lon": lon, "lat": lat},
                      [("free_spaces", "{spaces}")])  # fmt: skip
        with engine.begin() as connection:
            stream = streams_of(connection, {lot_id})[0][lot_id]["free_spaces"]
            index = np.clip(np.searchsorted(series.times, grid) - 1, 0, len(series.times) - 1)
            readings = [
                Reading(k, stream, datetime.fromtimestamp(t, UTC), float(v), None, None)
                for k, (t, v) in enumerate(zip(grid, series.free[index], strict=True))
            ]
            store_readings(connection, readings)
        service.upsert_car_park(
            NewPlace(kind="car_park", name=lot_id, id=lot_id, capacity=int(series.capacity),
                     location=[lon, lat], counter=lot_id)
        )  # fmt: skip
    engine.dispose()


def timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="a scratch PostgreSQL database URL")
    args = parser.parse_args()
    now = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), database_url=args.postgres)
        started = time.perf_counter()
        seed(settings, args.places, args.days, now)
        seeded = time.perf_counter() - started
        engine = open_database(settings)
        clock = [now]
        service = ParkingService(engine, now=lambda: clock[0])
        training = timed(service.train)
        clock[0] = now + timedelta(minutes=1)
        first = timed(service.refresh)
        warm = []
        for k in range(args.repeats):
            clock[0] = now + timedelta(minutes=2 + k)
            warm.append(timed(service.refresh))
        with service._lock:
            items = dict(service._history)
            model = service._forecaster
        bare = [timed(lambda: model.forecast_many(items, clock[0].timestamp()))]
        bare += [timed(lambda: model.forecast_many(items, clock[0].timestamp()))]
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"machine: {machine()}; {backend}; {args.places} car parks x {args.days} days of "
          f"15-min counts (seeded in {seeded:.0f} s)")  # fmt: skip
    print()
    print("| work | seconds (median) |")
    print("|---|---:|")
    print(f"| training (read every history + fit) | {training:.2f} |")
    print(f"| first refresh after training | {first:.2f} |")
    print(f"| refresh, warm (occupancy, history rows, forecasts) | {statistics.median(warm):.2f} |")
    print(f"| baseline: forecaster alone on the same histories | {statistics.median(bare):.2f} |")
    print(f"peak memory {peak:.0f} MiB; model knows {len(model.lots)} of {len(items)} places")


if __name__ == "__main__":
    main()
