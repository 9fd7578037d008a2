"""Benchmark: the SensorThings API beside our own /api/v1 on the same data, in the same run.

A server (SQLite by default, or ``--database-url postgresql://...``) holds ``--streams``
datastreams with ``--observations`` observations in all; one datastream holds ``--walk`` of
them. Each pair asks for the same data both ways:

- *layer load*: the newest value of every datastream in an area, as QGIS asks for it
  (``Datastreams?$filter=st_within(observedArea, ...)&$expand=Observations($orderby=
  phenomenonTime desc;$top=1)``) and as ``/api/v1/observations/latest?bbox=...``;
- *feature count*: QGIS's probe ``Locations?$top=0&$count=true&$filter=location/type eq
  'Point' ...`` beside ``/api/v1/register`` (every sensor's register entry);
- *first page*: ``Observations?$top=200&$count=false`` (QGIS's first page of an Observations
  layer) beside ``/api/v1/sensors/{id}/observations?limit=200``;
- *page walk*: ``--walk`` observations of one datastream, newest first, following
  ``@iot.nextLink`` in pages of 1,000 (whole entities, and with Grafana's
  ``$select=phenomenonTime,result``) beside one ``?limit=10000`` request.

Medians and p99 of ``--rounds`` rounds (alternating the two, so the noise of this shared
machine falls on both); the ratio is STA p50 over /api/v1 p50 (goal: at most 2).

    python bench/sta.py [--streams 100] [--observations 100000] [--walk 10000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine

from arserver.commands.server import start_server
from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from arserver.store.schema import datastreams, observations
from arserver.store.sensors import create_sensor

WEST, SOUTH, EAST, NORTH = 4.85, 52.33, 4.95, 52.40
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def seed(settings: Settings, streams: int, total: int, walk: int) -> str:
    """Sensors with one datastream each inside the area, their observations one minute
    apart; returns a reader's token."""
    engine = open_database(settings)
    for index in range(streams):
        lon = WEST + (EAST - WEST) * (index % 10 + 0.5) / 10
        lat = SOUTH + (NORTH - SOUTH) * (index // 10 % 10 + 0.5) / 10
        create_sensor(
            engine,
            {"id": f"air-{index}", "name": f"Air {index}", "lon": lon, "lat": lat, "h": 45.0,
             "public": True},
            [("no2", "ug/m3")],
        )  # fmt: skip
    with engine.begin() as connection:
        ids = [
            row.id for row in connection.execute(datastreams.select().order_by(datastreams.c.id))
        ]
        counts = [walk] + [(total - walk) // (streams - 1)] * (streams - 1)
        received = datetime.now(UTC)
        for stream, count in zip(ids, counts, strict=True):
            rows = [
                {"datastream_id": stream, "time": T0 + timedelta(minutes=m),
                 "value": 20.0 + (m % 37), "received_at": received}
                for m in range(count)
            ]  # fmt: skip
            connection.execute(insert(observations), rows)
    token = create_token(engine, "viewer")[0]
    engine.dispose()
    return token


def timed(call: Callable[[], int]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--walk", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            data_dir=Path(scratch), database_url=args.database_url, raw_retention_days=None
        )
        started = time.perf_counter()
        token = seed(settings, args.streams, args.observations, args.walk)
        print(f"seeded {args.observations:,} observations in {args.streams} datastreams "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        server, url = start_server(settings, 0)
        http = httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"})
        polygon = (f"POLYGON(({WEST} {SOUTH}, {EAST} {SOUTH}, {EAST} {NORTH}, {WEST} {NORTH}, "
                   f"{WEST} {SOUTH}))")  # fmt: skip

        def get(path: str, **params: str) -> httpx.Response:
            response = http.get(path, params=params)
            response.raise_for_status()
            return response

        def sta_layer() -> int:
            body = get("/sta/v1.1/Datastreams", **{
                "$top": "200", "$filter": f"st_within(observedArea, geography'{polygon}')",
                "$expand": "Observations($orderby=phenomenonTime desc;$top=1)",
            }).json()  # fmt: skip
            return len(body["value"])

        def own_layer() -> int:
            area = f"{WEST},{SOUTH},{EAST},{NORTH}"
            return len(get("/api/v1/observations/latest", bbox=area).json()["latest"])

        def sta_count() -> int:
            kind = "location/type eq 'Point' or location/geometry/type eq 'Point'"
            options = {"$top": "0", "$count": "true", "$filter": kind}
            return int(get("/sta/v1.1/Locations", **options).json()["@iot.count"])

        def own_count() -> int:
            return len(get("/api/v1/register").json()["sensors"])

        def sta_page() -> int:
            return len(
                get("/sta/v1.1/Observations", **{"$top": "200", "$count": "false"}).json()["value"]
            )

        def own_page() -> int:
            return len(
                get("/api/v1/sensors/air-1/observations", limit="200").json()["observations"]
            )

        def walk(**extra: str) -> int:
            seen = 0
            body = get("/sta/v1.1/Datastreams(1)/Observations", **{
                "$orderby": "phenomenonTime desc", "$top": "1000", **extra,
            }).json()  # fmt: skip
            while True:
                seen += len(body["value"])
                if "@iot.nextLink" not in body:
                    return seen
                body = http.get(body["@iot.nextLink"]).raise_for_status().json()

        def sta_walk() -> int:
            return walk()

        def sta_select_walk() -> int:  # as Grafana asks: only the time and the result
            return walk(**{"$select": "phenomenonTime,result"})

        def own_walk() -> int:
            return len(
                get("/api/v1/sensors/air-0/observations", limit=str(args.walk)).json()[
                    "observations"
                ]
            )

        pairs = [
            ("layer load (newest per datastream in an area)", sta_layer, own_layer),
            ("feature count (QGIS probe / register)", sta_count, own_count),
            ("first page of 200 observations", sta_page, own_page),
            (f"page walk of {args.walk:,} observations", sta_walk, own_walk),
            (
                f"page walk of {args.walk:,}, $select=phenomenonTime,result",
                sta_select_walk,
                own_walk,
            ),
        ]
        for label, sta, own in pairs:  # the same answers both ways, and a warm cache for both
            sta_seen, own_seen = sta(), own()
            if sta_seen != own_seen:
                raise SystemExit(f"{label}: STA gave {sta_seen}, /api/v1 {own_seen}")
        rows = []
        for label, sta, own in pairs:
            sta_s: list[float] = []
            own_s: list[float] = []
            for _ in range(args.rounds):
                sta_s.append(timed(sta))
                own_s.append(timed(own))
            rows.append((label, sta_s, own_s))
        http.close()
        server.stop()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{machine()}; {backend}; {args.rounds} rounds each, alternating\n")
    print(
        "| request | STA p50 ms | STA p99 ms | /api/v1 p50 ms | /api/v1 p99 ms | STA / own (p50) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, sta_s, own_s in rows:
        p50, own50 = statistics.median(sta_s), statistics.median(own_s)
        print(f"| {label} | {p50 * 1000:.1f} | {p99(sta_s) * 1000:.1f} | {own50 * 1000:.1f} | "
              f"{p99(own_s) * 1000:.1f} | {p50 / own50:.2f} |")  # fmt: skip


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
