"""Benchmark: a point cloud in RD New + NAP (LAS) to 3D Tiles, beside ``py3dtiles convert``.

Rows: tiles.convert (py3dtiles' octree + RDNAPTRANS(TM)2018 placement + valid 1.1 GLB), and
py3dtiles 12.1.1 on the same file, once keeping the source CRS and once reprojecting to ECEF
(EPSG:4978) as a py3dtiles user would for a globe; without the Dutch grids PROJ then takes the
ballpark, 41-46 m low. Runs are interleaved, each in a fresh process; medians are reported.

    python bench/tiles_points.py [--points 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import laspy
import numpy as np
import pyproj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Measurement, machine, run


def make_las(path: Path, n: int) -> None:
    """A 1 km x 1 km synthetic scan near Amsterdam: terrain, buildings-like blocks, colours."""
    rng = np.random.default_rng(42)
    header = laspy.LasHeader(point_format=3, version="1.4")
    header.offsets = [120_000.0, 487_000.0, 0.0]
    header.scales = [0.001, 0.001, 0.001]
    header.add_crs(pyproj.CRS.from_epsg(7415))
    with laspy.open(path, mode="w", header=header) as writer:
        chunk = 1_000_000
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            x = rng.uniform(120_000.0, 121_000.0, m)
            y = rng.uniform(487_000.0, 488_000.0, m)
            z = (
                -1.0
                + 2.0 * np.sin(x / 70.0) * np.cos(y / 90.0)
                + (rng.random(m) < 0.3) * rng.uniform(3, 25, m)
            )
            points = laspy.ScaleAwarePointRecord.zeros(m, header=header)
            points.x, points.y, points.z = x, y, z
            grey = rng.integers(0, 65535, m, dtype=np.uint16)
            points.red, points.green, points.blue = grey, grey, grey
            writer.write_points(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arserver-bench-") as tmp:
        work = Path(tmp)
        source = work / "scan.las"
        make_las(source, args.points)
        rows = {
            "ours": Measurement("tiles.convert (RDNAPTRANS(TM)2018, 1.1 GLB)"),
            "py3dtiles": Measurement("py3dtiles convert, source CRS kept (not on the globe)"),
            "py3dtiles_ecef": Measurement("py3dtiles convert --srs_out 4978 (ballpark heights)"),
        }
        src = str(source)
        code = {
            "ours": f"from tiles.convert import convert\nconvert([{src!r}], {str(work / 'o')!r})",
            "py3dtiles": (
                "from py3dtiles.convert import convert\n"
                f"convert([{src!r}], outfolder={str(work / 'p3')!r}, overwrite=True)"
            ),
            "py3dtiles_ecef": (
                "import pyproj\nfrom py3dtiles.convert import convert\n"
                f"convert([{src!r}], outfolder={str(work / 'p3e')!r}, overwrite=True, "
                "crs_out=pyproj.CRS.from_epsg(4978))"
            ),
        }
        for _ in range(args.repeats):
            for key in rows:
                run(code[key], rows[key])
    baseline = rows["py3dtiles_ecef"].median
    print(f"# {args.points:,} points (LAS 1.4, RD New + NAP), medians of {args.repeats} runs")
    print(f"# machine: {machine()}")
    print()
    print("| pipeline | median s | points/s | time vs py3dtiles to ECEF | peak MiB |")
    print("|---|---:|---:|---:|---:|")
    for m in rows.values():
        rate = args.points / m.median
        ratio = m.median / baseline
        print(f"| {m.label} | {m.median:.1f} | {rate:,.0f} | {ratio:.2f}x | {m.peak:.0f} |")
    print()
    for m in rows.values():
        print(f"{m.label}: runs {[round(s, 1) for s in m.seconds]}")


if __name__ == "__main__":
    main()
