"""LoRaWAN uplinks (The Things Stack v3, ChirpStack v4) and our own topic through the real
Mosquitto on 127.0.0.1:1883: stored once, bad messages counted, the consumer keeps going."""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from arserver.ingest.lorawan import from_chirpstack, from_tts, items_for
from arserver.ingest.mqtt import MqttIngest
from arserver.services.observations import ObservationWriter
from arserver.store.schema import observations
from arserver.store.sensors import create_sensor, ingest_counts
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
