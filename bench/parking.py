"""Benchmark: training and forecast refresh of the parking forecaster for many lots.

``--lots`` zones and car parks (default 1,000) with four weeks of 15-minute history each (the
synthetic generator, messy, resampled to a 15-minute grid). Measured: ``Forecaster.fit`` on all
of it; one forecast refresh of every lot at all three horizons (``forecast_many``); and, as the
baseline in the same run, the refresh of the profile_delta rule (last value + profile change,
the profiles already built). Goals: refresh under 1 s, training under 60 s, peak memory under
1 GiB (the peak resident size of this process, generating the data included).

    python bench/parking.py [--lots 1000] [--days 28] [--repeats 5] [--variant realistic]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import machine

from arserver.insight.parking import baselines
from arserver.insight.parking.forecast import HORIZONS_MIN, Forecaster
from arserver.insight.parking.profile import weekly_profile
from arserver.insight.parking.series import Series, resample
from arserver.insight.parking.synthetic import (
    DEFAULT_START,
    DEFAULT_VARIANT,
    VARIANTS,
    generate_series,
)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quarter_hourly(lots: dict[str, Series], days: int) -> dict[str, Series]:
    out = {}
    count = days * 96
    grid = DEFAULT_START + 900.0 * np.arange(count)
    for name, s in lots.items():
        free = resample(s, DEFAULT_START, 900.0, count, max_age=900.0)
        ok = np.isfinite(free)
        out[name] = Series.build(grid[ok], free[ok], s.capacity)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lots", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT)
    args = parser.parse_args()

    start = time.perf_counter()
    lots = quarter_hourly(
        generate_series(args.lots, args.days + 1, seed=7, variant=args.variant), args.days + 1
    )
    generated = time.perf_counter() - start
    points = sum(len(s) for s in lots.values())
    until = DEFAULT_START + args.days * 86400.0
    origin = until + 9.5 * 3600.0  # a weekday morning after the training period

    start = time.perf_counter()
    forecaster = Forecaster.fit(lots, until=until)
    fit_s = time.perf_counter() - start

    refresh = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        found = forecaster.forecast_many(lots, origin)
        refresh.append(time.perf_counter() - start)
    served = sum(len(v) for v in found.values())
    methods = {f.method for v in found.values() for f in v}

    profiles = {name: weekly_profile(s, until=until) for name, s in lots.items()}
    rule = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for name, s in lots.items():
            for h in HORIZONS_MIN:
                baselines.profile_delta(s, profiles[name], np.array([origin]), 60.0 * h)
        rule.append(time.perf_counter() - start)

    model_s, rule_s = statistics.median(refresh), statistics.median(rule)
    print(f"parking forecaster, {machine()}")
    print(
        f"{args.lots} lots x {args.days} days of 15-minute history ({points:,} points, "
        f"generated in {generated:.1f} s, {args.variant}); "
        f"{forecaster.trained_rows:,} training rows per horizon; median of {args.repeats} "
        "refreshes"
    )
    print()
    print(f"{'stage':<46}{'seconds':>10}{'goal':>10}{'vs rule':>10}")
    print(f"{'fit (all lots, 3 horizons)':<46}{fit_s:>10.2f}{'< 60':>10}{'':>10}")
    print(
        f"{'refresh: model, forecast_many (3 horizons)':<46}{model_s:>10.3f}{'< 1':>10}"
        f"{model_s / rule_s:>9.2f}x"
    )
    print(f"{'refresh: profile_delta rule (baseline)':<46}{rule_s:>10.3f}{'':>10}{'1.00x':>10}")
    print()
    print(
        f"forecasts served: {served:,} ({', '.join(sorted(methods))}); "
        f"peak memory {peak_mib():.0f} MiB (goal < 1024)"
    )


if __name__ == "__main__":
    main()
