"""Benchmark: a 1.3-million-triangle mesh to a tiled tileset with levels of detail.

Beside the I/O floor: trimesh loading the same GLB and exporting it as one GLB. Also reports
quadric decimation of the whole mesh to 10% alone, and peak memory. Each run is a fresh process;
medians are reported.

    python bench/tiles_mesh.py [--subdivisions 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Measurement, machine, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subdivisions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arserver-bench-") as tmp:
        work = Path(tmp)
        mesh = trimesh.creation.icosphere(subdivisions=args.subdivisions, radius=100.0)
        source = work / "mesh.glb"
        mesh.export(source)
        triangles = len(mesh.faces)
        rows = {
            "ours": Measurement("tiles.convert: tiled, LOD by quadric decimation"),
            "floor": Measurement("I/O floor: trimesh load + export one GLB"),
            "decimate": Measurement("fast-simplification of the whole mesh to 10% alone"),
        }
        src, out, copy = str(source), str(work / "out"), str(work / "copy.glb")
        code = {
            "ours": (
                "from tiles.convert import ConvertOptions, convert\n"
                f"convert([{src!r}], {out!r}, ConvertOptions(origin=(4.9, 52.37, 43.0)))"
            ),
            "floor": f"import trimesh\ntrimesh.load({src!r}).export({copy!r})",
            "decimate": (
                "import trimesh, numpy as np, fast_simplification\n"
                f"m = trimesh.load({src!r}, force='mesh')\n"
                "faces = np.asarray(m.faces, dtype=np.int32)\n"
                "fast_simplification.simplify(np.asarray(m.vertices), faces, target_reduction=0.9)"
            ),
        }
        for _ in range(args.repeats):
            for key in rows:
                run(code[key], rows[key])
    floor = rows["floor"].median
    print(f"# mesh, {triangles:,} triangles (icosphere), medians of {args.repeats} runs")
    print(f"# machine: {machine()}")
    print()
    print("| step | median s | x I/O floor | peak MiB |")
    print("|---|---:|---:|---:|")
    for m in rows.values():
        print(f"| {m.label} | {m.median:.2f} | {m.median / floor:.1f}x | {m.peak:.0f} |")


if __name__ == "__main__":
    main()
