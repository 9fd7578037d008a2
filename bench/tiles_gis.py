"""Benchmark: GIS features to 3D Tiles: 100,000 extruded polygons and 10,000 pipes (RD New).

Reports features per second for each file, end to end (parse, RDNAPTRANS(TM)2018 placement,
meshing, tiling, GLB writing). Each run is a fresh process; medians are reported.

    python bench/tiles_gis.py [--polygons 100000] [--pipes 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Measurement, machine, run

CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}}


def polygons(n: int) -> dict[str, object]:
    rng = np.random.default_rng(1)
    side = int(np.ceil(np.sqrt(n)))
    features = []
    for k in range(n):
        x = 115_000.0 + (k % side) * 20.0
        y = 480_000.0 + (k // side) * 20.0
        w, d = rng.uniform(6, 14, 2)
        ring = [[x, y], [x + w, y], [x + w, y + d], [x + w / 2, y + d * 1.3], [x, y + d], [x, y]]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "id": k,
                    "height": round(float(rng.uniform(3, 30)), 2),
                    "base": -1.0,
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "crs": CRS, "features": features}


def pipes(n: int) -> dict[str, object]:
    rng = np.random.default_rng(2)
    features = []
    for k in range(n):
        start = rng.uniform([115_000.0, 480_000.0], [121_000.0, 486_000.0])
        steps = rng.normal(0, 15, (int(rng.integers(2, 6)), 2)).cumsum(axis=0)
        line = np.vstack([start, start + steps]).round(3).tolist()
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "id": k,
                    "thema": "water",
                    "depth": 1.2,
                    "diameter": 160,
                    "ground": -1.0,
                },
                "geometry": {"type": "LineString", "coordinates": line},
            }
        )
    return {"type": "FeatureCollection", "crs": CRS, "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polygons", type=int, default=100_000)
    parser.add_argument("--pipes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arserver-bench-") as tmp:
        work = Path(tmp)
        inputs = {
            "polygons": (polygons(args.polygons), args.polygons),
            "pipes": (pipes(args.pipes), args.pipes),
        }
        rows = {}
        for name, (document, _) in inputs.items():
            (work / f"{name}.geojson").write_text(json.dumps(document))
            rows[name] = Measurement(name)
        for _ in range(args.repeats):
            for name in inputs:
                source, out = work / f"{name}.geojson", work / f"{name}-out"
                run(
                    f"from tiles.convert import convert; convert([{str(source)!r}], {str(out)!r})",
                    rows[name],
                )
    print(f"# GIS features to 3D Tiles, medians of {args.repeats} runs")
    print(f"# machine: {machine()}")
    print()
    print("| input | features | median s | features/s | peak MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, (_, count) in inputs.items():
        m = rows[name]
        label = "extruded polygons" if name == "polygons" else "pipes (tubes, 2-6 vertices)"
        print(f"| {label} | {count:,} | {m.median:.1f} | {count / m.median:,.0f} | {m.peak:.0f} |")


if __name__ == "__main__":
    main()
