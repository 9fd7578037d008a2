"""Two `arserver serve` processes sharing PostgreSQL and the real Redis: an observation posted to
one reaches a live subscriber on the other, and a client that reconnects to the other process
resumes its session without a gap or a duplicate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from arserver.config import Settings
from arserver.live.mirror import session_key, unseal
from tests.arserver.processes import ServerProcess
from tests.arserver.support import next_message, readings, receive, tokens_for
from tests.support import wait_until

BBOX = [4.89, 52.36, 4.91, 52.38]


class Pair:
    def __init__(self, postgres_url: str, redis_url: str, folder: Path) -> None:
        settings = Settings(data_dir=folder, database_url=postgres_url)
        self.gis, self.viewer = tokens_for(settings, "gis", "viewer")
        self.redis = redis.Redis.from_url(redis_url)
        env = {
            "ARSERVER_DATABASE_URL": postgres_url,
            "ARSERVER_REDIS_URL": redis_url,
            "ARSERVER_DATA_DIR": str(folder),
        }
        self.servers = [ServerProcess(env, folder / f"server-{k}.log") for k in range(2)]
        for server in self.servers:
            server.start()
        self.http = httpx.Client(headers={"Authorization": f"Bearer {self.gis}"}, timeout=30)

    def register(self, server: int, sensor_id: str, lon: float) -> None:
        reply = self.http.post(
            f"{self.servers[server].url}/api/v1/sensors",
            json={"id": sensor_id, "name": sensor_id, "kind": "no2", "unit": "ug/m3",
                  "location": [lon, 52.37]},
        )  # fmt: skip
        assert reply.status_code == 201, reply.text

    def observe(self, server: int, *values: tuple[str, float]) -> None:
        items = readings(*values)
        reply = self.http.post(
            f"{self.servers[server].url}/api/v1/observations", json={"observations": items}
        )
        assert reply.json()["accepted"] == len(items), reply.text

    def connect(self, server: int, query: str = "") -> ClientConnection:
        url = self.servers[server].url.replace("http://", "ws://")
        return connect(f"{url}/api/v1/live?access_token={self.viewer}{query}", open_timeout=10)

    def wait_mirrored(self, session: str, seq: int) -> None:
        """Wait until the session's mirror in Redis stands at ``seq``, with the message of that
        seq in its sent list: what a process writes there comes in batches, every 20 ms."""

        def mirrored() -> bool:
            stored = self.redis.hget(session_key(session), "seq")
            newest = self.redis.lrange(session_key(session) + ":sent", -1, -1)
            return (
                stored == str(seq).encode()
                and bool(newest)
                and json.loads(unseal(session, "sent", newest[0]))[0] == seq
            )

        wait_until(mirrored, 10, f"live session {session} mirrored at seq {seq}")

    def close(self) -> None:
        self.http.close()
        self.redis.close()
        for server in self.servers:
            server.stop()


@pytest.fixture
def pair(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Pair]:
    running = Pair(postgres_url, redis_url, tmp_path)
    yield running
    running.close()


def subscribe(ws: ClientConnection) -> dict[str, Any]:
    receive(ws, "welcome")
    ws.send(
        json.dumps({"type": "subscribe", "id": "a", "area": {"bbox": BBOX}, "max_rate_hz": None})
    )
    return receive(ws, "snapshot")


def test_an_observation_posted_to_one_process_reaches_a_subscriber_on_the_other(
    pair: Pair,
) -> None:
    pair.register(0, "s0", 4.9)
    with pair.connect(1) as ws:
        subscribe(ws)
        pair.observe(0, ("s0", 12.5))
        update = receive(ws, "update")
        assert [(i["key"], i["data"]["value"]) for i in update["items"]] == [
            ("sensor:s0:no2", 12.5)
        ]


def test_a_client_resumes_on_the_other_process_without_gap_or_duplicate(pair: Pair) -> None:
    for k in range(3):
        pair.register(0, f"s{k}", 4.9 + k * 1e-4)
    with pair.connect(0) as ws:
        session = receive(ws, "welcome")["session"]
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "a", "area": {"bbox": BBOX}, "max_rate_hz": None}
            )
        )
        receive(ws, "snapshot")
        seen = []
        for k in range(3):
            pair.observe(0, (f"s{k}", float(k)))
            seen.append(receive(ws, "update"))
    pair.wait_mirrored(session, seen[-1]["seq"])  # process 0 wrote all it sent to Redis
    last_seq = seen[0]["seq"]  # the client processed only the first update
    pair.observe(1, ("s0", 10.0), ("s1", 11.0))  # while it was away, through the other process
    with pair.connect(1, f"&session={session}&last_seq={last_seq}") as ws:
        welcome = receive(ws, "welcome")
        assert welcome["recovered"] is True
        assert welcome["session"] == session
        got = [receive(ws, "update"), receive(ws, "update")]
        assert got == seen[1:]  # the sent-but-unread messages, as they were
        values: dict[str, float] = {}
        while set(values) != {"sensor:s0:no2", "sensor:s1:no2"}:
            got.append(receive(ws, "update"))
            values |= {i["key"]: i["data"]["value"] for i in got[-1]["items"]}
        assert values == {"sensor:s0:no2": 10.0, "sensor:s1:no2": 11.0}
        assert [m["seq"] for m in got] == list(range(last_seq + 1, last_seq + 1 + len(got)))
        # nothing twice, nothing extra: and it goes on live, from either process, with the
        # next value as the very next message
        pair.observe(0, ("s2", 22.0))
        last = next_message(ws)
        assert (last["type"], last["seq"]) == ("update", got[-1]["seq"] + 1)
        assert [(i["key"], i["data"]["value"]) for i in last["items"]] == [("sensor:s2:no2", 22.0)]
    pair.wait_mirrored(session, last["seq"])  # and process 1 wrote where it left the client
    # Back to the first process, which still holds the session as it was when the client left.
    pair.observe(1, ("s1", 33.0))
    with pair.connect(0, f"&session={session}&last_seq={last['seq']}") as ws:
        welcome = receive(ws, "welcome")
        assert welcome["recovered"] is True
        update = receive(ws, "update")
        assert update["seq"] == last["seq"] + 1
        assert [(i["key"], i["data"]["value"]) for i in update["items"]] == [
            ("sensor:s1:no2", 33.0)
        ]
        pair.observe(1, ("s0", 44.0))  # and nothing after it: the next value comes next
        marker = next_message(ws)
        assert (marker["type"], marker["seq"]) == ("update", update["seq"] + 1)
        assert [(i["key"], i["data"]["value"]) for i in marker["items"]] == [
            ("sensor:s0:no2", 44.0)
        ]
