"""One car park's or zone's counter history: free spaces over time, cleaned once on the way in.

A :class:`Series` is immutable and always clean: times are finite epoch seconds (UTC) in strictly
ascending order, ``free`` holds finite free-space counts clamped to ``0..capacity``, and
``capacity`` is a positive number of spaces. :meth:`Series.build` makes one from raw points and
says how many it dropped or clamped. "As of" lookups take the last value at or before a time,
never a later one, which is what keeps forecasts free of look-ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from arserver.errors import InputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Series:
    """Free spaces of one lot over time.

    ``times``: float64 epoch seconds, strictly ascending. ``free``: float64 free spaces,
    ``0 <= free <= capacity``. ``capacity``: spaces (> 0). ``clamped``: how many input values
    were outside ``0..capacity`` and were clamped; ``dropped``: input points dropped (non-finite
    or a duplicate time). The arrays are owned by the series; do not write to them.
    """

    times: FloatArray
    free: FloatArray
    capacity: float
    clamped: int = 0
    dropped: int = 0
    _occupancy: FloatArray | None = field(default=None, repr=False, compare=False)
    _run_start: FloatArray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, times: npt.ArrayLike, free: npt.ArrayLike, capacity: float) -> Series:
        """Sort by time, drop non-finite points, keep the last of points with the same time
        (the last in input order), clamp ``free`` to ``0..capacity`` and count what changed.

        Raises :class:`~arserver.errors.InputError` if ``capacity`` is not a positive number or
        the arrays differ in length."""
        if not (isinstance(capacity, int | float) and math.isfinite(capacity) and capacity > 0):
            raise InputError(f"capacity must be a positive number of spaces, not {capacity!r}")
        t = np.asarray(times, dtype=np.float64).ravel()
        f = np.asarray(free, dtype=np.float64).ravel()
        if t.shape != f.shape:
            raise InputError(f"{t.size} times but {f.size} free-space values")
        ok = np.isfinite(t) & np.isfinite(f)
        dropped = int(t.size - ok.sum())
        t, f = t[ok], f[ok]
        order = np.argsort(t, kind="stable")
        t, f = t[order], f[order]
        if t.size > 1:
            last_of_time = np.ones(t.size, dtype=bool)
            last_of_time[:-1] = t[1:] != t[:-1]
            dropped += int(t.size - last_of_time.sum())
            t, f = t[last_of_time], f[last_of_time]
        cap = float(capacity)
        outside = (f < 0) | (f > cap)
        f = np.clip(f, 0.0, cap)
        return cls(
            np.ascontiguousarray(t),
            np.ascontiguousarray(f),
            cap,
            clamped=int(outside.sum()),
            dropped=dropped,
        )

    @classmethod
    def empty(cls, capacity: float = 1.0) -> Series:
        """A series with no points."""
        return cls.build(np.empty(0), np.empty(0), capacity)

    def __len__(self) -> int:
        return int(self.times.size)

    @property
    def occupancy(self) -> FloatArray:
        """Occupancy rate ``1 - free / capacity`` (0..1) at each point; cached."""
        if self._occupancy is None:
            object.__setattr__(self, "_occupancy", 1.0 - self.free / self.capacity)
        assert self._occupancy is not None
        return self._occupancy

    @property
    def run_start(self) -> FloatArray:
        """For each point, the time of the first point of the run of equal values it belongs
        to (so ``time - run_start`` is how long the counter has shown this value); cached."""
        if self._run_start is None:
            n = self.free.size
            start = np.ones(n, dtype=bool)
            if n > 1:
                start[1:] = self.free[1:] != self.free[:-1]
            first = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else start
            object.__setattr__(self, "_run_start", self.times[first] if n else self.times.copy())
        assert self._run_start is not None
        return self._run_start

    def until(self, end: float, *, inclusive: bool = True) -> Series:
        """The points at or before ``end`` (strictly before when ``inclusive`` is False)."""
        n = int(np.searchsorted(self.times, end, side="right" if inclusive else "left"))
        if n == self.times.size:
            return self
        return Series(self.times[:n], self.free[:n], self.capacity, self.clamped, self.dropped)

    def span_days(self) -> float:
        """Days between the first and the last point (0 for fewer than two)."""
        if self.times.size < 2:
            return 0.0
        return float(self.times[-1] - self.times[0]) / 86400.0


def asof_index(times: FloatArray, at: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Index of the last point with ``time <= at`` for each query, -1 where there is none."""
    return np.searchsorted(times, np.asarray(at, dtype=np.float64), side="right") - 1


def asof(
    series: Series,
    at: npt.ArrayLike,
    *,
    max_age: float = math.inf,
    occupancy: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Value as of each time in ``at``: the last point at or before it, if at most ``max_age``
    seconds old, else NaN (so gaps stay gaps). Returns ``(values, ages)``: free spaces (or the
    occupancy rate with ``occupancy=True``) and the age in seconds (NaN where no value)."""
    q = np.asarray(at, dtype=np.float64)
    idx = asof_index(series.times, q)
    found = idx >= 0
    safe = np.where(found, idx, 0)
    src = series.occupancy if occupancy else series.free
    if series.times.size == 0:
        nan = np.full(q.shape, np.nan)
        return nan, nan.copy()
    values = src[safe]
    ages = q - series.times[safe]
    bad = ~found | ~(ages <= max_age)
    values = np.where(bad, np.nan, values)
    ages = np.where(bad, np.nan, ages)
    return values, ages


def resample(
    series: Series, start: float, step: float, count: int, *, max_age: float
) -> FloatArray:
    """Free spaces on the regular grid ``start + k * step`` (k = 0..count-1), as of each grid
    time with at most ``max_age`` seconds of age, NaN elsewhere. Returns a new array."""
    grid = start + step * np.arange(count, dtype=np.float64)
    return asof(series, grid, max_age=max_age)[0]
