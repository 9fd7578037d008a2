"""The sensors of ``arserver simulate`` and of the demo: believable data for the demo area
(the Schiphol Plaza samples).

Sensors: six parking bays (occupancy with a daily and weekly rhythm), an air quality sensor
(NO2 with rush-hour peaks, PM2.5) and a noise sensor (LAeq, day and night), both registered with
a LoRaWAN device link, a water level gauge (NAP metres, a slow swell), and a sensor ball drifting
along the sample water main at 0.5 m/s. Locations are ETRS89 [lon, lat, h] (degrees, ellipsoidal
metres), placed from RD New + NAP. Sensors are registered over HTTP; readings go to
``/api/v1/observations`` over HTTP (``HttpSink``) or through an MQTT broker (``MqttSink``): the
LoRaWAN devices as The Things Stack v3 or ChirpStack v4 uplinks, the others on
``arserver/observations``. Values are a deterministic function of time (UTC) plus seeded noise,
so a backfill draws the same history every run.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from arserver.commands.client import ClientError, ServerClient
from tiles.crs import Transformer

ASSETS = Path(__file__).resolve().parents[2] / "assets"
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
    """Registers the sensors (if needed) and posts observations through ``client``, which it
    closes with :meth:`close`."""

    def __init__(self, client: ServerClient) -> None:
        self._client = client

    def register(self, simulated: list[SimulatedSensor]) -> None:
        for sensor in simulated:
            self._client.register_sensor(sensor.registration)  # exists from an earlier run: fine

    def send(self, items: list[dict[str, Any]]) -> int:
        """Post a batch; returns how many the server accepted."""
        return self._client.send_observations(items)

    def close(self) -> None:
        self._client.close()


class MqttSink:
    """Registers the sensors over HTTP through ``client``, then publishes readings to the MQTT
    broker at ``mqtt_url`` (``mqtt://[user:password@]host[:1883]``) with QoS 1, as a LoRaWAN
    network server would: devices with a ``device`` link as ``fmt`` uplinks (``tts`` or
    ``chirpstack``), the others on our own topic."""

    def __init__(self, client: ServerClient, mqtt_url: str, fmt: str = "tts") -> None:
        if fmt not in ("tts", "chirpstack"):
            raise ClientError(f"unknown uplink format {fmt!r}: use tts or chirpstack")
        parsed = urlparse(mqtt_url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ClientError(f"the MQTT URL must look like mqtt://host:1883, got {mqtt_url!r}")
        self._http = HttpSink(client)
        self.format = fmt
        self._devices: dict[str, dict[str, Any]] = {}
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="")
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        try:
            self._client.connect(parsed.hostname, parsed.port or 1883, keepalive=30)
        except OSError as exc:
            broker = f"{parsed.hostname}:{parsed.port or 1883}"  # not the password in the URL
            raise ClientError(f"cannot reach the MQTT broker at {broker}: {exc}") from exc
        self._client.loop_start()

    def register(self, simulated: list[SimulatedSensor]) -> None:
        self._http.register(simulated)
        self._devices = {
            s.registration["id"]: s.registration["device"]
            for s in simulated
            if "device" in s.registration
        }

    def send(self, items: list[dict[str, Any]]) -> int:
        """Publish a batch and wait for the broker's acknowledgements; returns how many
        observations were handed over."""
        messages: list[tuple[str, dict[str, Any]]] = []
        uplinks: dict[tuple[str, str], dict[str, Any]] = {}  # (sensor, time) -> {field: value}
        own: list[dict[str, Any]] = []
        for item in items:
            device = self._devices.get(item["sensor"])
            if device is None:
                own.append(item)
                continue
            field = next(f for f, kind in device["fields"].items() if kind == item["kind"])
            uplinks.setdefault((item["sensor"], item["time"]), {})[field] = item["value"]
        for (sensor, moment), fields in uplinks.items():
            messages.append(uplink(self.format, self._devices[sensor]["dev_eui"], moment, fields))
        if own:
            messages.append(("arserver/observations", {"observations": own}))
        pending = [self._client.publish(t, json.dumps(body), qos=1) for t, body in messages]
        for info in pending:
            try:
                info.wait_for_publish(timeout=30)
            except (RuntimeError, ValueError) as exc:
                raise ClientError(f"publishing to the MQTT broker failed: {exc}") from exc
            if not info.is_published():
                raise ClientError("the MQTT broker did not acknowledge within 30 s")
        return len(items)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
        self._http.close()


def uplink(
    fmt: str, dev_eui: str, moment: str, fields: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(topic, message) of one uplink as The Things Stack v3 or ChirpStack v4 publish it."""
    f_cnt = int(datetime.fromisoformat(moment).timestamp()) // 60 % 65536
    if fmt == "tts":
        return (
            f"v3/arserver-demo@ttn/devices/{dev_eui.lower()}/up",
            {
                "end_device_ids": {
                    "device_id": dev_eui.lower(),
                    "application_ids": {"application_id": "arserver-demo"},
                    "dev_eui": dev_eui,
                },
                "received_at": moment,
                "uplink_message": {
                    "f_port": 1,
                    "f_cnt": f_cnt,
                    "decoded_payload": fields,
                    "rx_metadata": [{"gateway_ids": {"gateway_id": "demo-gw-1"}, "rssi": -97}],
                    "received_at": moment,
                },
            },
        )
    return (
        f"application/arserver-demo/device/{dev_eui.lower()}/event/up",
        {
            "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dev_eui}/{moment}")),
            "time": moment,
            "deviceInfo": {
                "applicationId": "arserver-demo",
                "deviceName": dev_eui.lower(),
                "devEui": dev_eui.lower(),
            },
            "fCnt": f_cnt,
            "fPort": 1,
            "object": fields,
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -97}],
        },
    )


class Sink(Protocol):
    def register(self, simulated: list[SimulatedSensor]) -> None: ...

    def send(self, items: list[dict[str, Any]]) -> int: ...


def run(
    sink: Sink,
    *,
    interval_s: float = 5.0,
    backfill_hours: float = 0.0,
    iterations: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Register, backfill history at 15-minute steps, then send live values every
    ``interval_s`` until ``stop()`` or ``iterations``; returns how many the sink took (HTTP:
    accepted by the server; MQTT: acknowledged by the broker)."""
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
                accepted += sink.send(batch)
                batch = []
            moment += timedelta(minutes=15)
        if batch:
            accepted += sink.send(batch)
    done = 0
    while not stop() and (iterations is None or done < iterations):
        accepted += sink.send(observations_at(simulated, datetime.now(UTC)))
        done += 1
        if iterations is None or done < iterations:
            time.sleep(interval_s)
    return accepted
