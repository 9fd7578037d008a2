"""Shared benchmark plumbing: run a workload in a fresh process, time it, read its peak memory."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Measurement:
    label: str
    seconds: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> float:
        return max(self.peak_mib)


def run(code: str, measurement: Measurement, env: dict[str, str] | None = None) -> None:
    """Run ``code`` in a new Python process; record wall seconds and the peak resident memory
    of that process and its children (py3dtiles and our tilers use worker processes)."""
    wrapper = (
        "import resource, sys\n"
        f"exec({code!r})\n"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print('PEAK_KIB', max(own, kids), file=sys.stderr)\n"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{measurement.label} failed:\n{result.stderr[-2000:]}")
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KIB")]
    measurement.seconds.append(seconds)
    measurement.peak_mib.append(int(peak[-1].split()[1]) / 1024 if peak else float("nan"))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
