"""``arserver demo``: a first look at what the service gets right.

Well-known places, given in RD New + NAP (EPSG:7415) at NAP 0 m, go to ETRS89 and to the
Earth-centred frame of 3D Tiles with RDNAPTRANS(TM)2018, beside what PROJ does without the
Dutch grids (its "ballpark" takes NAP height as ellipsoidal height).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pyproj
from rich.console import Console
from rich.table import Table

from tiles.convert import ConvertOptions, convert
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


ASSETS = Path(__file__).resolve().parents[1] / "assets"
# Street furniture placed at these RD New + NAP positions (next to the sample parking zones).
FURNITURE: tuple[tuple[str, float, float, float, float], ...] = (
    ("lamp_post.glb", 111_765.0, 481_150.0, -3.6, 90.0),
    ("bench.glb", 111_770.0, 481_147.0, -3.6, 0.0),
)


def run_demo(data_dir: Path, console: Console | None = None) -> None:
    """Print the georeferencing table, then convert the sample assets into ``data_dir/demo``."""
    out = console or Console()
    show_georeferencing(out)
    convert_samples(data_dir / "demo", out)


def convert_samples(target: Path, out: Console) -> None:
    """The sample assets to tilesets: GeoJSON in RD New + NAP, models placed by origin."""
    to_geodetic = Transformer.from_crs("EPSG:7415", "EPSG:4979")
    jobs: list[tuple[str, ConvertOptions]] = [
        ("parking_zones.geojson", ConvertOptions()),
        ("cables_pipes.geojson", ConvertOptions()),
        ("buildings.city.json", ConvertOptions()),
        ("tree_scan.laz", ConvertOptions()),
    ]
    for name, x, y, nap, heading in FURNITURE:
        lon, lat, h = to_geodetic.transform([x], [y], [nap])
        assert h is not None
        origin = (float(lon[0]), float(lat[0]), float(h[0]))
        jobs.append((name, ConvertOptions(origin=origin, heading_deg=heading)))
    out.print()
    out.print(f"[bold]Converting the sample assets to 3D Tiles 1.1 in {target}[/]")
    for name, options in jobs:
        report = convert([ASSETS / name], target / name.split(".")[0], options)
        counts = report.summary["counts"]
        what = (
            f"{counts['points_in_tiles']} points"
            if "points_in_tiles" in counts
            else f"{counts['features']} features, {counts['triangles']} triangles"
        )
        accuracy = report.summary["accuracy_m"]
        out.print(f"  {name:<22} -> {report.tileset}  ({what}, accuracy {accuracy:g} m)")


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
