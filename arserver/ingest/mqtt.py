"""MQTT ingest: The Things Stack, ChirpStack and our own JSON topic, through the real broker.

A persistent session (fixed client id, clean session off) and QoS 1 subscriptions: the broker
keeps messages for us while we are away. Each message is acknowledged only after its
observations are committed (paho's manual acknowledgement), so a crash before the commit means
the broker delivers it again, and the duplicate is recognised. A bad message is counted by cause
and acknowledged; it never stops the consumer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from arserver.ingest.lorawan import Uplink, UplinkError, from_chirpstack, from_tts, items_for
from arserver.ingest.service import IngestResult, ingest
from arserver.store.sensors import count_causes, sensor_for_device

log = logging.getLogger(__name__)

TTS_TOPIC = "v3/+/devices/+/up"
CHIRPSTACK_TOPIC = "application/+/device/+/event/up"
OWN_TOPIC = "arserver/observations"


class MqttIngest:
    """Consumes uplinks from ``url`` (``mqtt://host:port``) into the database."""

    def __init__(self, engine: Engine, url: str, client_id: str = "arserver-ingest") -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"ARSERVER_MQTT_URL must look like mqtt://host:1883, got {url!r}")
        self.engine = engine
        self.host = parsed.hostname
        self.port = parsed.port or 1883
        self.connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        client.subscribe([(TTS_TOPIC, 1), (CHIRPSTACK_TOPIC, 1), (OWN_TOPIC, 1)])
        self.connected.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:  # the database is down: leave it unacknowledged, to be delivered again
            log.exception(
                "could not store the message on %s; it stays unacknowledged", message.topic
            )
            return
        client.ack(message.mid, message.qos)

    def handle(self, topic: str, payload: bytes) -> IngestResult | None:
        """Store one message's observations; counts what it could not use."""
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._count("malformed")
            return None
        if topic == OWN_TOPIC:
            items = body.get("observations") if isinstance(body, dict) else None
            if not isinstance(items, list):
                self._count("malformed")
                return None
            return ingest(self.engine, items)
        try:
            uplink = from_tts(body) if topic.startswith("v3/") else from_chirpstack(body)
        except (UplinkError, TypeError, ValueError):
            self._count("malformed")
            return None
        return self._ingest_uplink(uplink)

    def _ingest_uplink(self, uplink: Uplink) -> IngestResult | None:
        device = sensor_for_device(self.engine, uplink.dev_eui)
        if device is None:
            self._count("unknown_device")
            return None
        sensor_id, field_kinds = device
        items = items_for(uplink, sensor_id, field_kinds)
        if not items:
            self._count("no_mapped_fields")
            return None
        return ingest(self.engine, items)

    def _count(self, cause: str) -> None:
        with self.engine.begin() as connection:
            count_causes(connection, Counter({cause: 1}))
