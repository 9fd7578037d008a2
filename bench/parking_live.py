"""Benchmark: from a bay reading to the zone's occupancy on the live overlay.

A server runs in this process (embedded SQLite default) with one zone of ``--bays`` bay sensors.
A WebSocket client follows the ``parking`` layer; each round posts one bay reading over HTTP and
times, from just before the POST, the arrival of the bay's own event (the baseline: the
sensor path every reading takes) and of the zone's occupancy event (computed after the commit,
with its forecast). Medians and p95 over ``--rounds``; the goal is the zone within 1 s.

    python bench/parking_live.py [--bays 50] [--rounds 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine

from arserver.commands.server import start_server
from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.services.parking import NewPlace, ParkingService
from arserver.store.database import open_database

WEST, SOUTH = 4.9000, 52.3700


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bays", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch))
        engine = open_database(settings)
        gis = create_token(engine, "gis")[0]
        viewer = create_token(engine, "viewer")[0]
        ring = [[WEST, SOUTH], [WEST + 0.002, SOUTH], [WEST + 0.002, SOUTH + 0.001],
                [WEST, SOUTH + 0.001]]  # fmt: skip
        ParkingService(engine).create(NewPlace(kind="zone", name="Plein", id="plein", area=ring))
        engine.dispose()
        server, url = start_server(settings, 0)
        http = httpx.Client(base_url=url, timeout=30)
        headers = {"Authorization": f"Bearer {gis}"}
        for k in range(args.bays):
            where = [WEST + 0.0019 * (k + 0.5) / args.bays, SOUTH + 0.0005]
            body = {"id": f"bay-{k}", "name": f"bay {k}", "kind": "parking_bay", "unit": "1",
                    "location": where}  # fmt: skip
            http.post("/api/v1/sensors", json=body, headers=headers).raise_for_status()
        sensor_s: list[float] = []
        zone_s: list[float] = []
        ws_url = url.replace("http://", "ws://") + f"/api/v1/live?access_token={viewer}"
        with connect(ws_url, open_timeout=10) as ws:
            ws.recv(timeout=10)  # welcome
            ws.send(json.dumps({"type": "subscribe", "id": "p", "layers": ["parking"],
                                "max_rate_hz": None,
                                "area": {"center": [WEST + 0.001, SOUTH + 0.0005],
                                         "radius_m": 300}}))  # fmt: skip
            ws.recv(timeout=10)  # snapshot
            for round_ in range(args.rounds):
                bay = f"bay-{round_ % args.bays}"
                item = {"sensor": bay, "time": datetime.now(UTC).isoformat(),
                        "value": float(round_ // args.bays % 2 == 0)}  # fmt: skip
                started = time.perf_counter()
                http.post(
                    "/api/v1/observations", json={"observations": [item]}, headers=headers
                ).raise_for_status()
                seen: dict[str, float] = {}
                while len(seen) < 2:
                    for got in json.loads(ws.recv(timeout=10)).get("items", []):
                        if got["key"] == "parking:plein" or got["key"].startswith(f"sensor:{bay}:"):
                            kind = "zone" if got["key"] == "parking:plein" else "sensor"
                            seen.setdefault(kind, time.perf_counter() - started)
                sensor_s.append(seen["sensor"])
                zone_s.append(seen["zone"])
        http.close()
        server.stop()
    print(f"machine: {machine()}; {args.bays} bays in one zone, {args.rounds} readings")
    print()
    print("| event on the socket after the POST | median ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, values in (
        ("bay's own sensor event (baseline)", sensor_s),
        ("zone occupancy", zone_s),
    ):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"| {label} | {1000 * statistics.median(values):.1f} | {1000 * p95:.1f} | "
            f"{1000 * ordered[-1]:.1f} |"
        )


if __name__ == "__main__":
    main()
