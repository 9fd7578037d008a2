"""``arserver simulate``: believable sensor data for the demo area (Schiphol Plaza samples).

Sensors: six parking bays (occupancy with a daily and weekly rhythm), an air quality sensor
(NO2 with rush-hour peaks, PM2.5) and a noise sensor (LAeq, day and night), both registered with
a LoRaWAN device link, a water level gauge (NAP metres, a slow swell), and a sensor ball drifting
along the sample water main. Everything goes to ``/api/v1/observations`` over HTTP (sending the
LoRaWAN ones as TTS/ChirpStack uplinks over MQTT is not built yet). Values are a deterministic
function of time plus seeded noise, so a backfill draws the same history every run.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from arserver.client import ClientError
from tiles.crs import Transformer

ASSETS = Path(__file__).resolve().parents[1] / "assets"
AIR_EUI = "0004A30B001C0530"
NOISE_EUI = "0004A30B001C0531"
GROUND_NAP = -3.6


@dataclass(frozen=True)
class SimulatedSensor:
    registration: dict[str, Any]
    values: Callable[[datetime], dict[str, float]]  # kind -> value at a time
    position: Callable[[datetime], list[float]] | None = None


def _rhythm(moment: datetime) -> float:
    """0 at night, 1 in the busy day; lower at weekends (local time ~ UTC+1)."""
    hour = (moment.hour + 1 + moment.minute / 60) % 24
    day = max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.0
    return day * (0.6 if moment.weekday() >= 5 else 1.0)


def _noise(key: str, moment: datetime, scale: float) -> float:
    return random.Random(f"{key}:{int(moment.timestamp()) // 60}").gauss(0.0, scale)


def sensors() -> list[SimulatedSensor]:
    to_geodetic = Transformer.from_crs("EPSG:7415", "EPSG:4979")

    def place(x: float, y: float, nap: float = GROUND_NAP) -> list[float]:
        lon, lat, h = to_geodetic.transform([x], [y], [nap])
        assert h is not None
        return [round(float(lon[0]), 7), round(float(lat[0]), 7), round(float(h[0]), 3)]

    result: list[SimulatedSensor] = []
    for k in range(6):
        sensor_id = f"bay-{k + 1}"

        def bay(moment: datetime, sensor_id: str = sensor_id, k: int = k) -> dict[str, float]:
            pressure = 0.15 + 0.8 * _rhythm(moment) - 0.05 * k
            chance = random.Random(f"{sensor_id}:{int(moment.timestamp()) // 900}").random()
            return {"parking_bay": 1.0 if chance < pressure else 0.0}

        result.append(
            SimulatedSensor(
                {
                    "id": sensor_id,
                    "name": f"Parking bay {k + 1}, P2 short stay",
                    "kind": "parking_bay",
                    "unit": "1",
                    "location": place(111_835.0 + 6 * k, 481_125.0),
                    "owner": "demo",
                    "purpose": "parking occupancy",
                },
                bay,
            )
        )

    def air(moment: datetime) -> dict[str, float]:
        hour = (moment.hour + 1) % 24
        rush = math.exp(-((hour - 8) ** 2) / 2) + math.exp(-((hour - 17.5) ** 2) / 2)
        no2 = 18 + 30 * rush * (0.7 if moment.weekday() >= 5 else 1.0) + _noise("no2", moment, 3)
        return {
            "no2": round(max(no2, 1.0), 1),
            "pm25": round(max(8 + 6 * rush + _noise("pm", moment, 1.5), 1.0), 1),
        }

    result.append(
        SimulatedSensor(
            {
                "id": "air-plaza",
                "name": "Air quality, Schiphol Plaza",
                "datastreams": [
                    {"kind": "no2", "unit": "ug/m3"},
                    {"kind": "pm25", "unit": "ug/m3"},
                ],
                "location": place(111_780.0, 481_160.0, -1.0),
                "device": {"dev_eui": AIR_EUI, "fields": {"no2_ugm3": "no2", "pm25_ugm3": "pm25"}},
                "owner": "demo",
                "purpose": "air quality",
            },
            air,
        )
    )
    result.append(
        SimulatedSensor(
            {
                "id": "noise-plaza",
                "name": "Noise, Schiphol Plaza",
                "kind": "noise_laeq",
                "unit": "dB",
                "location": place(111_800.0, 481_170.0, -1.0),
                "device": {"dev_eui": NOISE_EUI, "fields": {"laeq": "noise_laeq"}},
                "owner": "demo",
                "purpose": "noise",
            },
            lambda m: {"noise_laeq": round(48 + 20 * _rhythm(m) + _noise("laeq", m, 2), 1)},
        )
    )
    result.append(
        SimulatedSensor(
            {
                "id": "water-1",
                "name": "Water level, ditch",
                "kind": "water_level",
                "unit": "m",
                "location": place(111_760.0, 481_200.0, -4.5),
                "owner": "demo",
                "purpose": "water level",
            },
            lambda m: {
                "water_level": round(
                    -4.4 + 0.08 * math.sin(m.timestamp() / 21_600) + _noise("w", m, 0.005), 3
                )
            },
        )
    )
    pipe = _water_main()
    result.append(
        SimulatedSensor(
            {
                "id": "ball-1",
                "name": "Sensor ball in the water main",
                "kind": "water_level",
                "unit": "m",
                "owner": "demo",
                "purpose": "pipe inspection",
            },
            lambda m: {"water_level": round(-4.8 + _noise("ball", m, 0.01), 3)},
            lambda m: _along(pipe, place, m),
        )
    )
    return result


def _water_main() -> list[tuple[float, float]]:
    document = json.loads((ASSETS / "cables_pipes.geojson").read_text(encoding="utf-8"))
    for feature in document["features"]:
        if feature["properties"].get("thema") == "water":
            return [(float(x), float(y)) for x, y in feature["geometry"]["coordinates"]]
    raise ValueError("the sample has no water main")


def _along(
    pipe: list[tuple[float, float]], place: Callable[..., list[float]], moment: datetime
) -> list[float]:
    """Where the ball is: it drifts at 0.5 m/s from one end to the other, then starts again."""
    segments = list(itertools.pairwise(pipe))
    lengths = [math.dist(a, b) for a, b in segments]
    distance = (moment.timestamp() * 0.5) % sum(lengths)
    for (a, b), length in zip(segments, lengths, strict=True):
        if distance <= length:
            t = distance / length
            return place(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), GROUND_NAP - 1.2)
        distance -= length
    return place(*pipe[-1], GROUND_NAP - 1.2)


def observations_at(simulated: list[SimulatedSensor], moment: datetime) -> list[dict[str, Any]]:
    items = []
    for sensor in simulated:
        for kind, value in sensor.values(moment).items():
            item: dict[str, Any] = {
                "sensor": sensor.registration["id"],
                "kind": kind,
                "time": moment.isoformat(),
                "value": value,
            }
            if sensor.position is not None:
                item["position"] = sensor.position(moment)
            items.append(item)
    return items


class HttpSink:
    """Registers the sensors (if needed) and posts observations to a server."""

    def __init__(self, server: str, token: str) -> None:
        self._http = httpx.Client(
            base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def register(self, simulated: list[SimulatedSensor]) -> None:
        for sensor in simulated:
            try:
                response = self._http.post("/api/v1/sensors", json=sensor.registration)
            except httpx.HTTPError as exc:
                raise ClientError(f"cannot reach the server: {exc}") from exc
            if response.status_code not in (201, 409):  # 409: registered in an earlier run
                name = sensor.registration["id"]
                raise ClientError(f"registering {name}: {response.status_code} {response.text}")

    def send(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            response = self._http.post("/api/v1/observations", json={"observations": items})
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the server: {exc}") from exc
        if response.status_code != 200:
            raise ClientError(f"sending observations: {response.status_code} {response.text}")
        reply: dict[str, Any] = response.json()
        return reply

    def close(self) -> None:
        self._http.close()


def run(
    sink: HttpSink,
    *,
    interval_s: float = 5.0,
    backfill_hours: float = 0.0,
    iterations: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Register, backfill history at 15-minute steps, then send live values every
    ``interval_s`` until ``stop()`` or ``iterations``; returns how many were accepted."""
    simulated = sensors()
    sink.register(simulated)
    accepted = 0
    now = datetime.now(UTC).replace(microsecond=0)
    if backfill_hours > 0:
        # On the quarter-hour grid, so that running again re-sends the same readings
        # (recognised as duplicates) instead of interleaving new ones.
        step = 900
        start = now - timedelta(hours=backfill_hours)
        moment = datetime.fromtimestamp(math.ceil(start.timestamp() / step) * step, UTC)
        batch: list[dict[str, Any]] = []
        while moment < now:
            batch.extend(observations_at(simulated, moment))
            if len(batch) >= 1000:
                accepted += int(sink.send(batch)["accepted"])
                batch = []
            moment += timedelta(minutes=15)
        if batch:
            accepted += int(sink.send(batch)["accepted"])
    done = 0
    while not stop() and (iterations is None or done < iterations):
        accepted += int(sink.send(observations_at(simulated, datetime.now(UTC)))["accepted"])
        done += 1
        if iterations is None or done < iterations:
            time.sleep(interval_s)
    return accepted
