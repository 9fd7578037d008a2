"""What ``arserver demo`` shows: a first look at what the service does.

Well-known places, given in RD New + NAP (EPSG:7415) at NAP 0 m, go to ETRS89 and to the
Earth-centred frame of 3D Tiles with RDNAPTRANS(TM)2018, beside what PROJ does without the Dutch
grids (its "ballpark" takes NAP height as ellipsoidal height). Then the server starts on the
embedded default, the sample assets are uploaded through the API and converted (or reused from
an earlier run), and the URLs of the API docs, the scene tileset and, last, the viewer are
printed with a token in the fragment, while simulated sensors send live data.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from rich.console import Console
from rich.table import Table

from arserver.commands import simulation
from arserver.commands.client import ServerClient
from arserver.commands.field_demo import BENCH_RD, seed_field_work
from arserver.commands.server import start_server
from arserver.commands.simulation import HttpSink
from arserver.commands.uploads import UPLOAD_TIMEOUT_S
from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from tiles.crs import Transformer

# Approximate RD New positions (metres) of landmarks, for illustration only.
LANDMARKS: tuple[tuple[str, float, float], ...] = (
    ("Amersfoort (RD origin)", 155000.0, 463000.0),
    ("Amsterdam, Dam", 121400.0, 487400.0),
    ("Schiphol, airport", 111800.0, 481200.0),
    ("Rotterdam, Erasmusbrug", 93300.0, 436600.0),
    ("Groningen, Martinitoren", 233900.0, 582100.0),
    ("Maastricht, Vrijthof", 176100.0, 317800.0),
)


ASSETS = Path(__file__).resolve().parents[2] / "assets"
# Street furniture placed at these RD New + NAP positions (next to the sample parking zones);
# the bench is the planned object of the demo's participation round, so it is public.
FURNITURE: tuple[tuple[str, float, float, float, float, dict[str, str]], ...] = (
    ("lamp_post.glb", 111_765.0, 481_150.0, -3.6, 90.0, {}),
    ("bench.glb", *BENCH_RD, 0.0, {"lifecycle": "planned", "public": "true"}),
)
SAMPLES = ("parking_zones.geojson", "cables_pipes.geojson", "buildings.city.json", "tree_scan.laz")
LAYER = "demo"


def run_demo(
    settings: Settings,
    console: Console | None = None,
    *,
    port: int = 8000,
    keep_serving: bool = True,
) -> list[dict[str, Any]]:
    """Print the georeferencing table, start the server on the embedded default, import the
    sample assets through the API, print the URLs and a viewer token; then serve until Ctrl-C
    (or return the imported assets with ``keep_serving=False``)."""
    out = console or Console()
    show_georeferencing(out)
    server, base_url = start_server(settings, port)
    if not base_url.endswith(f":{port}"):
        out.print(
            f"[yellow]Port {port} is in use by another program (an earlier demo still running?); "
            f"this demo serves on {base_url} instead (choose one with --port).[/]",
            soft_wrap=True,
        )
    try:
        engine = open_database(settings)
        try:
            gis, _ = create_token(engine, "gis", "demo import")
            viewer, _ = create_token(engine, "viewer", "demo viewer")
            inspector, _ = create_token(engine, "inspector", "demo inspector")
            planner, _ = create_token(engine, "planner", "demo planner")
        finally:
            engine.dispose()
        out.print()
        out.print(f"[bold]arserver is running at {base_url}; importing the sample assets[/]")
        imported = import_samples(base_url, gis, out)
        with ServerClient(base_url, inspector) as field, ServerClient(base_url, planner) as plans:
            round_link = seed_field_work(field, plans, imported, out)
        with ServerClient(base_url, gis) as editor:
            seed_norms(editor)
            seed_parking(editor)
        sink = HttpSink(ServerClient(base_url, gis))
        stop = threading.Event()
        simulated = simulation.run(sink, backfill_hours=24.0, iterations=1)
        out.print(f"  simulated sensors: {simulated} observations (24 h of history, then live)")
        if keep_serving:
            live = threading.Thread(
                target=simulation.run,
                args=(sink,),
                kwargs={"interval_s": 5.0, "stop": stop.is_set},
                name="arserver-demo-sensors",
                daemon=True,
            )
            live.start()
        out.print()
        # soft_wrap: long URLs stay on one line, so that they can be copied
        out.print(f"API docs (OpenAPI):  {base_url}/docs", soft_wrap=True)
        scene = f"{base_url}/tiles/scene/{LAYER}/tileset.json"
        out.print(f"scene tileset:       {scene}?access_token={viewer}", soft_wrap=True)
        out.print(f"viewer token:        {viewer}", soft_wrap=True)
        latest = f"{base_url}/api/v1/observations/latest?bbox=4.74,52.31,4.77,52.32"
        out.print(f"sensors, latest:     {latest}&access_token={viewer}", soft_wrap=True)
        live_url = ServerClient(base_url, viewer).live_connect_url()
        out.print(f"live overlay:        {live_url}", soft_wrap=True)
        watch = (
            f"arserver watch --server {base_url} --token {viewer} "
            "--center 4.7538,52.3166 --radius 200 --origin 4.7538,52.3166,42"
        )
        out.print(f"  watch it with:     {watch}", soft_wrap=True)
        newest = "Observations($orderby=phenomenonTime%20desc;$top=1)"
        sta = f"{base_url}/sta/v1.1/Datastreams?$expand={newest}"
        out.print(f"SensorThings API:    {sta}&access_token={viewer}", soft_wrap=True)
        parking = f"{base_url}/api/v1/parking/places"
        out.print(f"parking, now + 1 h:  {parking}?access_token={viewer}", soft_wrap=True)
        inspections = f"{base_url}/api/v1/inspections/export?format=geojson"
        out.print(f"inspections:         {inspections}&access_token={viewer}", soft_wrap=True)
        if round_link is not None:
            out.print(f"round, public link:  {base_url}{round_link}", soft_wrap=True)
        assets_page = f"{base_url}/viewer/assets#access_token={gis}"
        out.print(f"assets (upload):     {assets_page}", soft_wrap=True)
        if keep_serving:
            out.print("Serving, with live simulated sensors, until Ctrl-C.")
        if (settings.viewer_dir / "index.html").is_file():
            out.print()
            out.print("[bold]Open the viewer:[/]")
            out.print(f"{base_url}/viewer?layer={LAYER}#access_token={viewer}", soft_wrap=True)
        else:
            out.print(
                "[yellow]The viewer is not built (it needs Node.js 20+ and npm: "
                "apt-get install nodejs npm, then make viewer); the rest works without it.[/]"
            )
        if keep_serving:
            server.wait()
            stop.set()
        sink.close()
        return imported
    finally:
        server.stop()


#: The demo's norms, as threshold rules: the viewer colours sensor values by them and alerts
#: open when they are exceeded. NO2 and PM2.5: the EU annual limit values (Directive
#: 2008/50/EC), applied to hourly means for the demo; noise: a day-time level for a busy square.
NORMS: tuple[dict[str, Any], ...] = (
    {"name": "NO2 above 40 ug/m3 (EU limit value)", "kind": "no2", "threshold": 40.0,
     "reset": 35.0, "window": "1h"},
    {"name": "PM2.5 above 25 ug/m3 (EU limit value)", "kind": "pm25", "threshold": 25.0,
     "reset": 20.0, "window": "1h"},
    {"name": "Noise above 65 dB(A)", "kind": "noise_laeq", "threshold": 65.0, "reset": 60.0,
     "window": "15m"},
)  # fmt: skip


def seed_norms(client: ServerClient) -> None:
    """Add the :data:`NORMS` rules the server does not hold yet (by name)."""
    held = {rule["name"] for rule in client.call("GET", "/api/v1/rules")["rules"]}
    for rule in NORMS:
        if rule["name"] not in held:
            client.call("POST", "/api/v1/rules", json=rule)


def seed_parking(client: ServerClient) -> None:
    """The sample parking zones (RD New, with their capacity) as parking places, unless the
    server holds zones already; the simulated bay sensors stand in zone P2."""
    if client.call("GET", "/api/v1/parking/zones")["places"]:
        return
    document = json.loads((ASSETS / "parking_zones.geojson").read_text(encoding="utf-8"))
    client.call("POST", "/api/v1/parking/zones/import", json=document)


def import_samples(base_url: str, token: str, out: Console) -> list[dict[str, Any]]:
    """Upload every sample the layer does not hold yet (the street furniture placed at its RD
    New + NAP position and heading), then wait for each conversion; samples that an earlier run
    imported (by name, not failed) are reused. Returns the assets' last states."""
    to_geodetic = Transformer.from_crs("EPSG:7415", "EPSG:4979")
    jobs: list[tuple[str, dict[str, str]]] = [(name, {}) for name in SAMPLES]
    for name, x, y, nap, heading, extra in FURNITURE:
        lon, lat, h = to_geodetic.transform([x], [y], [nap])
        assert h is not None
        origin = f"{float(lon[0])!r},{float(lat[0])!r},{float(h[0])!r}"
        jobs.append((name, {"origin": origin, "heading": str(heading), **extra}))
    results = []
    with ServerClient(base_url, token, timeout_s=UPLOAD_TIMEOUT_S) as client:
        held = client.call("GET", "/api/v1/assets", params={"layer": LAYER, "limit": 1000})
        earlier: dict[str, dict[str, Any]] = {}
        for asset in reversed(held["assets"]):  # newest last, so the newest of a name wins
            if asset["status"] != "failed":
                earlier[asset["name"]] = asset
        queued = [
            (name, name in earlier, earlier.get(name) or client.upload(
                ASSETS / name, {"name": name, "layer": LAYER, **fields}
            ))
            for name, fields in jobs
        ]  # fmt: skip
        for name, reused, asset in queued:
            state = client.wait(asset["id"])
            results.append(state)
            how = "reused" if reused else "ready "
            if state["status"] == "ready":
                out.print(f"  {name:<22} {how}  {base_url}{state['tileset']}", soft_wrap=True)
            else:
                out.print(f"  {name:<22} [red]failed[/]  {state['error']}", soft_wrap=True)
    return results


def show_georeferencing(out: Console) -> None:
    """NAP 0 m at landmarks: RDNAPTRANS(TM)2018 beside PROJ's ballpark, and a throughput run."""
    x = np.array([p[1] for p in LANDMARKS])
    y = np.array([p[2] for p in LANDMARKS])
    nap = np.zeros_like(x)

    to_etrs = Transformer.from_crs("EPSG:7415", "EPSG:4937")
    to_ecef = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    lon, lat, h = to_etrs.transform(x, y, nap)
    ex, ey, ez = to_ecef.transform(x, y, nap)
    assert h is not None
    assert ez is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PROJ warns that its best operation lacks grids
        ballpark = pyproj.Transformer.from_crs("EPSG:7415", "EPSG:4979", always_xy=True)
    _, _, h_ballpark = ballpark.transform(x, y, nap)

    table = Table(title="NAP 0 m at well-known places: ellipsoidal height h (ETRS89)")
    for column in ("place", "RD x, y (m)", "lon, lat (deg)", "h (m)"):
        table.add_column(column)
    table.add_column("ballpark error (m)", style="red")
    for i, (name, *_rest) in enumerate(LANDMARKS):
        table.add_row(
            name,
            f"{x[i]:.0f}, {y[i]:.0f}",
            f"{lon[i]:.8f}, {lat[i]:.8f}",
            f"{h[i]:.3f}",
            f"{h_ballpark[i] - h[i]:+.1f}",
        )
    out.print(table)
    out.print(
        f"{LANDMARKS[0][0]} in the Earth-centred frame of 3D Tiles: "
        f"X={ex[0]:.3f} Y={ey[0]:.3f} Z={ez[0]:.3f} m"
    )
    out.print(f"operation: {to_ecef.operation.summary()}")
    out.print(
        "Without the Dutch grids PROJ falls back to a ballpark height: every asset would stand "
        f"{-float(np.max(h_ballpark - h)):.1f} to {-float(np.min(h_ballpark - h)):.1f} m too low."
    )

    n = 1_000_000
    rng = np.random.default_rng(7)
    bx = rng.uniform(13_000.0, 278_000.0, n)
    by = rng.uniform(306_000.0, 619_000.0, n)
    bz = rng.uniform(-5.0, 100.0, n)
    start = time.perf_counter()
    to_ecef.transform(bx, by, bz)
    seconds = time.perf_counter() - start
    out.print(f"throughput: {n:,} RD+NAP points to ECEF in {seconds:.2f} s ({n / seconds:,.0f}/s)")
    out.print(
        "Try it yourself: echo '155000 463000 0' | "
        ".venv/bin/arserver transform --from EPSG:7415 --to EPSG:4979"
    )
