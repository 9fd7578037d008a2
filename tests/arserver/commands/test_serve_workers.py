"""``arserver serve --workers 2`` with PostgreSQL and Redis: connections reach both processes,
a live client on either receives what is ingested through the other, and a worker killed with
SIGKILL while observations pour in loses none that were acknowledged and is started again.
Without PostgreSQL and Redis the command refuses with one clear line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from websockets.sync.client import ClientConnection, connect

from arserver.cli import cli
from arserver.config import Settings
from arserver.store.database import open_database
from arserver.store.schema import observations
from tests.arserver.support import arserver_command, receive, settings_env, tokens_for
from tests.support import answers, free_port, wait_until, wait_until_ready

BACKENDS = ("postgresql",)


class Workers:
    """``arserver serve --workers 2`` on a free port."""

    def __init__(self, settings: Settings, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**settings_env(settings), "ARSERVER_REDIS_URL": redis_url,
               "ARSERVER_EMBEDDED_WORKER": "false"}  # fmt: skip
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [arserver_command(), "serve", "--workers", "2", "--port", str(self.port)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until_ready(lambda: answers(f"{self.url}/readyz"), self.process,
                         "serve --workers 2", 60, output=log.read_text)  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers(settings: Settings, redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(settings, redis_url, tmp_path / "serve.log")
    yield running
    running.stop()


def stats(url: str, viewer: str) -> dict[str, Any]:
    """The live counters of whichever process takes a new connection."""
    with httpx.Client(base_url=url, timeout=10) as fresh:
        answer = fresh.get("/api/v1/live/stats", headers={"Authorization": f"Bearer {viewer}"})
        return dict(answer.json())


def processes_with_clients(url: str, viewer: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(40):
        reply = stats(url, viewer)
        seen[reply["process"]] = reply["connections"]
        if len(seen) == 2:
            break
    return seen


def test_a_live_client_on_either_process_gets_what_the_other_ingested(
    settings: Settings, workers: Workers
) -> None:
    gis, viewer, ingest = tokens_for(settings, "gis", "viewer", "ingest")
    http = httpx.Client(base_url=workers.url, timeout=30)
    sensor = {"id": "s1", "name": "s1", "kind": "no2", "unit": "ug/m3", "location": [4.9, 52.37]}
    made = http.post("/api/v1/sensors", json=sensor, headers={"Authorization": f"Bearer {gis}"})
    assert made.status_code == 201, made.text
    subscribe = {"type": "subscribe", "id": "a", "area": {"bbox": [4.8, 52.3, 5.0, 52.4]},
                 "layers": ["sensors"], "max_rate_hz": None}  # fmt: skip
    clients: list[ClientConnection] = []
    with contextlib.ExitStack() as opened:
        for _ in range(8):
            url = f"{workers.url.replace('http', 'ws')}/api/v1/live?access_token={viewer}"
            ws = opened.enter_context(connect(url))
            receive(ws, "welcome")
            ws.send(json.dumps(subscribe))
            receive(ws, "snapshot")
            clients.append(ws)
        spread = processes_with_clients(workers.url, viewer)
        assert len(spread) == 2, spread
        assert all(count > 0 for count in spread.values()), spread  # clients on both
        for k in range(6):  # posted on fresh connections: through either process
            with httpx.Client(base_url=workers.url, timeout=30) as fresh:
                reading = {"sensor": "s1", "time": datetime.now(UTC).isoformat(), "value": k}
                posted = fresh.post("/api/v1/observations", json={"observations": [reading]},
                                    headers={"Authorization": f"Bearer {ingest}"})  # fmt: skip
                assert posted.json()["accepted"] == 1, posted.text
            for ws in clients:
                update = receive(ws, "update")
                assert [i["data"]["value"] for i in update["items"]] == [k]
    http.close()


def test_a_killed_worker_loses_no_acknowledged_observation(
    settings: Settings, workers: Workers
) -> None:
    gis, viewer, ingest = tokens_for(settings, "gis", "viewer", "ingest")
    sensor = {"id": "s1", "name": "s1", "kind": "no2", "unit": "ug/m3"}
    with httpx.Client(base_url=workers.url, timeout=30) as http:
        assert http.post("/api/v1/sensors", json=sensor,
                         headers={"Authorization": f"Bearer {gis}"}).status_code == 201  # fmt: skip
    acknowledged: list[str] = []
    stop = threading.Event()
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def pour(lane: int) -> None:
        k = 0
        while not stop.is_set():
            moment = (start + timedelta(seconds=k, microseconds=lane)).isoformat()
            try:
                with httpx.Client(base_url=workers.url, timeout=10) as fresh:
                    reply = fresh.post(
                        "/api/v1/observations",
                        json={"observations": [{"sensor": "s1", "time": moment, "value": k}]},
                        headers={"Authorization": f"Bearer {ingest}"},
                    )
                if reply.status_code == 200 and reply.json()["accepted"] == 1:
                    acknowledged.append(moment)
            except httpx.HTTPError:
                pass  # the killed process's connections: not acknowledged, may be lost
            k += 1

    lanes = [threading.Thread(target=pour, args=(lane,)) for lane in range(4)]
    for lane in lanes:
        lane.start()
    try:
        wait_until(lambda: len(acknowledged) >= 100, 60, "observations pouring in")
        victim = stats(workers.url, viewer)["process"].split(":")[-1]
        os.kill(int(victim), signal.SIGKILL)
        wait_until(lambda: b"starting it again" in workers.log.read_bytes(), 30, "a restart")
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= count + 100, 60, "ingest going on")
    finally:
        stop.set()
        for lane in lanes:
            lane.join(30)
    engine = open_database(settings)
    try:
        with engine.connect() as connection:
            times = {
                t.isoformat() for t in connection.execute(select(observations.c.time)).scalars()
            }
            total = connection.execute(select(func.count()).select_from(observations)).scalar()
    finally:
        engine.dispose()
    missing = [m for m in acknowledged if datetime.fromisoformat(m).isoformat() not in times]
    assert missing == []
    assert total is not None
    assert total >= len(acknowledged)
    respawned = processes_with_clients(workers.url, viewer)
    assert len(respawned) == 2
    assert victim not in {p.split(":")[-1] for p in respawned}


def test_more_than_one_worker_needs_postgresql_and_redis(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--workers", "2"], env={"ARSERVER_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code != 0
    assert "ARSERVER_DATABASE_URL" in result.output
    assert "ARSERVER_REDIS_URL" in result.output
