"""Two ``arserver ingest`` processes in one MQTT 5 shared subscription through a real
Mosquitto: 20,000 uplinks are each stored once, also when one consumer is killed with SIGKILL
in the middle of the burst and comes back under its own client id (its persistent session
holds what it had not acknowledged); a consumer that leaves the group for good
(``--leave``) takes its share with it, so that none waits for it. On PostgreSQL, as deployed."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from arserver.config import Settings
from arserver.ingest.mqtt import OWN_TOPIC
from arserver.store.database import open_database
from arserver.store.schema import observations
from arserver.store.sensors import create_sensor
from tests.arserver.processes import Mosquitto
from tests.arserver.support import arserver_command, settings_env
from tests.support import wait_until

BACKENDS = ("postgresql",)
UPLINKS = 20_000


class Consumer:
    """``arserver ingest`` with its own client id, in the shared group ``g``."""

    def __init__(self, settings: Settings, broker: Mosquitto, client_id: str, log: Path) -> None:
        self.env = {
            **settings_env(settings), "ARSERVER_MQTT_URL": broker.url,
            "ARSERVER_MQTT_SHARED_GROUP": "g",
        }  # fmt: skip
        self.client_id = client_id
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.write_bytes(b"")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [arserver_command(), "ingest", "--client-id", self.client_id],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: b": subscribed" in self.log.read_bytes(), 30, f"{self.client_id} up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar_one())


def publish_burst(port: int, count: int, offset: int = 0) -> None:
    """``count`` uplinks on our own topic, QoS 1, each with a distinct time and value (NO2
    from 0 to 200 ug/m3)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        pending = []
        for k in range(offset, offset + count):
            second, micro = divmod(k, 1000)
            moment = f"2026-12-01T10:{second // 60:02d}:{second % 60:02d}.{micro:03d}000Z"
            item = {"sensor": "s1", "time": moment, "value": k / 100}
            body = json.dumps({"observations": [item]})
            pending.append(client.publish(OWN_TOPIC, body, qos=1))
            if len(pending) >= 500:
                for info in pending:
                    info.wait_for_publish(30)
                pending = []
        for info in pending:
            info.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()


def settle(engine: Engine, deadline_s: float = 60) -> int:
    """The number of stored observations once it stops growing (no change for a second)."""
    deadline = time.monotonic() + deadline_s
    last, since = stored(engine), time.monotonic()
    while time.monotonic() - since < 1.0:
        assert time.monotonic() < deadline, "the store kept growing"
        time.sleep(0.1)
        now = stored(engine)
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.fixture
def broker(tmp_path: Path) -> Mosquitto:
    own = Mosquitto(tmp_path / "broker")
    own.start()
    yield own  # type: ignore[misc]
    own.stop()


def test_two_consumers_store_each_uplink_once_even_when_one_is_killed(
    settings: Settings, broker: Mosquitto, tmp_path: Path
) -> None:
    engine = open_database(settings)
    consumers = [
        Consumer(settings, broker, f"ingest-{n}", tmp_path / f"ingest-{n}.log") for n in (1, 2)
    ]
    try:
        create_sensor(engine, {"id": "s1", "name": "S1"}, [("no2", "ug/m3")])
        for consumer in consumers:
            consumer.start()
        burst = threading.Thread(target=publish_burst, args=(broker.port, UPLINKS))
        burst.start()
        wait_until(lambda: stored(engine) >= 3_000, 60, "both consumers at work")
        consumers[1].kill()  # in the middle of the burst, with messages in flight
        killed_at = stored(engine)
        assert killed_at < UPLINKS
        burst.join(120)
        assert not burst.is_alive()
        settled = settle(engine)  # the other consumer has stored all it was given
        assert killed_at < settled < UPLINKS  # the rest waits in the killed one's session
        consumers[1].start()  # back under its own client id: its session held the rest
        wait_until(lambda: stored(engine) >= UPLINKS, 120, "every uplink stored")
        with engine.connect() as connection:
            values = connection.execute(select(observations.c.value)).scalars().all()
        assert len(values) == UPLINKS
        assert sorted(values) == [k / 100 for k in range(UPLINKS)]  # each one once

        # One consumer fewer: ingest-2 stops, and leaves for good; ingest-1 takes everything.
        consumers[1].stop()
        left = subprocess.run(
            [arserver_command(), "ingest", "--client-id", "ingest-2", "--leave"],
            env=consumers[1].env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert left.returncode == 0, left.stderr
        assert "left, after storing" in left.stdout
        publish_burst(broker.port, 400, offset=UPLINKS)
        wait_until(lambda: stored(engine) >= UPLINKS + 400, 60, "the rest by ingest-1 alone")
    finally:
        for consumer in consumers:
            consumer.stop()
        engine.dispose()
