"""Benchmark: serving tiles from local disk and from S3 object storage (SeaweedFS), in one run.

One `arserver serve` process per backend holds the same converted point cloud (the demo's
tree scan, converted once and published to both stores). Clients behave like viewers: each
fetches the entry point, then every content file the tileset names, in the order of the tree
(first visits, no cache), over keep-alive connections. Tiles/s and the p50/p99 time per
request, the median of the runs, with local disk as the baseline. With redirects
(`ARSERVER_TILES_REDIRECT_S`), the entry point and the 307 answers per second (the client does
not follow them: a CDN or the storage serves the bytes).

Needs the SeaweedFS of `make services` (127.0.0.1:8333).

    python bench/tiles_serve.py [--clients 8] [--rounds 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import machine, percentile

from arserver.config import Settings
from arserver.store.database import open_database
from arserver.store.tilestore import open_tile_store
from tests.arserver.conftest import S3_BUCKET, S3_ENDPOINT, S3_KEY, S3_SECRET
from tests.arserver.processes import ServerProcess
from tests.arserver.support import insert_asset
from tiles.convert import ConvertOptions, convert

ASSET = "bench-scan"
#: As 3D Tiles viewers ask (browsers add gzip themselves: `--gzip`).
HEADERS = {"Accept-Encoding": os.environ.get("BENCH_ACCEPT_ENCODING", "identity")}
SOURCE = Path(__file__).resolve().parents[1] / "assets" / "tree_scan.laz"


def content_paths(base: str) -> list[str]:
    """Every content URI the tileset names, breadth first (as a viewer refines)."""
    entry = httpx.get(f"{base}/tiles/{ASSET}/tileset.json", timeout=30).json()
    found, queue = [], [entry["root"]]
    while queue:
        tile = queue.pop(0)
        uri = (tile.get("content") or {}).get("uri")
        if uri:
            found.append(urljoin(f"{base}/tiles/{ASSET}/", uri))
        queue.extend(tile.get("children", []))
    return found


def viewers(base: str, clients: int, rounds: int, follow_content: bool) -> dict[str, object]:
    """``clients`` threads, each ``rounds`` times: the entry point, then every content file."""
    paths = content_paths(base)
    latencies: list[float] = []
    lock = threading.Lock()
    counted = [0]

    def viewer() -> None:
        mine: list[float] = []
        with httpx.Client(timeout=30, follow_redirects=False, headers=HEADERS) as http:
            for _ in range(rounds):
                for url in [f"{base}/tiles/{ASSET}/tileset.json", *paths]:
                    started = time.perf_counter()
                    reply = http.get(url)
                    if reply.status_code not in (200, 307):
                        raise SystemExit(f"{url}: {reply.status_code}")
                    if follow_content:
                        _ = reply.content
                    mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            counted[0] += len(mine)

    threads = [threading.Thread(target=viewer) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {"rate": counted[0] / seconds, "latencies": latencies, "files": len(paths) + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arserver-bench-tiles-") as tmp:
        folder = Path(tmp)
        built = folder / "built"
        convert([SOURCE], built, ConvertOptions(crs="EPSG:7415"))
        s3 = {
            "ARSERVER_TILES_URL": f"s3://{S3_BUCKET}/bench-{uuid.uuid4().hex[:8]}",
            "AWS_ENDPOINT_URL": S3_ENDPOINT, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        }  # fmt: skip
        setups = {
            "local disk": {},
            "S3 (SeaweedFS), streamed": s3,
            "S3 (SeaweedFS), redirects": {**s3, "ARSERVER_TILES_REDIRECT_S": "300"},
        }
        servers: dict[str, ServerProcess] = {}
        for number, (label, extra) in enumerate(setups.items()):
            data = folder / f"data-{number}"
            env = {"ARSERVER_DATA_DIR": str(data), "ARSERVER_EMBEDDED_WORKER": "false", **extra}
            os.environ.update({k: v for k, v in extra.items() if k.startswith("AWS_")})
            settings = Settings(data_dir=data, tiles_url=extra.get("ARSERVER_TILES_URL"))
            engine = open_database(settings)
            insert_asset(engine, ASSET, public=True)
            engine.dispose()
            store = open_tile_store(settings)
            if not store.entry_point(ASSET):
                copy = folder / f"copy-{uuid.uuid4().hex[:6]}"
                shutil.copytree(built, copy)
                store.publish(ASSET, copy)
            server = ServerProcess(env, folder / f"{len(servers)}.log")
            server.start()
            servers[label] = server
        results: dict[str, list[dict[str, object]]] = {label: [] for label in setups}
        try:
            for _ in range(args.repeats):  # interleaved: the machine's noise hits all alike
                for label, server in servers.items():
                    results[label].append(
                        viewers(server.url, args.clients, args.rounds, "redirects" not in label)
                    )
        finally:
            for server in servers.values():
                server.stop()
            open_tile_store(Settings(tiles_url=s3["ARSERVER_TILES_URL"])).remove(ASSET)
    files = int(results["local disk"][0]["files"])  # type: ignore[call-overload]
    print(
        f"# Tile serving, one `arserver serve` process per backend; {args.clients} viewers x "
        f"{args.rounds} rounds of the entry point and {files - 1} content files of "
        f"{SOURCE.name}; median of {args.repeats} interleaved runs"
    )
    print(f"# machine: {machine()}")
    print()
    print("| backend | requests/s | vs local disk | p50 ms | p99 ms | runs |")
    print("|---|---:|---:|---:|---:|---|")
    baseline = statistics.median(float(r["rate"]) for r in results["local disk"])  # type: ignore[arg-type]
    for label, runs in results.items():
        rates = [float(r["rate"]) for r in runs]  # type: ignore[arg-type]
        middle = sorted(runs, key=lambda r: float(r["rate"]))[len(runs) // 2]  # type: ignore[arg-type]
        lat = middle["latencies"]
        assert isinstance(lat, list)
        print(
            f"| {label} | {statistics.median(rates):,.0f} | "
            f"{statistics.median(rates) / baseline:.2f}x | {percentile(lat, 0.5) * 1000:.1f} | "
            f"{percentile(lat, 0.99) * 1000:.1f} | {', '.join(f'{r:,.0f}' for r in rates)} |"
        )
    print()
    print(
        "Goals: S3 streamed within 2x of local disk (>= 0.50x); with redirects, entry points "
        "and redirects >= 5,000/s."
    )
    print(json.dumps({k: [round(float(r["rate"])) for r in v] for k, v in results.items()}))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
