"""Weekly occupancy profiles: the typical occupancy rate of a lot per day type and local slot.

A profile has 8 day types (Monday..Sunday, then Dutch public holidays) x 96 local 15-minute slots
(Europe/Amsterdam, see :mod:`.calendar`), each a typical occupancy rate 0..1. It is built from
one :class:`~.series.Series`:

1. the occupancy observations are averaged per UTC 15-minute slot (equal to a local slot);
2. per day type and slot, a recency-weighted 20% trimmed mean over the days of that type, with
   the neighbouring slots of the same days at half weight (robust to a stuck counter or an odd
   day, and smoother than a single slot's few values);
3. Monday..Friday are shrunk towards the mean of the weekday profiles in proportion to how few days
   they have; the holiday profile is blended with Sunday (all Sunday with no holiday in the data,
   half with one, one third with two, ...);
4. slots with no data are interpolated from neighbouring slots of the same day type; a day type
   with no data at all takes the all-days profile.

A profile built from no usable data is not ``valid`` and gives NaN everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from arserver.insight.parking import calendar
from arserver.insight.parking.calendar import HOLIDAY, N_DAY_TYPES, SLOT_SECONDS, SLOTS_PER_DAY
from arserver.insight.parking.series import Series

FloatArray = npt.NDArray[np.float64]

#: Recency half-life of the day weights, days.
HALF_LIFE_DAYS = 28.0
#: Fraction trimmed from each end of a slot's weighted values.
TRIM = 0.2
#: A day counts towards its day type with at least this many slots of data.
MIN_SLOTS_PER_DAY = 16


@dataclass(frozen=True, eq=False)
class Profile:
    """Typical occupancy rate (0..1) per day type (0..7) and local slot (0..95).

    ``values`` has shape (8, 96); ``days`` counts the days of data per day type (holidays
    counted only under 7); ``valid`` is False when the profile was built from no data (then
    ``values`` is NaN). Arrays are owned by the profile; do not write to them."""

    values: FloatArray
    days: npt.NDArray[np.int64]
    valid: bool

    @property
    def total_days(self) -> int:
        """Days of data the profile was built from."""
        return int(self.days.sum())

    def at(self, times: npt.ArrayLike) -> FloatArray:
        """Occupancy rate at each epoch second, linear between slot centres (so it moves
        smoothly from one quarter hour to the next, across midnight and day types too)."""
        t = np.asarray(times, dtype=np.float64)
        if not self.valid:
            return np.full(t.shape, np.nan)
        u = (t - SLOT_SECONDS / 2) / SLOT_SECONDS
        k0 = np.floor(u)
        frac = u - k0
        centres = np.stack([k0, k0 + 1]) * SLOT_SECONDS + SLOT_SECONDS / 2
        types, slots = calendar.day_type_and_slot(centres)
        both = self.values[types, slots]
        out = (1.0 - frac) * both[0] + frac * both[1]
        return np.where(np.isfinite(t), out, np.nan)

    def peaks(self, n: int = 3) -> list[tuple[str, str, float]]:
        """The ``n`` busiest moments of the week: per day type its busiest slot, as
        ``(day type name, "HH:MM" local start of the slot, rate)``, highest rate first."""
        if not self.valid or n <= 0:
            return []
        found: list[tuple[str, str, float]] = []
        for d in range(N_DAY_TYPES):
            s = int(np.argmax(self.values[d]))
            found.append(
                (calendar.DAY_TYPE_NAMES_ALL[d], calendar.slot_label(s), float(self.values[d, s]))
            )
        found.sort(key=lambda item: -item[2])
        return found[:n]

    def to_json(self) -> dict[str, Any]:
        """``{"timezone", "slot_minutes", "days": {name: [96 rates or None]}, "days_of_data":
        {name: count}, "peaks": [...]}``; rates rounded to 4 decimals."""
        days: dict[str, list[float | None]] = {}
        for d, name in enumerate(calendar.DAY_TYPE_NAMES_ALL):
            days[name] = [
                round(float(v), 4) if math.isfinite(float(v)) else None for v in self.values[d]
            ]
        return {
            "timezone": str(calendar.ZONE),
            "slot_minutes": SLOT_SECONDS // 60,
            "days": days,
            "days_of_data": {
                name: int(self.days[d]) for d, name in enumerate(calendar.DAY_TYPE_NAMES_ALL)
            },
            "peaks": [
                {"day": day, "time": time, "rate": round(rate, 4)}
                for day, time, rate in self.peaks(3)
            ],
        }


@dataclass(frozen=True, eq=False)
class DayMatrix:
    """A lot's occupancy per local date (rows) and local slot (96 columns), NaN where there
    was no observation; ``days`` are local dates as days since 1970-01-01 and ``types`` their
    day types."""

    days: npt.NDArray[np.int64]
    types: npt.NDArray[np.int64]
    values: FloatArray

    @classmethod
    def of(cls, series: Series, until: float | None = None) -> DayMatrix:
        """Slot means of the points of ``series`` with ``time < until`` (all when None)."""
        s = series if until is None else series.until(until, inclusive=False)
        if len(s) == 0:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty.copy(), np.empty((0, SLOTS_PER_DAY)))
        k = np.floor(s.times / SLOT_SECONDS).astype(np.int64)
        k0 = int(k[0])
        rel = k - k0
        n = int(rel[-1]) + 1
        sums = np.bincount(rel, weights=s.occupancy, minlength=n)
        counts = np.bincount(rel, minlength=n)
        used = np.flatnonzero(counts)
        means = sums[used] / counts[used]
        centres = (used + k0) * float(SLOT_SECONDS) + SLOT_SECONDS / 2
        local_days = calendar.local_day(centres)
        types, slots = calendar.day_type_and_slot(centres)
        unique_days, row = np.unique(local_days, return_inverse=True)
        values = np.full((unique_days.size, SLOTS_PER_DAY), np.nan)
        values[row, slots] = means
        day_types = np.zeros(unique_days.size, dtype=np.int64)
        day_types[row] = types
        return cls(unique_days, day_types, values)


def _trimmed_mean(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Per column of ``values`` (rows = samples), the weighted mean of the samples whose
    cumulative-weight midpoint lies within ``TRIM..1-TRIM``, or the weighted median where that
    leaves none; NaN for columns without samples. NaN values carry no weight."""
    w = np.where(np.isfinite(values), weights, 0.0)
    v = np.where(np.isfinite(values), values, np.inf)
    order = np.argsort(v, axis=0, kind="stable")
    v = np.take_along_axis(v, order, axis=0)
    w = np.take_along_axis(w, order, axis=0)
    total = w.sum(axis=0)
    cum = np.cumsum(w, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = (cum - w / 2) / total
        keep = (mid >= TRIM) & (mid <= 1 - TRIM) & (w > 0)
        kw = np.where(keep, w, 0.0)
        vz = np.where(np.isfinite(v), v, 0.0)
        mean = (kw * vz).sum(axis=0) / kw.sum(axis=0)
        median_idx = np.argmax(cum >= total / 2, axis=0)
    median = vz[median_idx, np.arange(v.shape[1])]
    out = np.where(kw.sum(axis=0) > 0, mean, median)
    return np.where(total > 0, out, np.nan)


def _mean_of(rows: FloatArray, counts: npt.NDArray[np.int64]) -> FloatArray:
    """Per slot, the mean of the finite ``rows`` weighted by their day ``counts`` (at least
    1 each); NaN where no row has a value."""
    w = np.where(np.isfinite(rows), np.maximum(counts, 1)[:, None].astype(np.float64), 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.nan_to_num(rows) * w).sum(axis=0) / total
    return np.where(total > 0, out, np.nan)


def _fill_slots(row: FloatArray) -> FloatArray:
    """Linear interpolation over the circular 96 slots; all NaN stays all NaN."""
    ok = np.isfinite(row)
    if ok.all() or not ok.any():
        return row
    idx = np.flatnonzero(ok)
    x = np.concatenate([idx - SLOTS_PER_DAY, idx, idx + SLOTS_PER_DAY])
    y = np.tile(row[idx], 3)
    filled: FloatArray = np.interp(np.arange(SLOTS_PER_DAY), x, y)
    return filled


def profile_of_matrix(
    matrix: DayMatrix,
    *,
    rows: npt.NDArray[np.bool_] | None = None,
    half_life_days: float = HALF_LIFE_DAYS,
) -> Profile:
    """The profile of the rows of ``matrix`` selected by ``rows`` (all when None)."""
    values, types, days = matrix.values, matrix.types, matrix.days
    if rows is not None:
        values, types, days = values[rows], types[rows], days[rows]
    counted = np.isfinite(values).sum(axis=1) >= MIN_SLOTS_PER_DAY
    day_counts = np.bincount(types[counted], minlength=N_DAY_TYPES).astype(np.int64)
    if values.shape[0] == 0 or not np.isfinite(values).any():
        return Profile(
            np.full((N_DAY_TYPES, SLOTS_PER_DAY), np.nan), np.zeros(N_DAY_TYPES, np.int64), False
        )
    age = float(days.max()) - days
    weights = 0.5 ** (age / half_life_days)
    left = np.roll(values, 1, axis=1)
    right = np.roll(values, -1, axis=1)

    def pooled(select: npt.NDArray[np.bool_]) -> FloatArray:
        if not select.any():
            return np.full(SLOTS_PER_DAY, np.nan)
        v = np.concatenate([values[select], left[select], right[select]])
        w = np.concatenate([weights[select], weights[select] / 2, weights[select] / 2])
        return _trimmed_mean(v, np.broadcast_to(w[:, None], v.shape))

    own = np.stack([pooled(types == d) for d in range(N_DAY_TYPES)])
    all_days = _fill_slots(_mean_of(own[:7], day_counts[:7]))
    workdays = _fill_slots(_mean_of(own[:5], day_counts[:5]))
    out = own.copy()
    for d in range(5):
        n = float(day_counts[d])
        blend = (n * own[d] + workdays) / (n + 1.0)
        out[d] = np.where(np.isfinite(own[d]), blend, workdays)
    for d in range(N_DAY_TYPES):
        out[d] = _fill_slots(out[d])
        if not np.isfinite(out[d]).all():
            out[d] = np.where(np.isfinite(out[d]), out[d], all_days)
    n_h = float(day_counts[HOLIDAY])
    sunday = out[6]
    holiday = own[HOLIDAY]
    holiday = np.where(np.isfinite(holiday), (n_h * holiday + sunday) / (n_h + 1.0), sunday)
    out[HOLIDAY] = _fill_slots(holiday)
    out = np.clip(out, 0.0, 1.0)
    valid = bool(np.isfinite(out).all())
    return Profile(out, day_counts, valid)


def weekly_profile(
    series: Series, *, until: float | None = None, half_life_days: float = HALF_LIFE_DAYS
) -> Profile:
    """The weekly profile of ``series`` from its points with ``time < until`` (all when
    None); the recency weights count back from the last day of data."""
    return profile_of_matrix(DayMatrix.of(series, until), half_life_days=half_life_days)
