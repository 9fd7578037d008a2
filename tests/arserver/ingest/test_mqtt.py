"""LoRaWAN uplinks (The Things Stack v3, ChirpStack v4) and our own topic through the real
Mosquitto on 127.0.0.1:1883: stored once, bad messages counted, the consumer keeps going."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DataError, OperationalError

from arserver.app import create_app
from arserver.config import Settings
from arserver.ingest.lorawan import from_chirpstack, from_tts, items_for
from arserver.ingest.mqtt import OWN_TOPIC, MqttIngest
from arserver.services.observations import IngestResult, ObservationWriter
from arserver.store.database import open_database
from arserver.store.schema import observations
from arserver.store.sensors import create_sensor, ingest_counts
from tests.arserver.processes import Mosquitto
from tests.support import wait_until

DEV_EUI = "0004A30B001C0530"


def tts_uplink(received_at: str, no2: float) -> dict[str, Any]:
    return {
        "end_device_ids": {
            "device_id": "air-1",
            "dev_eui": DEV_EUI,
            "application_ids": {"application_id": "city"},
        },
        "received_at": received_at,
        "uplink_message": {
            "f_cnt": 42,
            "received_at": received_at,
            "decoded_payload": {"no2_ugm3": no2, "pm25": 11.5, "battery": 3.6},
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}}],
            "locations": {"user": {"latitude": 52.3095, "longitude": 4.7610, "altitude": 43.5}},
        },
    }


def chirpstack_uplink(time_: str, no2: float) -> dict[str, Any]:
    return {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": time_,
        "deviceInfo": {"devEui": DEV_EUI.lower(), "deviceName": "air-1"},
        "object": {"no2_ugm3": no2},
        "fCnt": 43,
        "rxInfo": [{"gatewayId": "0016c001f153a14c"}],
    }


def test_tts_uplink_becomes_items_for_the_mapped_fields() -> None:
    uplink = from_tts(tts_uplink("2026-11-27T10:00:00.123Z", 38.5))
    assert uplink.dev_eui == DEV_EUI
    assert uplink.position == [4.761, 52.3095, 43.5]
    items = items_for(uplink, "air-1", {"no2_ugm3": "no2", "pm25": "pm25", "absent": "humidity"})
    assert [(i["kind"], i["value"]) for i in items] == [("no2", 38.5), ("pm25", 11.5)]
    assert all(i["time"] == "2026-11-27T10:00:00.123Z" for i in items)


def test_chirpstack_uplink_is_read() -> None:
    uplink = from_chirpstack(chirpstack_uplink("2026-11-27T10:05:00Z", 40.0))
    assert (uplink.dev_eui, uplink.fields, uplink.time) == (
        DEV_EUI,
        {"no2_ugm3": 40.0},
        "2026-11-27T10:05:00Z",
    )


def broker_available() -> None:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is required under CI: {exc}")
        pytest.skip(f"Mosquitto not available on 127.0.0.1:1883: {exc}")


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar_one())


def test_uplinks_through_the_broker_are_stored_once(engine: Engine) -> None:
    broker_available()
    create_sensor(
        engine,
        {
            "id": "air-1",
            "name": "Air 1",
            "dev_eui": DEV_EUI,
            "device_fields": {"no2_ugm3": "no2", "pm25": "pm25"},
        },
        [("no2", "ug/m3"), ("pm25", "ug/m3")],
    )
    consumer = MqttIngest(
        ObservationWriter(engine),
        "mqtt://127.0.0.1:1883",
        client_id=f"arserver-test-{uuid.uuid4().hex[:8]}",
    )
    consumer.start()
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"arserver-test-pub-{uuid.uuid4().hex[:8]}"
    )
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        publisher.connect("127.0.0.1", 1883)
        publisher.loop_start()
        app = f"city-{uuid.uuid4().hex[:6]}"
        first = json.dumps(tts_uplink("2026-11-27T10:00:00Z", 38.5))
        messages = [
            (f"v3/{app}@ttn/devices/air-1/up", first),
            (f"v3/{app}@ttn/devices/air-1/up", first),  # delivered again: a duplicate
            (
                f"application/{app}/device/{DEV_EUI.lower()}/event/up",
                json.dumps(chirpstack_uplink("2026-11-27T10:05:00Z", 40.0)),
            ),
            (f"v3/{app}@ttn/devices/air-1/up", "{not json"),
            (
                f"v3/{app}@ttn/devices/other/up",
                json.dumps(
                    {
                        **tts_uplink("2026-11-27T10:00:00Z", 1.0),
                        "end_device_ids": {"dev_eui": "FFFFFFFFFFFFFFFF"},
                    }
                ),
            ),
            (
                "arserver/observations",
                json.dumps(
                    {
                        "observations": [
                            {
                                "sensor": "air-1",
                                "kind": "no2",
                                "time": "2026-11-27T10:10:00Z",
                                "value": 41.0,
                            }
                        ]
                    }
                ),
            ),
        ]
        # A marker last: the broker delivers one publisher's messages in order and the consumer
        # stores them in order, so once the marker is counted everything before it is too.
        marker = {
            "observations": [{"sensor": "marker", "time": "2026-11-27T10:11:00Z", "value": 0}]
        }
        for topic, payload in [*messages, ("arserver/observations", json.dumps(marker))]:
            publisher.publish(topic, payload, qos=1).wait_for_publish(10)
        wait_until(
            lambda: ingest_counts(engine).get("unknown_sensor") == 1, 20, "the marker message"
        )
        assert stored(engine) == 4  # no2 + pm25 from TTS, no2 from ChirpStack, no2 from our topic
        counts = ingest_counts(engine)
        assert counts["accepted"] == 4
        assert counts["duplicate"] == 2
        assert counts["malformed"] == 1
        assert counts["unknown_device"] == 1
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        consumer.stop()


# -- poison messages, outages and a consumer that stops ------------------------------------


class Fragile(ObservationWriter):
    """The real writer, except that a batch holding the value 13 raises ``error``: a message
    that trips a bug (or a refusal of the database) somewhere on the write path."""

    def __init__(self, engine: Engine, error: BaseException) -> None:
        super().__init__(engine)
        self.error = error

    def write(
        self, items: list[Any], now: datetime | None = None, *, counted: Counter[str] | None = None
    ) -> IngestResult:
        if any(isinstance(i, dict) and i.get("value") == 13 for i in items):
            raise self.error
        return super().write(items, now, counted=counted)


class Unreachable(ObservationWriter):
    """The real writer, except that the first ``failures`` writes raise ``error`` (as a lock
    held a little too long does)."""

    def __init__(self, engine: Engine, failures: int, error: Exception) -> None:
        super().__init__(engine)
        self.failures = failures
        self.error = error

    def write(
        self, items: list[Any], now: datetime | None = None, *, counted: Counter[str] | None = None
    ) -> IngestResult:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return super().write(items, now, counted=counted)


class Publisher:
    """A QoS 1 publisher that waits for the broker's acknowledgement of each message."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"arserver-test-pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, body: Any) -> None:
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)

    def observe(self, sensor: str, minute: int, value: Any) -> None:
        time_ = f"2026-11-27T10:{minute:02d}:00Z"
        self.send(OWN_TOPIC, {"observations": [{"sensor": sensor, "time": time_, "value": value}]})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def values(engine: Engine) -> list[float]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(observations.c.value)).scalars())


def device_sensor(engine: Engine) -> None:
    create_sensor(
        engine,
        {"id": "air-1", "name": "Air 1", "dev_eui": DEV_EUI, "device_fields": {"no2_ugm3": "no2"}},
        [("no2", "ug/m3")],
    )


def marked(engine: Engine, publisher: Publisher, number: int) -> None:
    """Publish a marker and wait until it is counted (``unknown_sensor`` reaches ``number``):
    the broker delivers in order, so everything published or redelivered before it is done."""
    publisher.observe("marker", 59, 0)
    wait_until(
        lambda: ingest_counts(engine).get("unknown_sensor") == number, 20, f"marker {number}"
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own that keeps sessions, as deployed (docs/sensors.md)."""
    own = Mosquitto(tmp_path / "broker")
    own.start()
    yield own
    own.stop()


def test_a_poison_uplink_is_counted_acknowledged_and_never_redelivered(
    engine: Engine, broker: Mosquitto
) -> None:
    device_sensor(engine)
    topic = "v3/city@ttn/devices/air-1/up"
    publisher = Publisher(broker.port)
    consumer = MqttIngest(ObservationWriter(engine), broker.url, client_id="poison-consumer")
    consumer.start()
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        # UTC of this time is before year 1: OverflowError in the time check
        publisher.send(topic, tts_uplink("0001-01-01T00:00:00+01:00", 38.5))
        publisher.send(topic, tts_uplink("2026-11-27T10:00:00Z", 39.5))
        wait_until(lambda: values(engine) == [39.5], 20, "the good uplink stored")
        marked(engine, publisher, 1)
        assert ingest_counts(engine) == {"accepted": 1, "bad_time": 1, "unknown_sensor": 1}
        assert consumer.state == "subscribed"
        consumer.stop()
        # The same session again: whatever was not acknowledged would come back now.
        consumer = MqttIngest(ObservationWriter(engine), broker.url, client_id="poison-consumer")
        consumer.start()
        assert consumer.connected.wait(10), "the consumer did not reconnect"
        marked(engine, publisher, 2)
        assert ingest_counts(engine) == {"accepted": 1, "bad_time": 1, "unknown_sensor": 2}
    finally:
        publisher.close()
        consumer.stop()


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug on the write path"),
        DataError("INSERT INTO observations", {}, Exception("invalid byte sequence")),
    ],
    ids=["bug", "refused-by-the-database"],
)
def test_a_message_the_writer_chokes_on_is_isolated_and_acknowledged(
    engine: Engine, broker: Mosquitto, error: Exception
) -> None:
    create_sensor(engine, {"id": "s1", "name": "S1"}, [("no2", "ug/m3")])
    publisher = Publisher(broker.port)
    consumer = MqttIngest(Fragile(engine, error), broker.url, client_id="fragile-consumer")
    # Queued for the session while the consumer is away, so that they arrive as one batch.
    consumer.start()
    assert consumer.connected.wait(10), "the consumer did not connect"
    consumer.stop()
    try:
        for minute, value in enumerate([1, 13, 2, 3]):
            publisher.observe("s1", minute, value)
        consumer = MqttIngest(Fragile(engine, error), broker.url, client_id="fragile-consumer")
        consumer.start()
        marked(engine, publisher, 1)
        assert values(engine) == [1, 2, 3]
        assert ingest_counts(engine) == {"accepted": 3, "malformed": 1, "unknown_sensor": 1}
        assert consumer.state == "subscribed"
        consumer.stop()
        consumer = MqttIngest(Fragile(engine, error), broker.url, client_id="fragile-consumer")
        consumer.start()
        marked(engine, publisher, 2)
        assert ingest_counts(engine)["malformed"] == 1  # not delivered again
    finally:
        publisher.close()
        consumer.stop()


def test_while_the_database_is_away_the_batch_waits_and_is_stored_after(
    postgres_url: str, tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="arserver.ingest.mqtt")
    name = postgres_url.rsplit("/", 1)[1]
    engine = open_database(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    create_sensor(engine, {"id": "s1", "name": "S1"}, [("no2", "ug/m3")])
    publisher = Publisher(broker.port)
    consumer = MqttIngest(ObservationWriter(engine), broker.url, client_id="patient-consumer")
    consumer.start()
    # The database the test fixtures administer from (tests/arserver/conftest.py).
    admin = psycopg.connect(
        os.environ.get("ARSERVER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        autocommit=True,
    )
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        publisher.observe("s1", 0, 7)
        wait_until(
            lambda: any("retrying" in r.getMessage() for r in caplog.records),
            20,
            "the consumer waiting for the database",
        )
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        marked(engine, publisher, 1)
        assert values(engine) == [7]
        assert ingest_counts(engine) == {"accepted": 1, "unknown_sensor": 1}
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        publisher.close()
        consumer.stop()
        engine.dispose()


def test_an_outage_like_error_while_the_database_answers_is_tried_again(
    engine: Engine, broker: Mosquitto
) -> None:
    create_sensor(engine, {"id": "s1", "name": "S1"}, [("no2", "ug/m3")])
    publisher = Publisher(broker.port)
    locked = OperationalError("INSERT INTO observations", {}, Exception("database is locked"))
    writer = Unreachable(engine, 2, locked)
    consumer = MqttIngest(writer, broker.url, client_id="patient-consumer")
    consumer.start()
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        publisher.observe("s1", 0, 7)
        marked(engine, publisher, 1)
        assert writer.failures == 0
        assert values(engine) == [7]
        assert ingest_counts(engine) == {"accepted": 1, "unknown_sensor": 1}
    finally:
        publisher.close()
        consumer.stop()


def test_a_consumer_thread_that_dies_says_stopped(engine: Engine, broker: Mosquitto) -> None:
    publisher = Publisher(broker.port)
    consumer = MqttIngest(
        Fragile(engine, SystemExit("gone")), broker.url, client_id="dying-consumer"
    )
    consumer.start()
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        assert consumer.state == "subscribed"
        publisher.observe("s1", 0, 13)
        wait_until(lambda: consumer.state == "stopped", 20, "the consumer reported stopped")
    finally:
        publisher.close()
        consumer.stop()


def test_readyz_fails_once_the_mqtt_consumer_stopped(settings: Settings, broker: Mosquitto) -> None:
    with TestClient(create_app(settings.model_copy(update={"mqtt_url": broker.url}))) as client:

        def subscribed() -> bool:
            reply = client.get("/readyz")
            return reply.status_code == 200 and reply.json()["mqtt"] == "subscribed"

        wait_until(subscribed, 20, "the server's MQTT subscriptions")
        client.app.state.mqtt.stop()  # type: ignore[attr-defined]
        reply = client.get("/readyz")
        assert reply.status_code == 503, reply.text
        assert reply.json()["mqtt"] == "stopped"
