"""An independent SensorThings client, ``frost-sta-client`` (Fraunhofer IOSB, from PyPI), reads
back through a running ``arserver serve`` what was ingested over HTTP and over MQTT (through a
Mosquitto broker of the test's own)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import frost_sta_client as fsc
import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from tests.arserver.processes import Mosquitto, ServerProcess
from tests.support import wait_until

HTTP_READINGS = [("2026-11-30T10:00:00Z", 41.0), ("2026-11-30T10:10:00Z", 43.5)]
MQTT_READINGS = [("2026-11-30T10:20:00Z", 39.0), ("2026-11-30T10:30:00Z", 44.25)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    data = tmp_path / "data"
    engine = open_database(Settings(data_dir=data))
    secret = create_token(engine, "gis")[0]
    engine.dispose()
    process = ServerProcess(
        {"ARSERVER_DATA_DIR": str(data), "ARSERVER_MQTT_URL": broker.url,
         "ARSERVER_RAW_RETENTION_DAYS": "none"},
        tmp_path / "server.log",
    )  # fmt: skip
    try:
        process.start()
        yield process, secret
    finally:
        process.stop()
        broker.stop()


# frost-sta-client 1.1.53 calls a furl function that furl deprecates.
@pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")
def test_frost_client_reads_things_datastreams_and_observations(
    server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    process, secret = server
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=process.url, headers=headers, timeout=10) as api:
        sensor = {
            "id": "air-frost", "name": "Air quality, Museumplein", "kind": "no2",
            "unit": "ug/m3", "location": [4.8811, 52.3579, 44.0], "public": True,
        }  # fmt: skip
        assert api.post("/api/v1/sensors", json=sensor).status_code == 201
        items = [{"sensor": "air-frost", "time": t, "value": v} for t, v in HTTP_READINGS]
        assert (
            api.post("/api/v1/observations", json={"observations": items}).json()["accepted"] == 2
        )
        publish(process, MQTT_READINGS)
        wait_until(
            lambda: (
                len(api.get("/api/v1/sensors/air-frost/observations").json()["observations"]) == 4
            ),
            20,
            "the MQTT readings stored",
        )
    service = fsc.SensorThingsService(f"{process.url}/sta/v1.1")
    things = list(service.things().query().filter("name eq 'Air quality, Museumplein'").list())
    assert [t.name for t in things] == ["Air quality, Museumplein"]
    datastreams = list(things[0].get_datastreams().query().list())
    assert [d.unit_of_measurement.symbol for d in datastreams] == ["ug/m3"]
    observations = datastreams[0].get_observations().query().orderby("phenomenonTime", "asc")
    read = [(o.phenomenon_time, o.result) for o in observations.top(2).list()]  # pages of 2
    expected = HTTP_READINGS + MQTT_READINGS
    assert [result for _, result in read] == [value for _, value in expected]
    assert [time[:19] for time, _ in read] == [t[:19] for t, _ in expected]


def publish(process: ServerProcess, readings: list[tuple[str, float]]) -> None:
    """Our own topic through the server's broker, QoS 1."""
    url = process.env["ARSERVER_MQTT_URL"]
    port = int(url.rsplit(":", 1)[1])
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="frost-test-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for time, value in readings:
            body = {"observations": [{"sensor": "air-frost", "time": time, "value": value}]}
            client.publish("arserver/observations", json.dumps(body), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
