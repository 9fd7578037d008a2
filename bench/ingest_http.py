"""Benchmark: observations per second through ``POST /api/v1/observations`` on a real server.

The server runs in-process under uvicorn on 127.0.0.1 with the embedded default (SQLite, WAL,
synchronous=FULL) and, when reachable, PostgreSQL on 127.0.0.1:5432 (a scratch database). The
client posts batches over HTTP with keep-alive; each reply comes after the commit. Reference: the
FROST-Server maintainers call about 5,000 inserts/s achievable (not measured here).

    python bench/ingest_http.py [--observations 50000] [--batch 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

from arserver.config import Settings
from arserver.demo import start_server
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from arserver.store.sensors import create_sensor

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def measure(settings: Settings, total: int, batch: int, repeats: int) -> list[float]:
    engine = open_database(settings)
    token, _ = create_token(engine, "ingest")
    create_sensor(engine, {"id": "bench", "name": "bench"}, [("no2", "ug/m3")])
    engine.dispose()
    server, url = start_server(settings.model_copy(update={"embedded_worker": False}), 0)
    rates = []
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            for run in range(repeats):
                base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=run)
                started = time.perf_counter()
                for first in range(0, total, batch):
                    items = [
                        {"sensor": "bench", "kind": "no2", "value": 20.0,
                         "time": (base + timedelta(seconds=k)).isoformat()}
                        for k in range(first, min(first + batch, total))
                    ]  # fmt: skip
                    reply = client.post("/api/v1/observations", json={"observations": items}).json()
                    assert reply["accepted"] == len(items), reply
                rates.append(total / (time.perf_counter() - started))
    finally:
        server.stop()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="arserver-bench-") as tmp:
        sqlite_rates = measure(
            Settings(data_dir=Path(tmp) / "sqlite"), args.observations, args.batch, args.repeats
        )
        rows.append(("SQLite (WAL, synchronous=FULL)", sqlite_rates))
        try:
            import psycopg

            name = f"arserver_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
                pg = Settings(data_dir=Path(tmp) / "pg", database_url=url)
                rows.append(
                    (
                        "PostgreSQL 15 + PostGIS",
                        measure(pg, args.observations, args.batch, args.repeats),
                    )
                )
            finally:
                with psycopg.connect(POSTGRES, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # no PostgreSQL here: report SQLite alone
            print(f"# PostgreSQL skipped: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"# HTTP ingest, {args.observations:,} observations in batches of {args.batch:,}, "
        f"median of {args.repeats} runs"
    )
    print(f"# machine: {machine()}")
    print()
    print("| database | median observations/s | runs |")
    print("|---|---:|---|")
    for label, rates in rows:
        runs = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"| {label} | {statistics.median(rates):,.0f} | {runs} |")


if __name__ == "__main__":
    main()
