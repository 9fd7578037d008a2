"""Benchmark: live overlay delivery to many WebSocket clients, against a bare broadcast server.

- The hub: ``arserver serve`` (embedded default, SQLite) in its own process. Sensors spread over
  the demo region; observations posted over HTTP at a steady rate with ``time`` = the moment of
  sending. N clients (in ``--loaders`` processes of their own) subscribe to random 300 m circles
  over the region, with no rate limit, and count every item they receive and its latency
  (arrival minus observation time: ingest, commit, bus, matching, batching, socket).
- The ceiling: a bare ``websockets`` server (no auth, no index, no persistence) that broadcasts
  an event to every client, one frame per event, at a steady rate; the same clients count it
  the same way.

The hub runs with an 8 MB queue per client (the load processes themselves fall behind at the
highest rates; the default 1 MB would cut them off) and a 3 s send timeout. A last step repeats
one rate with ``--stalled`` extra clients that subscribe to the whole region and never read.

Each step runs ``--seconds`` at one offered rate and prints delivered updates/s, p50/p99
latency, server CPU (of one core) and memory; the idle memory per client is measured before
the first step. The hub may put several updates in one frame; counts are per update.

    python bench/live.py [--clients 2000] [--loaders 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import machine

REGION = (4.73, 52.29, 4.79, 52.33)  # around Schiphol Plaza, about 4 x 4.5 km
RADIUS_M = 300.0
SENSORS = 400


# -- load generator (runs in its own processes) ---------------------------------------------


def loader(url: str, count: int, seed: int, pipe: Connection) -> None:
    """Open ``count`` clients to ``url`` and count what they receive; answer the pipe's
    commands: "reset" (zero the counters), "report" (send count and latencies), "stop"."""
    asyncio.run(_load(url, count, seed, pipe))


async def _load(url: str, count: int, seed: int, pipe: Connection) -> None:
    from websockets.asyncio.client import connect

    rng = random.Random(seed)
    received = 0
    latencies: list[float] = []
    ready = 0

    async def client(k: int) -> None:
        nonlocal received, ready
        lon = rng.uniform(REGION[0], REGION[2])
        lat = rng.uniform(REGION[1], REGION[3])
        async with connect(url, open_timeout=120, max_size=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "id": "s", "max_rate_hz": None,
                                      "area": {"center": [lon, lat], "radius_m": RADIUS_M},
                                      "layers": ["sensors"]}))  # fmt: skip
            ready += 1
            async for text in ws:
                message = json.loads(text)
                if message.get("type") != "update":
                    continue
                now = time.time()
                for item in message["items"]:
                    received += 1
                    if len(latencies) < 200_000:
                        latencies.append(now - datetime.fromisoformat(item["time"]).timestamp())

    tasks = []
    for k in range(count):
        tasks.append(asyncio.create_task(client(k)))
        if k % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the accept queue
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "ready":
            pipe.send(ready)
        elif command == "reset":
            received = 0
            latencies = []
            pipe.send(True)
        elif command == "report":
            pipe.send((received, latencies))
        elif command == "stop":
            for task in tasks:
                task.cancel()
            pipe.send(True)
            return


class Loaders:
    def __init__(self, url: str, clients: int, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for p in range(processes):
            mine, theirs = ctx.Pipe()
            share = clients // processes + (1 if p < clients % processes else 0)
            proc = ctx.Process(target=loader, args=(url, share, 1000 + p, theirs), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.clients = clients

    def ask(self, command: str) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while sum(self.ask("ready")) < self.clients:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {sum(self.ask('ready'))} of {self.clients} connected")
            time.sleep(0.5)

    def stop(self) -> None:
        self.ask("stop")
        for proc in self.procs:
            proc.join(timeout=10)


# -- measuring a server process --------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def step(loaders: Loaders, pid: int, seconds: float, drive: Any) -> dict[str, float]:
    loaders.ask("reset")
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    drive(seconds)
    time.sleep(0.5)  # stragglers
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(pid) - cpu0
    reports = loaders.ask("report")
    count = sum(r[0] for r in reports)
    latencies = sorted(v for r in reports for v in r[1])
    pick = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000)
        if latencies
        else (lambda q: float("nan"))
    )
    return {"delivered": count / seconds, "p50": pick(0.5), "p99": pick(0.99),
            "cpu": 100 * cpu / wall, "rss": rss_mib(pid)}  # fmt: skip


# -- the hub ---------------------------------------------------------------------------------


Rows = list[tuple[int, dict[str, float]]]


def hub_run(args: argparse.Namespace, rates: list[int]) -> tuple[float, Rows]:
    from arserver.config import Settings
    from arserver.security.tokens import create_token
    from arserver.store.database import open_database
    from arserver.store.sensors import create_sensor
    from tests.arserver.processes import ServerProcess

    folder = Path(tempfile.mkdtemp(prefix="arserver-bench-live-"))
    settings = Settings(data_dir=folder)
    engine = open_database(settings)
    ingest, _ = create_token(engine, "ingest")
    viewer, _ = create_token(engine, "viewer")
    rng = random.Random(7)
    for k in range(SENSORS):
        create_sensor(
            engine,
            {"id": f"b{k}", "name": f"b{k}", "lon": rng.uniform(REGION[0], REGION[2]),
             "lat": rng.uniform(REGION[1], REGION[3])},
            [("no2", "ug/m3")],
        )  # fmt: skip
    engine.dispose()
    server = ServerProcess(
        {"ARSERVER_DATA_DIR": str(folder), "ARSERVER_EMBEDDED_WORKER": "false",
         "ARSERVER_LIVE_MAX_QUEUE_BYTES": str(8 * 1024 * 1024),
         "ARSERVER_LIVE_SEND_TIMEOUT_S": "3",
         **({"ARSERVER_LIVE_FLUSH_INTERVAL_S": str(args.flush)} if args.flush else {})},
        folder / "server.log",
    )  # fmt: skip
    server.start()
    pid = server.process.pid if server.process else 0
    rows = []
    try:
        idle = rss_mib(pid)
        url = server.url.replace("http://", "ws://") + f"/api/v1/live?access_token={viewer}"
        loaders = Loaders(url, args.clients, args.loaders)
        loaders.wait_ready()
        time.sleep(2)
        per_client_kib = (rss_mib(pid) - idle) * 1024 / args.clients
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ingest}"})

        def driver(rate: int) -> Any:
            def drive(seconds: float) -> None:
                tick = 0.05
                end = time.monotonic() + seconds
                sent = 0
                started = time.monotonic()
                while time.monotonic() < end:
                    due = int((time.monotonic() - started + tick) * rate) - sent
                    if due > 0:
                        now = datetime.now(UTC)
                        items = [{"sensor": f"b{rng.randrange(SENSORS)}", "value": 20.0,
                                  "time": now.isoformat()} for _ in range(due)]  # fmt: skip
                        # distinct times per sensor: nudge duplicates by a microsecond
                        seen: dict[str, int] = {}
                        for item in items:
                            n = seen.get(item["sensor"], 0)
                            seen[item["sensor"]] = n + 1
                            if n:
                                item["time"] = datetime.fromtimestamp(
                                    now.timestamp() - n * 1e-6, UTC
                                ).isoformat()
                        http.post("/api/v1/observations", json={"observations": items})
                        sent += due
                    time.sleep(max(0.0, tick - (time.monotonic() - started) % tick))

            return drive

        for rate in rates:
            rows.append((rate, step(loaders, pid, args.seconds, driver(rate))))
        if args.stalled:
            # The same load again, with clients that subscribe to the whole region and then
            # never read: the others' latency should not move beyond the noise.
            from tests.arserver.live.test_live_socket import StalledClient

            subscribe = json.dumps({"type": "subscribe", "id": "all", "max_rate_hz": None,
                                    "area": {"bbox": list(REGION)}})  # fmt: skip
            stalled = [StalledClient(url, subscribe) for _ in range(args.stalled)]
            rate = args.stalled_rate
            rows.append((rate, step(loaders, pid, args.seconds, driver(rate))))
            stats = httpx.get(
                f"{server.url}/api/v1/live/stats", headers={"Authorization": f"Bearer {viewer}"}
            ).json()
            rows[-1][1]["stalled_closed"] = stats["slow_consumers_closed"]
            for client in stalled:
                client.sock.close()
        http.close()
        loaders.stop()
    finally:
        server.stop()
    return per_client_kib, rows


# -- the bare ceiling ------------------------------------------------------------------------


BARE = """
import asyncio, json, sys, time
from datetime import UTC, datetime
from websockets.asyncio.server import broadcast, serve

clients = set()
rate = 0.0

async def handler(ws):
    global rate
    first = json.loads(await ws.recv())
    if first.get("type") == "rate":  # the bench's control connection, not a client
        rate = float(first["rate"])
        async for message in ws:
            rate = float(json.loads(message)["rate"])
        return
    clients.add(ws)
    try:
        async for message in ws:
            pass
    finally:
        clients.discard(ws)

async def tick():
    sent = 0.0
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        sent += rate * (now - last)
        last = now
        while sent >= 1:
            sent -= 1
            text = json.dumps({"type": "update", "items": [{"key": "k", "value": 20.0,
                               "time": datetime.now(UTC).isoformat()}]})
            broadcast(clients, text)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None, ping_interval=None):
        await tick()

asyncio.run(main())
"""


def bare_run(args: argparse.Namespace, rates: list[int]) -> tuple[float, Rows]:
    import subprocess

    from tests.arserver.processes import free_port

    port = free_port()
    # Its stderr would list every client the load processes drop at the end of a run.
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stderr=subprocess.DEVNULL)
    rows = []
    try:
        url = f"ws://127.0.0.1:{port}/"
        time.sleep(1)
        idle = rss_mib(proc.pid)
        loaders = Loaders(url, args.clients, args.loaders)
        loaders.wait_ready()
        time.sleep(2)
        per_client_kib = (rss_mib(proc.pid) - idle) * 1024 / args.clients
        from websockets.sync.client import connect

        with connect(url, ping_interval=None) as control:
            control.send(json.dumps({"type": "rate", "rate": 0}))
            for rate in rates:

                def drive(seconds: float, rate: int = rate) -> None:
                    control.send(json.dumps({"type": "rate", "rate": rate}))
                    time.sleep(seconds)
                    control.send(json.dumps({"type": "rate", "rate": 0}))

                rows.append((rate * args.clients, step(loaders, proc.pid, args.seconds, drive)))
        loaders.stop()
    finally:
        proc.terminate()
        proc.wait()
    return per_client_kib, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--flush", type=float, help="the hub's ARSERVER_LIVE_FLUSH_INTERVAL_S")
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hub-rates", default="500,1000,2000,3000,4000",
                        help="observations/s posted to the hub, one step each")  # fmt: skip
    parser.add_argument("--bare-rates", default="5,10,20,30,40",
                        help="events/s the bare server broadcasts to every client")  # fmt: skip
    parser.add_argument(
        "--stalled",
        type=int,
        default=50,
        help="clients that stop reading, in a last hub step (0: none)",
    )
    parser.add_argument("--stalled-rate", type=int, default=1000,
                        help="observations/s of the step with stalled clients")  # fmt: skip
    args = parser.parse_args()
    hub_rates = [int(r) for r in args.hub_rates.split(",") if r]
    bare_rates = [int(r) for r in args.bare_rates.split(",") if r]
    bare_kib, bare_rows = bare_run(args, bare_rates) if bare_rates else (float("nan"), [])
    hub_kib, hub_rows = hub_run(args, hub_rates)
    print(
        f"# Live delivery to {args.clients:,} WebSocket clients ({args.loaders} load "
        f"processes), {args.seconds:g} s per step; latency = arrival - observation time"
    )
    print(f"# machine: {machine()}")
    print()
    print("| server | offered | delivered updates/s | p50 ms | p99 ms | server CPU % | MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")

    def row(label: str, offered: str, r: dict[str, float]) -> str:
        return (
            f"| {label} | {offered} | {r['delivered']:,.0f} | {r['p50']:.0f} | {r['p99']:.0f} "
            f"| {r['cpu']:.0f} | {r['rss']:.0f} |"
        )

    for offered, r in bare_rows:
        print(row("bare websockets broadcast", f"{offered // args.clients} events/s x all", r))
    for offered, r in hub_rows:
        if "stalled_closed" in r:
            label = f"{offered} obs/s, {args.stalled} stalled clients"
            print(row(f"arserver hub ({r['stalled_closed']:.0f} closed with 4008)", label, r))
        else:
            print(row("arserver hub", f"{offered} obs/s ingested", r))

    def best(rows: Rows) -> float:
        return max(
            (r["delivered"] for _, r in rows if r["p99"] < 200 and "stalled_closed" not in r),
            default=0.0,
        )

    hub, bare = best(hub_rows), best(bare_rows)
    print()
    print(f"Idle memory per client: hub {hub_kib:.1f} KiB, bare {bare_kib:.1f} KiB (goal < 50 KB)")
    print(
        f"Best delivered/s at p99 < 200 ms: hub {hub:,.0f}, bare {bare:,.0f} "
        f"(hub/bare {hub / max(bare, 1):.2f}; goal >= 1, never < 0.5)"
    )


if __name__ == "__main__":
    main()
