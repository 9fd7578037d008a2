"""Benchmark: RD New + NAP (EPSG:7415) -> ECEF (EPSG:4978) on one core.

Measures tiles.crs (RDNAPTRANS(TM)2018, centimetre-true) beside pyproj's own transform of the
same array in the same run (without the Dutch grids PROJ picks a ballpark operation, 41-46 m off
in height), and the certified pure-Python pyrdnap on a sample for scale. Runs are interleaved and
the median is reported, because the machine is shared and noisy.

    python bench/crs_rd_to_ecef.py [--points 10000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pyproj

from tiles.crs import Transformer


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def proj_candidates() -> str:
    """What PROJ can use here for the same transformation: ballpark operations only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = pyproj.transformer.TransformerGroup("EPSG:7415", "EPSG:4978", always_xy=True)
    return (
        f"first of {len(group.transformers)} usable candidates: {group.transformers[0].description}"
    )


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-sample", type=int, default=20_000)
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    n = args.points
    x = rng.uniform(13_000.0, 278_000.0, n)
    y = rng.uniform(306_000.0, 619_000.0, n)
    nap = rng.uniform(-5.0, 100.0, n)

    ours = Transformer.from_crs("EPSG:7415", "EPSG:4978")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PROJ warns that the best operation lacks its grids
        theirs = pyproj.Transformer.from_crs("EPSG:7415", "EPSG:4978", always_xy=True)

    ours.transform(x[:1000], y[:1000], nap[:1000])  # load the grids before timing
    times: dict[str, list[float]] = {"ours": [], "pyproj": []}
    for _ in range(args.repeats):
        times["ours"].append(timed(lambda: ours.transform(x, y, nap)))
        times["pyproj"].append(timed(lambda: theirs.transform(x, y, nap)))

    ex, ey, ez = ours.transform(x[:100_000], y[:100_000], nap[:100_000])
    px, py, pz = theirs.transform(x[:100_000], y[:100_000], nap[:100_000])
    assert ez is not None
    offset = np.sqrt((ex - px) ** 2 + (ey - py) ** 2 + (ez - pz) ** 2)

    rows = []
    for name, label, operation in (
        ("ours", "tiles.crs (RDNAPTRANS(TM)2018 v1, NumPy)", ours.operation.summary()),
        ("pyproj", "pyproj, no grids (PROJ picks ballpark)", proj_candidates()),
    ):
        median = statistics.median(times[name])
        rows.append((label, median, n / median, operation))

    sample = min(args.reference_sample, n)
    reference_rate = None
    try:
        import pyrdnap

        reference = pyrdnap.RDNAP2018v1()
        seconds = timed(
            lambda: [
                reference.reverse(a, b, c)
                for a, b, c in zip(x[:sample], y[:sample], nap[:sample], strict=True)
            ]
        )
        reference_rate = sample / seconds
    except ImportError:
        pass

    print(f"# RD New + NAP -> ECEF, {n:,} points, median of {args.repeats} interleaved runs")
    print(
        f"# machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pyproj {pyproj.__version__} (PROJ {pyproj.proj_version_str})"
    )
    print()
    print("| implementation | median s | points/s | time vs pyproj |")
    print("|---|---:|---:|---:|")
    pyproj_median = rows[1][1]
    for label, median, rate, _ in rows:
        print(f"| {label} | {median:.3f} | {rate:,.0f} | {median / pyproj_median:.2f}x |")
    if reference_rate is not None:
        print(
            f"| pyrdnap RDNAP2018v1 (pure Python, {sample:,}-point sample) | "
            f"{n / reference_rate:.1f} (extrapolated) | {reference_rate:,.0f} | "
            f"{(n / reference_rate) / pyproj_median:.1f}x |"
        )
    print()
    print(
        f"all runs (s): ours {[round(t, 3) for t in times['ours']]}, "
        f"pyproj {[round(t, 3) for t in times['pyproj']]}"
    )
    print(f"pyproj's ballpark result is {offset.min():.1f} to {offset.max():.1f} m from ours")
    for label, _, _, operation in rows:
        print(f"{label}: {operation}")


if __name__ == "__main__":
    main()
