"""The three reference forecasts of free spaces, vectorised over forecast origins.

Each takes one lot's :class:`~.series.Series`, an array of origins (epoch seconds) and a horizon
(seconds), uses only points at or before each origin, and returns free spaces per origin (NaN
where the lot has no point at or before the origin), always within ``0..capacity``:

- :func:`last_value` (persistence): the last value at or before the origin;
- :func:`seasonal_naive`: the value as of one week before the target time (at most 15 minutes
  old), else the last value;
- :func:`profile_delta`: the last value plus the weekly profile's change from the time of that
  value to the target time, in spaces, clamped to ``0..capacity`` (the last value where the
  profile is not valid).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from arserver.insight.parking.profile import Profile
from arserver.insight.parking.series import Series, asof

FloatArray = npt.NDArray[np.float64]

WEEK = 7 * 86400.0
#: The oldest value that still counts as "the value at" a time (seasonal naive, actuals).
MAX_AGE = 900.0


def last_value(series: Series, origins: npt.ArrayLike) -> FloatArray:
    """Free spaces as of each origin (no age limit)."""
    return asof(series, origins)[0]


def seasonal_naive(series: Series, origins: npt.ArrayLike, horizon_s: float) -> FloatArray:
    """Free spaces as of ``origin + horizon - 7 days`` when at most :data:`MAX_AGE` old, else
    the last value. Needs ``horizon_s < 7 days`` (so the lookup is never after the origin)."""
    if horizon_s >= WEEK:
        raise ValueError("seasonal_naive needs a horizon shorter than a week")
    o = np.asarray(origins, dtype=np.float64)
    week_ago = asof(series, o + horizon_s - WEEK, max_age=MAX_AGE)[0]
    return np.where(np.isfinite(week_ago), week_ago, last_value(series, o))


def profile_delta(
    series: Series, profile: Profile, origins: npt.ArrayLike, horizon_s: float
) -> FloatArray:
    """Last value + ``capacity`` x (profile rate at the value's time - rate at the target),
    clamped to ``0..capacity`` (free spaces fall as occupancy rises)."""
    o = np.asarray(origins, dtype=np.float64)
    free, age = asof(series, o)
    if not profile.valid:
        return free
    change = profile.at(o + horizon_s) - profile.at(o - np.nan_to_num(age))
    out = free - series.capacity * change
    return np.where(np.isfinite(free), np.clip(out, 0.0, series.capacity), np.nan)
