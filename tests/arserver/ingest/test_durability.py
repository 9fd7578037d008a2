"""Acknowledged observations survive: the server killed with SIGKILL during HTTP batches or an
MQTT burst, and the broker restarted during a burst. Real processes, real Mosquitto, SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from arserver.config import Settings
from arserver.ingest.mqtt import OWN_TOPIC, MqttIngest
from arserver.security.tokens import create_token
from arserver.services.observations import ObservationWriter
from arserver.store.database import open_database
from arserver.store.schema import observations
from arserver.store.sensors import create_sensor
from tests.arserver.processes import Mosquitto, ServerProcess
from tests.support import wait_until

START = datetime(2026, 11, 1, tzinfo=UTC)


def item(n: int) -> dict[str, Any]:
    """Observation number ``n``: a distinct time, so every number is one row."""
    return {"sensor": "s1", "time": (START + timedelta(seconds=n)).isoformat(), "value": n % 500}


def stored_numbers(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        times = connection.execute(select(observations.c.time)).scalars().all()
    return sorted(
        int((t - START).total_seconds())
        for t in times  # times read back are aware UTC
    )


def prepare(settings: Settings) -> tuple[Engine, str]:
    engine = open_database(settings)
    create_sensor(engine, {"id": "s1", "name": "S1"}, [("no2", "ug/m3")])
    secret, _ = create_token(engine, "ingest")
    return engine, secret


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {"ARSERVER_DATA_DIR": str(settings.data_dir), **extra}
    if settings.database_url:
        env["ARSERVER_DATABASE_URL"] = settings.database_url
    return env


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    wait_until(condition, timeout_s, what)


def mqtt_subscribed(server: ServerProcess) -> bool:
    """Whether the server's MQTT consumer has its subscriptions confirmed (``/readyz``)."""
    try:
        with httpx.Client(timeout=2) as client:
            return bool(client.get(f"{server.url}/readyz").json().get("mqtt") == "subscribed")
    except httpx.HTTPError:
        return False


def test_http_batches_acknowledged_before_a_sigkill_are_all_stored_once(
    settings: Settings, tmp_path: Path
) -> None:
    engine, secret = prepare(settings)
    server = ServerProcess(server_env(settings), tmp_path / "server.log")
    server.start()
    acknowledged: list[list[int]] = []
    unanswered: list[list[int]] = []
    batch_size = 200

    def send() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
            for k in range(1000):
                numbers = list(range(k * batch_size, (k + 1) * batch_size))
                try:
                    reply = http.post(
                        f"{server.url}/api/v1/observations",
                        json={"observations": [item(n) for n in numbers]},
                    )
                except httpx.HTTPError:
                    unanswered.append(numbers)
                    return
                assert reply.status_code == 200, reply.text
                acknowledged.append(numbers)

    client = threading.Thread(target=send)
    try:
        client.start()
        wait_for(lambda: len(acknowledged) >= 5, 60, "five acknowledged batches")
        server.kill()
        client.join(timeout=60)
        assert unanswered, "the kill should have cut a batch short"
        # Every acknowledged observation is there, whatever happened to the cut batch.
        on_disk = set(stored_numbers(engine))
        assert {n for batch in acknowledged for n in batch} <= on_disk
        server.start()
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
            for batch in (acknowledged[-1], unanswered[0]):  # a retry of each kind
                reply = http.post(
                    f"{server.url}/api/v1/observations",
                    json={"observations": [item(n) for n in batch]},
                ).json()
                assert reply["accepted"] + reply["duplicate"] == batch_size
                assert reply["rejected"] == 0
            assert reply["accepted"] < batch_size or unanswered[0][0] not in on_disk
    finally:
        server.stop()
    sent = {n for batch in acknowledged + unanswered for n in batch}
    assert stored_numbers(engine) == sorted(sent)  # all of them, none twice
    engine.dispose()


class Publisher:
    """A device-side MQTT client with a persistent session: it resends what the broker has not
    acknowledged after a reconnect, and records what the broker acknowledged."""

    def __init__(self, port: int) -> None:
        self.acknowledged: set[int] = set()
        self._numbers: dict[int, int] = {}  # message id -> observation number
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"publisher-{uuid.uuid4().hex[:8]}",
            clean_session=False,
            reconnect_on_failure=True,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            if mid in self._numbers:
                self.acknowledged.add(self._numbers.pop(mid))
            else:  # acknowledged before publish() returned its id
                self._early.add(mid)

    def publish(self, n: int) -> None:
        # Not under our lock: paho calls on_publish holding its own lock.
        info = self.client.publish(OWN_TOPIC, json.dumps({"observations": [item(n)]}), qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acknowledged.add(n)
            else:
                self._numbers[info.mid] = n

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_broker_restart_during_a_burst_loses_no_acknowledged_message(
    settings: Settings, tmp_path: Path
) -> None:
    engine, _ = prepare(settings)
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    consumer = MqttIngest(ObservationWriter(engine), broker.url, client_id="durability-consumer")
    consumer.start()
    publisher = None
    total = 3000
    try:
        assert consumer.connected.wait(10)
        publisher = Publisher(broker.port)
        for n in range(total):
            publisher.publish(n)
            if n == total // 3:
                wait_for(lambda: len(publisher.acknowledged) > total // 4, 30, "acks")
                broker.stop()  # mid-burst; the publisher keeps queueing while it is away
                before = set(publisher.acknowledged)
                broker.start()
        wait_for(lambda: len(publisher.acknowledged) == total, 60, "every publish acknowledged")
        # (datastream, time) is unique: nothing can arrive twice, so a full count is the end.
        wait_for(lambda: len(stored_numbers(engine)) >= total, 60, "every observation stored")
        assert before <= set(stored_numbers(engine))
        assert stored_numbers(engine) == list(range(total))
    finally:
        if publisher is not None:
            publisher.close()
        consumer.stop()
        broker.stop()
        engine.dispose()


def test_a_server_killed_during_an_mqtt_burst_loses_no_acknowledged_message(
    settings: Settings, tmp_path: Path
) -> None:
    engine, _ = prepare(settings)
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    server = ServerProcess(server_env(settings, ARSERVER_MQTT_URL=broker.url), tmp_path / "log")
    publisher = None
    total = 3000
    try:
        server.start()
        wait_for(lambda: mqtt_subscribed(server), 30, "the server's MQTT subscriptions")
        publisher = Publisher(broker.port)
        for n in range(total):
            publisher.publish(n)
            if n == total // 3:
                wait_for(lambda: len(stored_numbers(engine)) > total // 4, 60, "some stored")
                server.kill()  # its unacknowledged messages stay with the broker
        wait_for(lambda: len(publisher.acknowledged) == total, 60, "every publish acknowledged")
        server.start()
        wait_for(lambda: len(stored_numbers(engine)) >= total, 60, "every observation stored")
        assert stored_numbers(engine) == list(range(total))
    finally:
        if publisher is not None:
            publisher.close()
        server.stop()
        broker.stop()
        engine.dispose()
