"""Benchmark: sustained observation ingest into a real ``arserver serve`` process.

- HTTP: ``POST /api/v1/observations`` in batches (default 500) from several keep-alive
  connections at once; observations/s and the p50/p99 time from sending a batch to its
  acknowledgement (the reply comes after the commit).
- MQTT: one observation per message, as The Things Stack v3 uplinks with QoS 1, through a
  private Mosquitto broker into the server's consumer; messages/s from the first publish until
  the last observation is stored, and p50/p99 from an uplink's time to its ``received_at``.

On the embedded default (SQLite, WAL, synchronous=FULL) and on PostgreSQL (a scratch database on
127.0.0.1:5432, when reachable). The live hub's in-process bus is attached in the server. The
client runs in this process, the server in its own. Reference: the FROST-Server maintainers call
about 5,000 inserts/s achievable (not measured here).

Scale-out (``--scale-out``, PostgreSQL and Redis): MQTT messages/s with one ``arserver
ingest`` consumer and with two in a shared group (``ARSERVER_MQTT_SHARED_GROUP``), draining
uplinks queued at the broker (a publisher on the same 2 cores is slower than two consumers),
and HTTP observations/s into ``arserver serve --workers 1`` and ``--workers 2``, interleaved in
one run.

    python bench/ingest.py [--observations 100000] [--batch 500] [--connections 4]
        [--messages 30000] [--repeats 3] [--scale-out]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import machine, percentile

from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from arserver.store.schema import observations
from arserver.store.sensors import create_sensor, ingest_counts
from tests.arserver.processes import Mosquitto, ServerProcess
from tests.arserver.support import arserver_command

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEV_EUI = "70B3D57ED0000001"


def http_run(url: str, token: str, total: int, batch: int, connections: int, day: int) -> dict:
    """Post ``total`` observations; returns rate and latencies (seconds)."""
    # Recent times (within the raw retention window), a fresh hour per run.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2) + timedelta(hours=day)
    bodies = [
        json.dumps(
            {
                "observations": [
                    {"sensor": "bench", "kind": "no2", "value": 20.0 + k % 7,
                     "time": (base + timedelta(milliseconds=k)).isoformat()}
                    for k in range(first, min(first + batch, total))
                ]
            }
        ).encode()
        for first in range(0, total, batch)
    ]  # fmt: skip
    latencies: list[float] = []
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))

    def client() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    index = next(next_body, None)
                if index is None:
                    return
                sent = time.perf_counter()
                reply = http.post("/api/v1/observations", content=bodies[index])
                took = time.perf_counter() - sent
                if reply.status_code != 200 or reply.json()["rejected"]:
                    raise SystemExit(f"ingest failed: {reply.text[:300]}")
                with lock:
                    latencies.append(took)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rate": total / (time.perf_counter() - started), "latencies": latencies}


def mqtt_run(settings: Settings, broker: Mosquitto, messages: int) -> dict:
    """Publish ``messages`` TTS uplinks of one value each; wait until all are stored."""
    engine = open_database(settings)
    before = ingest_counts(engine).get("accepted", 0)
    started = time.perf_counter()
    first_time = datetime.now(UTC)
    publish_uplinks(broker, messages)
    while ingest_counts(engine).get("accepted", 0) - before < messages:
        time.sleep(0.05)
        assert time.perf_counter() - started < 600, "the server did not store every message"
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        rows = connection.execute(
            select(observations.c.time, observations.c.received_at).where(
                observations.c.time >= first_time
            )
        ).all()
    engine.dispose()
    latencies = [(_aware(r.received_at) - _aware(r.time)).total_seconds() for r in rows]
    return {"rate": messages / seconds, "latencies": latencies}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def backend(kind: str, folder: Path) -> Iterator[Settings | None]:
    if kind == "sqlite":
        yield Settings(data_dir=folder / "sqlite")
        return
    try:
        import psycopg

        name = f"arserver_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no PostgreSQL here: report SQLite alone
        print(f"# PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
        yield Settings(data_dir=folder / "pg", database_url=url)
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


REDIS = "redis://127.0.0.1:6379/13"


def _consumer_env(settings: Settings, broker: Mosquitto) -> dict[str, str]:
    return {
        **os.environ, "ARSERVER_DATABASE_URL": str(settings.database_url),
        "ARSERVER_DATA_DIR": str(settings.data_dir), "ARSERVER_MQTT_URL": broker.url,
        "ARSERVER_MQTT_SHARED_GROUP": "bench", "ARSERVER_REDIS_URL": REDIS,
    }  # fmt: skip


def consumers(
    count: int, settings: Settings, broker: Mosquitto, folder: Path, run: int = 0
) -> list[Any]:
    """``count`` ``arserver ingest`` processes in one shared group, subscribed."""
    started = []
    for n in range(count):
        log = folder / f"ingest-{uuid.uuid4().hex[:6]}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [arserver_command(), "ingest", "--client-id", f"bench-{run}-{count}-{n}"],
                env=_consumer_env(settings, broker), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"subscribed" not in log.read_bytes():
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"arserver ingest did not subscribe:\n{log.read_text()}")
            time.sleep(0.05)
        started.append(process)
    return started


def drain_run(
    count: int, settings: Settings, broker: Mosquitto, folder: Path, messages: int, run: int
) -> dict:
    """Consumer capacity without the publisher in the way (on 2 cores it cannot publish much
    faster than one consumer stores): ``count`` consumers subscribe in the shared group and
    stop, ``messages`` uplinks queue in their sessions at the broker, then the consumers
    start; the rate is ``messages`` over the span of the rows' ``received_at`` (first commit
    to last, so process start-up is not counted); afterwards they leave the group."""
    group = consumers(count, settings, broker, folder, run)
    for process in group:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    engine = open_database(settings)
    before = ingest_counts(engine).get("accepted", 0)
    first_time = datetime.now(UTC)
    publish_uplinks(broker, messages)
    started = time.perf_counter()
    group = consumers(count, settings, broker, folder, run)
    try:
        while ingest_counts(engine).get("accepted", 0) - before < messages:
            time.sleep(0.25)  # the rate comes from the rows' times: poll rarely, take no CPU
            assert time.perf_counter() - started < 600, "the consumers did not store everything"
        with engine.connect() as connection:
            first, last = connection.execute(
                select(
                    func.min(observations.c.received_at), func.max(observations.c.received_at)
                ).where(observations.c.time >= first_time)
            ).one()
        seconds = max((_aware(last) - _aware(first)).total_seconds(), 1e-3)
    finally:
        engine.dispose()
        for process in group:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        for process in group:  # their sessions go, or they would keep a share
            leave = [*process.args, "--leave"]  # type: ignore[misc]
            subprocess.run(leave, env=_consumer_env(settings, broker), check=True,
                           capture_output=True, timeout=120)  # fmt: skip
    return {"rate": messages / seconds, "latencies": [float("nan")]}


def publish_uplinks(broker: Mosquitto, messages: int) -> None:
    """``messages`` TTS uplinks with QoS 1, each acknowledged by the broker."""
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex}")
    publisher.max_inflight_messages_set(1000)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    last = datetime.now(UTC)
    infos = []
    for k in range(messages):
        last = max(datetime.now(UTC), last + timedelta(microseconds=1))
        uplink = {
            "end_device_ids": {"device_id": "bench", "dev_eui": DEV_EUI},
            "received_at": last.isoformat(),
            "uplink_message": {"f_cnt": k, "decoded_payload": {"pm25": 5.0 + k % 11}},
        }
        infos.append(publisher.publish("v3/bench@ttn/devices/bench/up", json.dumps(uplink), 1))
    for info in infos:
        info.wait_for_publish(60)
    publisher.loop_stop()
    publisher.disconnect()


def prepare(settings: Settings) -> str:
    """The bench's sensors (one over HTTP, one LoRaWAN device) and an ingest token's secret."""
    engine = open_database(settings)
    try:
        token, _ = create_token(engine, "ingest")
        create_sensor(engine, {"id": "bench", "name": "bench"}, [("no2", "ug/m3")])
        create_sensor(
            engine,
            {"id": "bench-lora", "name": "bench", "dev_eui": DEV_EUI,
             "device_fields": {"pm25": "pm25"}},
            [("pm25", "ug/m3")],
        )  # fmt: skip
    finally:
        engine.dispose()
    return token


def scale_out(args: argparse.Namespace, folder: Path, broker: Mosquitto) -> list[tuple]:
    """Rows for one and two consumers / server processes on PostgreSQL and Redis."""
    rows: list[tuple] = []
    with backend("postgresql", folder) as settings:
        if settings is None:
            return rows
        token = prepare(settings)
        mqtt_results: dict[int, list[dict]] = {1: [], 2: []}
        http_results: dict[int, list[dict]] = {1: [], 2: []}
        for run in range(args.repeats):
            for count in (1, 2):
                mqtt_results[count].append(
                    drain_run(count, settings, broker, folder, args.messages, run)
                )
            for count in (1, 2):
                env = {
                    "ARSERVER_DATA_DIR": str(settings.data_dir),
                    "ARSERVER_DATABASE_URL": str(settings.database_url),
                    "ARSERVER_REDIS_URL": REDIS, "ARSERVER_EMBEDDED_WORKER": "false",
                }  # fmt: skip
                server = ServerProcess(env, folder / f"workers-{count}.log")
                server.command += ["--workers", str(count)]
                server.start(60)
                try:
                    http_results[count].append(
                        http_run(server.url, token, args.observations, args.batch,
                                 args.connections * count, 10 + run * 2 + count)
                    )  # fmt: skip
                finally:
                    server.stop()
        label = "PostgreSQL 15 + Redis"
        for count in (1, 2):
            rows.append((label, f"MQTT, {count} `arserver ingest` (shared group), queued", "msg/s",
                         mqtt_results[count]))  # fmt: skip
        for count in (1, 2):
            rows.append((label, f"HTTP, `serve --workers {count}`", "obs/s", http_results[count]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale-out", action="store_true", help="Only the scale-out rows.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="arserver-bench-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "broker")
        broker.start()
        try:
            if args.scale_out:
                rows = scale_out(args, folder, broker)
            for kind, label in () if args.scale_out else (
                ("sqlite", "SQLite (WAL, synchronous=FULL)"), ("postgresql", "PostgreSQL 15")
            ):  # fmt: skip
                with backend(kind, folder) as settings:
                    if settings is None:
                        continue
                    token = prepare(settings)
                    env = {
                        "ARSERVER_DATA_DIR": str(settings.data_dir),
                        "ARSERVER_MQTT_URL": broker.url,
                        "ARSERVER_MQTT_CLIENT_ID": f"bench-{kind}",
                        "ARSERVER_EMBEDDED_WORKER": "false",
                    }
                    if settings.database_url:
                        env["ARSERVER_DATABASE_URL"] = settings.database_url
                    server = ServerProcess(env, folder / f"{kind}.log")
                    server.start()
                    try:
                        http = [
                            http_run(server.url, token, args.observations, args.batch,
                                     args.connections, run)
                            for run in range(args.repeats)
                        ]  # fmt: skip
                        over_mqtt = [
                            mqtt_run(settings, broker, args.messages) for _ in range(args.repeats)
                        ]
                    finally:
                        server.stop()
                    rows.append((label, f"HTTP, batches of {args.batch}", "obs/s", http))
                    rows.append((label, "MQTT (TTS uplink), 1 obs/message", "msg/s", over_mqtt))
        finally:
            broker.stop()
    print(
        f"# Sustained ingest into `arserver serve` (one process); HTTP: {args.observations:,} "
        f"observations per run over {args.connections} connections; MQTT: {args.messages:,} "
        f"messages per run; median of {args.repeats} runs"
    )
    print(f"# machine: {machine()}; pid {os.getpid()}")
    print()
    print("| database | path | median rate | unit | p50 ms | p99 ms | runs |")
    print("|---|---|---:|---|---:|---:|---|")
    for label, path, unit, results in rows:
        rates = [r["rate"] for r in results]
        median_run = sorted(results, key=lambda r: r["rate"])[len(results) // 2]
        p50 = percentile(median_run["latencies"], 0.50) * 1000
        p99 = percentile(median_run["latencies"], 0.99) * 1000
        runs = ", ".join(f"{r:,.0f}" for r in rates)
        print(
            f"| {label} | {path} | {statistics.median(rates):,.0f} | {unit} | {p50:.1f} | "
            f"{p99:.1f} | {runs} |"
        )
    print()
    if args.scale_out:
        for unit in ("msg/s", "obs/s"):
            pair = [statistics.median(r["rate"] for r in results)
                    for _, _, u, results in rows if u == unit]  # fmt: skip
            if len(pair) == 2:
                print(f"Two processes / one, {unit}: {pair[1] / pair[0]:.2f}x (goal for MQTT: "
                      ">= 1.6x on this 2-core machine)")  # fmt: skip
    else:
        print("Goals: HTTP >= 50,000 obs/s, MQTT >= 10,000 msg/s.")


if __name__ == "__main__":
    main()
