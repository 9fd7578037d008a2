"""Short-term forecasts of free spaces per car park or zone: +15, +30 and +60 minutes.

The model (``method == "model"``) is, per horizon, one robust linear model pooled over all lots
with a gradient-boosted correction on top (below), in occupancy-rate space (0..1, so a 50-space
lot and a 1,500-space lot share what they teach). The linear part predicts the change from the
last value to the target time from:

- the weekly profile's change from the time of the last value to the target time, and the last
  value's deviation from the profile (which real car parks see fade over hours);
- the recent changes of the counter (over 15, 30 and 60 minutes) and the deviation's trend
  over the last hour;
- how the day has run so far: the mean deviation from the profile 2, 3, 4 and 6 hours before
  the origin, and the day's level as a ratio to the profile (busy days scale the whole curve),
  each also multiplied with the profile's change;
- last week's and yesterday's deviation from the profile at the target time, and their change
  since the origin;
- the distance to full and to empty (a full lot cannot fill further: the profile's change and
  the deviation count for less there);
- how old the last value is, and how long the counter has shown the same value (a counter
  stuck for hours, or a lot silent at night, says less than a fresh one);
- time of day at the origin and the target (two harmonics), alone and multiplied with the
  profile's change and the deviation (so the model learns how much each counts at night, in
  the rush hours and while a lot is closed).

It is fitted by iteratively reweighted least squares with the Huber loss and a small ridge
penalty. On top of it, per horizon, a gradient-boosted tree ensemble (scikit-learn's
``HistGradientBoostingRegressor``, absolute-error loss) learns what the linear model gets wrong
(its residual) from the same features and the linear prediction: at most :data:`BOOST_ROWS`
rows of the first four fifths of the training period (drawn in proportion to the rows'
weights), stopped early on the last fifth. The
profiles the training rows see are built without the week they come from (so the deviation
from the profile is as noisy in training as it is live). The 80% interval is the 10th..90th
percentile of the model's errors on the last fifth of the training period (the linear model
fitted on the rest, the booster as used), per horizon and 4-hour time-of-day band, scaled per
lot by how its errors compare with the pool's. With too few rows for the booster the model is
the linear one alone.

Where a lot cannot use the model the forecaster falls back, and says so in ``method``:
``"profile_delta"`` (the last value plus the profile's change to the target time) when the lot's
own series has at least :data:`MIN_PROFILE_DAYS` days of data, else ``"last_value"``.
Forecasts use only the points at or before the origin; they are pure functions of
``(fitted forecaster, series, origin)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from arserver.insight.parking import calendar
from arserver.insight.parking.baselines import MAX_AGE, WEEK
from arserver.insight.parking.calendar import SLOT_SECONDS
from arserver.insight.parking.profile import DayMatrix, Profile, profile_of_matrix
from arserver.insight.parking.series import Series, asof_index

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HORIZONS_MIN = (15, 30, 60)
#: Days of data a lot needs for a profile (and so for the model or profile_delta).
MIN_PROFILE_DAYS = 7
#: Training rows per horizon, at most (spread evenly over the lots).
MAX_TRAINING_ROWS = 300_000
#: Share of the training period (its end) held out to measure the interval.
HOLDOUT = 0.2
#: Local-time bands of the interval quantiles, hours.
BAND_HOURS = 4
_LAGS = (900.0, 1800.0, 3600.0)
_METHODS = ("model", "profile_delta", "last_value")
#: Rows per horizon the residual booster learns from, and stops early on, at most (drawn at
#: random with a probability proportional to the row's weight, so spread over lots and time).
BOOST_ROWS = 60_000
BOOST_VALIDATION_ROWS = 30_000
#: Fewer learning or validation rows than these and the model is the linear one alone.
_MIN_BOOST_ROWS = 2_000
_MIN_BOOST_VALIDATION = 500


def _booster() -> HistGradientBoostingRegressor:
    """A fresh residual booster: absolute-error loss (the forecasts are scored by MAE),
    stopped early on the validation rows given to ``fit``."""
    # Imported here: the library is large and only fitting and model forecasts need it.
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="absolute_error",
        learning_rate=0.3,
        max_iter=150,
        max_leaf_nodes=31,
        min_samples_leaf=100,
        l2_regularization=1.0,
        max_bins=63,
        early_stopping=True,
        validation_fraction=None,
        n_iter_no_change=10,
        random_state=0,
    )


def _boost_features(x: FloatArray, linear: FloatArray) -> npt.NDArray[np.float32]:
    """The booster's input: the design matrix without its intercept column, and the linear
    model's prediction, in float32 (half the memory; the booster bins its input anyway)."""
    out = np.empty(x.shape, dtype=np.float32)
    out[:, :-1] = x[:, 1:]
    out[:, -1] = linear
    return out


@dataclass(frozen=True)
class Forecast:
    """One forecast of one lot at one horizon.

    ``free``: expected free spaces (0..capacity); ``occupancy``: expected occupancy rate
    ``1 - free / capacity``; ``low``/``high``: the 10th and 90th percentile of free spaces
    (an 80% interval, 0..capacity); ``method``: ``"model"``, ``"profile_delta"`` or
    ``"last_value"``, whichever produced it."""

    horizon_min: int
    free: float
    occupancy: float
    low: float
    high: float
    method: str


@dataclass(frozen=True, eq=False)
class Prediction:
    """Forecasts of one lot at many origins for one horizon: arrays of free spaces, low and
    high (NaN where the lot had no point at or before the origin) and the method used."""

    free: FloatArray
    low: FloatArray
    high: FloatArray
    method: str


def _profile_rates(stack: FloatArray, index: IntArray, times: FloatArray) -> FloatArray:
    """Profile ``stack[index]`` (shape (L, 8, 96)) at ``times``, linear between slot centres,
    as :meth:`Profile.at` does, for many lots at once."""
    u = (times - SLOT_SECONDS / 2) / SLOT_SECONDS
    k0 = np.floor(u)
    frac = u - k0
    centres = np.stack([k0, k0 + 1]) * SLOT_SECONDS + SLOT_SECONDS / 2
    types, slots = calendar.day_type_and_slot(centres)
    both = stack[index[None, :], types, slots]
    rates: FloatArray = (1.0 - frac) * both[0] + frac * both[1]
    return rates


#: Earlier times (seconds before the origin) whose deviation from the profile tells how the
#: day has run so far.
_PAST = (7200.0, 10800.0, 14400.0, 21600.0)
#: The oldest value that still counts as the value at one of the :data:`_PAST` times.
_PAST_AGE = 1800.0
_DAY = 86400.0
#: Rows per block when the normal equations are summed up.
_CHUNK = 65536
_N_FEATURES = 38


@dataclass
class _Panel:
    """Observations of many (lot, origin) rows, flat; occupancy rates, seconds."""

    lot: list[IntArray] = field(default_factory=list)
    origin: list[FloatArray] = field(default_factory=list)
    capacity: list[FloatArray] = field(default_factory=list)
    last: list[FloatArray] = field(default_factory=list)
    age: list[FloatArray] = field(default_factory=list)
    unchanged: list[FloatArray] = field(default_factory=list)
    lags: list[FloatArray] = field(default_factory=list)  # (3, n)
    week_origin: list[FloatArray] = field(default_factory=list)
    week_target: list[FloatArray] = field(default_factory=list)  # (H, n)
    day_origin: list[FloatArray] = field(default_factory=list)
    day_target: list[FloatArray] = field(default_factory=list)  # (H, n)
    past: list[FloatArray] = field(default_factory=list)  # (len(_PAST), n)

    def add(
        self, lot: int, series: Series, origins: FloatArray, horizons_s: tuple[float, ...]
    ) -> None:
        n = origins.size
        n_h = len(horizons_s)
        queries = np.concatenate(
            [origins]
            + [origins - lag for lag in _LAGS]
            + [origins - WEEK]
            + [origins + h - WEEK for h in horizons_s]
            + [origins - _DAY]
            + [origins + h - _DAY for h in horizons_s]
            + [origins - back for back in _PAST]
        )
        idx = asof_index(series.times, queries)
        found = idx >= 0
        safe = np.where(found, idx, 0)
        if series.times.size:
            occ = np.where(found, series.occupancy[safe], np.nan)
            age = np.where(found, queries - series.times[safe], np.nan)
        else:
            occ = np.full(queries.shape, np.nan)
            age = occ.copy()
        last = occ[:n]
        last_age = age[:n]
        run = series.run_start[safe[:n]] if series.times.size else np.full(n, np.nan)
        lag_occ = occ[n : 4 * n].reshape(3, n)
        lag_age = age[n : 4 * n].reshape(3, n)
        lag_ok = lag_age <= np.asarray(_LAGS)[:, None] + MAX_AGE
        a, b = 4 * n, (5 + n_h) * n
        week = occ[a:b].reshape(1 + n_h, n)
        week = np.where(age[a:b].reshape(1 + n_h, n) <= MAX_AGE, week, np.nan)
        a, b = b, b + (1 + n_h) * n
        day = occ[a:b].reshape(1 + n_h, n)
        day = np.where(age[a:b].reshape(1 + n_h, n) <= MAX_AGE, day, np.nan)
        past = occ[b:].reshape(len(_PAST), n)
        past = np.where(age[b:].reshape(len(_PAST), n) <= _PAST_AGE, past, np.nan)
        self.lot.append(np.full(n, lot, dtype=np.int64))
        self.origin.append(origins)
        self.capacity.append(np.full(n, series.capacity))
        self.last.append(last)
        self.age.append(last_age)
        self.unchanged.append(origins - run)
        self.lags.append(np.where(lag_ok, last[None, :] - lag_occ, np.nan))
        self.week_origin.append(week[0])
        self.week_target.append(week[1:])
        self.day_origin.append(day[0])
        self.day_target.append(day[1:])
        self.past.append(past)

    def arrays(self) -> dict[str, npt.NDArray[np.float64] | IntArray]:
        if not self.lot:
            e = np.empty(0)
            n_h = len(HORIZONS_MIN)
            return {
                "lot": np.empty(0, dtype=np.int64), "origin": e, "capacity": e, "last": e,
                "age": e, "unchanged": e, "lags": np.empty((3, 0)), "week_origin": e,
                "week_target": np.empty((n_h, 0)), "day_origin": e,
                "day_target": np.empty((n_h, 0)), "past": np.empty((len(_PAST), 0)),
            }  # fmt: skip
        return {
            "lot": np.concatenate(self.lot),
            "origin": np.concatenate(self.origin),
            "capacity": np.concatenate(self.capacity),
            "last": np.concatenate(self.last),
            "age": np.concatenate(self.age),
            "unchanged": np.concatenate(self.unchanged),
            "lags": np.concatenate(self.lags, axis=1),
            "week_origin": np.concatenate(self.week_origin),
            "week_target": np.concatenate(self.week_target, axis=1),
            "day_origin": np.concatenate(self.day_origin),
            "day_target": np.concatenate(self.day_target, axis=1),
            "past": np.concatenate(self.past, axis=1),
        }


def _design(
    obs: Mapping[str, npt.NDArray[np.float64] | IntArray],
    stack: FloatArray,
    profile_index: IntArray,
    h_index: int,
    horizon_s: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Design matrix (n, _N_FEATURES), the profile's change and the last value's deviation
    from the profile, for horizon ``h_index``. Every entry is finite."""
    origin = np.asarray(obs["origin"], dtype=np.float64)
    last = np.asarray(obs["last"], dtype=np.float64)
    age = np.nan_to_num(np.asarray(obs["age"], dtype=np.float64))
    t_last = origin - age
    target = origin + horizon_s
    times = [
        t_last, target, target - WEEK, origin - WEEK, origin - _DAY, target - _DAY,
        t_last - 3600.0, *(origin - back for back in _PAST),
    ]  # fmt: skip
    # One group of times at a time: the calendar lookups of all of them at once would hold
    # several times the design matrix in temporaries.
    rates = np.empty((len(times), origin.size))
    for k, t in enumerate(times):
        rates[k] = _profile_rates(stack, profile_index, t)
    p_last, p_target, p_week_target, p_week_origin, p_day_origin, p_day_target, p_hour = rates[:7]
    dp = p_target - p_last
    dev = last - p_last
    lags = np.nan_to_num(np.asarray(obs["lags"], dtype=np.float64))
    week_t = np.asarray(obs["week_target"], dtype=np.float64)[h_index] - p_week_target
    week_o = np.asarray(obs["week_origin"], dtype=np.float64) - p_week_origin
    week_change = np.nan_to_num(week_t - week_o)
    week_t = np.nan_to_num(week_t)
    day_t = np.asarray(obs["day_target"], dtype=np.float64)[h_index] - p_day_target
    day_o = np.asarray(obs["day_origin"], dtype=np.float64) - p_day_origin
    day_change = np.nan_to_num(day_t - day_o)
    day_t = np.nan_to_num(day_t)
    # How the day has run so far: the mean deviation from the profile over the last hours,
    # and the deviation's trend over the last hour.
    past_dev = np.asarray(obs["past"], dtype=np.float64) - rates[7:]
    seen = np.isfinite(past_dev)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev_mean = np.where(
            seen.any(axis=0), np.nansum(past_dev, axis=0) / np.maximum(seen.sum(axis=0), 1), 0.0
        )
    # The day's level as a ratio to the profile (demand scales the whole day's curve): from
    # the last value and the past hours, above a floor so a closed lot says nothing.
    past_occ = np.asarray(obs["past"], dtype=np.float64)
    occ_sum = np.nansum(np.where(seen, past_occ, 0.0), axis=0) + np.nan_to_num(last)
    prof_sum = np.nansum(np.where(seen, rates[7:], 0.0), axis=0) + np.nan_to_num(p_last)
    level = np.clip(occ_sum / np.maximum(prof_sum, 0.1 * (1 + seen.sum(axis=0))) - 1.0, -1, 1)
    ratio = np.clip(dp / np.maximum(p_last, 0.05), -3.0, 3.0)
    hour_lag = np.asarray(obs["lags"], dtype=np.float64)[2]
    dev_trend = np.nan_to_num(hour_lag - (p_last - p_hour))
    stale = np.clip(age / 10800.0, 0.0, 1.0)
    unchanged = np.nan_to_num(np.asarray(obs["unchanged"], dtype=np.float64))
    stuck = np.clip((unchanged - 3600.0) / 10800.0, 0.0, 1.0)
    # Distance to full and to empty: a full lot cannot fill further, an empty one cannot empty.
    near_full = np.clip((last - 0.9) / 0.1, 0.0, 1.0)
    near_empty = np.clip((0.1 - last) / 0.1, 0.0, 1.0)
    rising = np.maximum(dp + dev, 0.0)
    hour = np.mod(target + calendar.utc_offset(target), 86400.0) / 86400.0 * 2 * math.pi
    hour_o = np.mod(origin + calendar.utc_offset(origin), 86400.0) / 86400.0 * 2 * math.pi
    x = np.empty((origin.size, _N_FEATURES))
    x[:, 0] = 1.0
    x[:, 1] = dp
    x[:, 2] = dev
    x[:, 3:6] = lags.T
    x[:, 6] = week_change
    x[:, 7] = week_t
    x[:, 8] = dev * stale
    x[:, 9] = dev * stuck
    x[:, 10] = dp * stuck
    x[:, 11] = dev * p_last
    x[:, 12] = dev * np.sin(hour_o)
    x[:, 13] = dev * np.cos(hour_o)
    x[:, 14] = np.sin(hour)
    x[:, 15] = np.cos(hour)
    x[:, 16] = np.sin(2 * hour)
    x[:, 17] = np.cos(2 * hour)
    x[:, 18] = dp * dev
    x[:, 19] = day_t
    x[:, 20] = day_change
    x[:, 21] = dev_mean
    x[:, 22] = dev_trend
    x[:, 23] = dp * dev_mean
    x[:, 24] = dp * near_full
    x[:, 25] = dp * near_empty
    x[:, 26] = near_full * rising
    x[:, 27] = dev * near_full
    x[:, 28] = dev_mean * stale
    x[:, 29] = dp * level
    x[:, 30] = dev * ratio
    x[:, 31] = level
    # The profile's change and the deviation count for more or less by time of day (a lot
    # closed or asleep at night, a rush hour that runs early or late).
    x[:, 32] = dp * np.sin(hour_o)
    x[:, 33] = dp * np.cos(hour_o)
    x[:, 34] = dp * np.sin(2 * hour_o)
    x[:, 35] = dp * np.cos(2 * hour_o)
    x[:, 36] = dev * np.sin(2 * hour_o)
    x[:, 37] = dev * np.cos(2 * hour_o)
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return x, np.nan_to_num(dp), np.nan_to_num(dev)


def huber_ridge(
    x: FloatArray,
    y: FloatArray,
    weights: FloatArray | None = None,
    *,
    ridge: float = 1e-3,
    iterations: int = 6,
    overwrite: bool = False,
) -> FloatArray:
    """Coefficients of a linear model (column 0 of ``x`` is the intercept, not penalised)
    fitted with the Huber loss (tuning 1.345 x a robust residual scale) and a ridge penalty
    ``ridge`` x total weight on the standardised other columns. Rows with a non-finite target
    or weight are ignored; returns zeros when no row is left. With ``overwrite`` the caller
    gives up ``x``: when every row is usable it is standardised in place (no copy)."""
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    w0 = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64)
    ok &= np.isfinite(w0) & (w0 > 0)
    if ok.sum() < x.shape[1] + 1:
        return np.zeros(x.shape[1])
    # One standardised copy of the rows (or ``x`` itself), worked on in place; the weighted
    # moments are reductions, no temporaries of the size of ``x``.
    every = bool(ok.all())
    z = x if overwrite and every else x[ok]
    if not every:
        y, w0 = y[ok], w0[ok]
    total = float(w0.sum())
    mean = (w0 @ z) / total
    mean[0] = 0.0
    z -= mean
    scale = np.sqrt(np.einsum("i,ij,ij->j", w0, z, z) / total)
    scale[0] = 1.0
    scale = np.where(scale > 1e-12, scale, 1.0)
    z /= scale
    penalty = np.full(z.shape[1], ridge * float(w0.sum()))
    penalty[0] = 0.0
    w = w0.copy()
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        gram = np.diag(penalty)
        rhs = np.zeros(z.shape[1])
        for a in range(0, y.size, _CHUNK):
            zc, wc = z[a : a + _CHUNK], w[a : a + _CHUNK]
            zw = zc * wc[:, None]
            gram += zw.T @ zc
            rhs += zw.T @ y[a : a + _CHUNK]
        try:
            beta = np.linalg.solve(gram, rhs)
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        r = y - z @ beta
        s = 1.4826 * float(np.median(np.abs(r)))
        if not s > 1e-9:
            break
        c = 1.345 * s
        w = w0 * np.minimum(1.0, c / np.maximum(np.abs(r), 1e-12))
    # Back to the raw columns.
    raw: FloatArray = beta / scale
    raw[0] = beta[0] - float((beta[1:] * mean[1:] / scale[1:]).sum())
    return raw


def _lot_weights(
    lot: IntArray,
    value: FloatArray,
    usable: npt.NDArray[np.bool_],
    n_lots: int,
    *,
    margin: float,
) -> FloatArray:
    """Per row, ``min(1, margin * typical / own) ** 2`` where ``own`` is the mean of
    ``value`` (a non-negative size: an absolute residual, an absolute change) over the rows of
    the row's lot and ``typical`` the median of those over the lots. A lot far out of line
    with the others (a flapping or broken counter) so weighs little in the pooled fit."""
    ok = usable & np.isfinite(value)
    sums = np.bincount(lot[ok], weights=value[ok], minlength=n_lots)
    counts = np.bincount(lot[ok], minlength=n_lots)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = sums / counts
    known = np.isfinite(own) & (own > 0)
    if not known.any():
        return np.ones(lot.size)
    typical = float(np.median(own[known]))
    ratio = margin * typical / np.where(known, own, 1.0)
    factor = np.where(known, np.minimum(1.0, ratio) ** 2, 1.0)
    return factor[lot]


def _band(times: FloatArray) -> IntArray:
    local = np.mod(times + calendar.utc_offset(times), 86400.0)
    return np.clip((local // (BAND_HOURS * 3600)).astype(np.int64), 0, 24 // BAND_HOURS - 1)


_N_BANDS = 24 // BAND_HOURS
#: Interval quantiles of the occupancy error used before any were measured (a fitted
#: forecaster replaces them): per horizon, (q10, q90).
_DEFAULT_Q = {15: (-0.03, 0.03), 30: (-0.05, 0.05), 60: (-0.08, 0.08)}


def _quantiles(residual: FloatArray, band: IntArray, fallback: tuple[float, float]) -> FloatArray:
    """(bands, 2) table of the 10th and 90th percentile of ``residual`` per band (the pooled
    figure for bands with fewer than 50 residuals, ``fallback`` with none at all)."""
    out = np.empty((_N_BANDS, 2))
    ok = np.isfinite(residual)
    pooled = np.quantile(residual[ok], [0.1, 0.9]) if ok.sum() >= 20 else np.asarray(fallback)
    for b in range(_N_BANDS):
        sel = ok & (band == b)
        out[b] = np.quantile(residual[sel], [0.1, 0.9]) if sel.sum() >= 50 else pooled
    return out


@dataclass(frozen=True, eq=False)
class Forecaster:
    """A fitted forecaster: per lot its profile, per horizon the pooled coefficients, the
    residual booster and the interval quantiles. Immutable once fitted; safe to share between
    threads.

    ``lots`` maps a lot id to its row in ``profiles`` (shape (L, 8, 96)) for the lots that
    can use the model; ``scale`` holds each such lot's interval scale; ``boosters`` the
    residual booster per horizon (absent where there were too few rows for one)."""

    lots: dict[str, int]
    profiles: FloatArray
    scale: FloatArray
    coefficients: dict[int, FloatArray]
    quantiles: dict[tuple[str, int], FloatArray]
    trained_rows: int = 0
    boosters: dict[int, HistGradientBoostingRegressor] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        series: Mapping[str, Series],
        *,
        until: float | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> Forecaster:
        """Fit on the points with ``time < until`` (all when None). Lots with fewer than
        :data:`MIN_PROFILE_DAYS` days of data there are left out of the model and served by
        the fallback. ``progress`` is called with the fraction done (0..1). Never raises on
        empty, constant, NaN-free-but-odd or tiny series; with no usable lot at all the
        result serves every lot by the fallback."""
        horizons_s = tuple(60.0 * h for h in HORIZONS_MIN)
        report = progress or (lambda _fraction: None)
        rng = np.random.default_rng(12345)
        names = sorted(series)
        lots: dict[str, int] = {}
        full: list[FloatArray] = []
        fold_stack: list[FloatArray] = []
        panel = _Panel()
        fold_index: list[IntArray] = []
        informative: list[bool] = []
        per_lot = max(300, MAX_TRAINING_ROWS // max(1, len(names)))
        for i, name in enumerate(names):
            report(0.6 * i / max(1, len(names)))
            s = series[name] if until is None else series[name].until(until, inclusive=False)
            if len(s) < 2:
                continue
            matrix = DayMatrix.of(s)
            profile = profile_of_matrix(matrix)
            if not profile.valid or profile.total_days < MIN_PROFILE_DAYS:
                continue
            lot_row = len(full)
            lots[name] = lot_row
            occ = s.occupancy
            moves = float(np.mean(np.diff(occ) != 0.0)) if occ.size > 1 else 0.0
            informative.append(float(np.std(occ)) > 0.01 and moves > 0.02)
            full.append(profile.values)
            # Out-of-week profiles for the training rows.
            weeks = (matrix.days - matrix.days.min()) // 7
            k = int(min(3, weeks.max() + 1))
            origins = np.arange(
                math.ceil(s.times[0] / SLOT_SECONDS) * SLOT_SECONDS, s.times[-1], SLOT_SECONDS
            )
            if origins.size > per_lot:
                origins = np.sort(rng.choice(origins, per_lot, replace=False))
            local_day = calendar.local_day(origins)
            origin_fold = np.searchsorted(matrix.days, local_day).clip(0, matrix.days.size - 1)
            origin_week = weeks[origin_fold] % k if k >= 2 else np.zeros(origins.size, np.int64)
            base = len(fold_stack)
            for f in range(max(k, 1)):
                fp = profile_of_matrix(matrix, rows=(weeks % k) != f) if k >= 2 else profile
                fold_stack.append(fp.values if fp.valid else profile.values)
            panel.add(lot_row, s, origins, horizons_s)
            fold_index.append(base + origin_week.astype(np.int64))
            # Targets are read from the same training series below.
        if not lots:
            report(1.0)
            return cls({}, np.empty((0, 8, 96)), np.empty(0), {}, {})
        profiles = np.stack(full)
        folds = np.stack(fold_stack)
        obs = panel.arrays()
        pidx = np.concatenate(fold_index)
        lot_of_row = np.asarray(obs["lot"], dtype=np.int64)
        origin = np.asarray(obs["origin"], dtype=np.float64)
        last = np.asarray(obs["last"], dtype=np.float64)
        cap = np.asarray(obs["capacity"], dtype=np.float64)
        by_row = {row: name for name, row in lots.items()}
        t_lo, t_hi = float(origin.min()), float(origin.max())
        holdout = origin >= t_lo + (1.0 - HOLDOUT) * (t_hi - t_lo)
        coefficients: dict[int, FloatArray] = {}
        boosters: dict[int, HistGradientBoostingRegressor] = {}
        quantiles: dict[tuple[str, int], FloatArray] = {}
        abs_err = np.zeros(len(lots))
        abs_ref = np.zeros(len(lots))
        n_ref = np.zeros(len(lots))
        # Rows weigh with the square root of capacity (between "every lot alike" and "every
        # space alike"); lots whose counter never moves teach nothing and weigh nothing.
        weight = np.sqrt(cap) * np.asarray(informative, dtype=np.float64)[lot_of_row]
        # A counter far rougher than the others (quarter-hour changes) would lever the pool.
        rough = np.abs(np.asarray(obs["lags"], dtype=np.float64)[0])
        weight *= _lot_weights(lot_of_row, rough, weight > 0, len(lots), margin=3.0)
        for hi, h in enumerate(HORIZONS_MIN):
            report(0.6 + 0.4 * hi / len(HORIZONS_MIN))
            hs = horizons_s[hi]
            actual = np.full(origin.size, np.nan)
            start = 0
            for row, size in zip(*np.unique(lot_of_row, return_counts=True), strict=True):
                s = series[by_row[int(row)]]
                if until is not None:
                    s = s.until(until, inclusive=False)
                t = origin[start : start + size] + hs
                j = asof_index(s.times, t)
                fine = (j >= 0) & (t - s.times[np.maximum(j, 0)] <= MAX_AGE)
                vals = np.where(fine, s.occupancy[np.maximum(j, 0)], np.nan)
                if until is not None:
                    vals = np.where(t < until, vals, np.nan)
                actual[start : start + size] = vals
                start += size
            x, dp, _dev = _design(obs, folds, pidx, hi, hs)
            y = actual - last
            usable = np.isfinite(y)
            # A lot far noisier than the others (a flapping or broken counter) is down-weighted
            # by how much larger its errors are under a first pooled fit.
            thin = usable & (np.arange(y.size) % 3 == 0)
            first = huber_ridge(x[thin], y[thin], weight[thin], overwrite=True)
            w = weight * _lot_weights(
                lot_of_row, np.abs(y - x @ first), usable & (weight > 0), len(lots), margin=2.0
            )
            train = usable & ~holdout
            test = usable & holdout
            if train.sum() > 10 * _N_FEATURES and test.sum() > 50:
                beta_hold = huber_ridge(x[train], y[train], w[train], overwrite=True)
                pred = last + x @ beta_hold
                booster = _fit_booster(x, y, w, train, test, beta_hold, rng)
                if booster is not None:
                    boosters[h] = booster
                    rows = np.flatnonzero(test)
                    pred[rows] += booster.predict(_boost_features(x[rows], pred[rows] - last[rows]))
                pred = np.clip(pred, 0.0, 1.0)
            else:
                pred = np.clip(last, 0.0, 1.0)
            beta = huber_ridge(x[usable], y[usable], w[usable], overwrite=True)
            coefficients[h] = beta
            band = _band(origin + hs)
            residual = np.where(test, actual - pred, np.nan)
            quantiles[("model", h)] = _quantiles(residual, band, _DEFAULT_Q[h])
            pd_pred = np.clip(last + dp, 0.0, 1.0)
            quantiles[("profile_delta", h)] = _quantiles(
                np.where(test, actual - pd_pred, np.nan), band, _DEFAULT_Q[h]
            )
            quantiles[("last_value", h)] = _quantiles(
                np.where(test, actual - last, np.nan), band, _DEFAULT_Q[h]
            )
            # Per-lot interval scale: the lot's mean absolute error against the pool's, by band.
            pool_mad = np.zeros(_N_BANDS)
            for b in range(_N_BANDS):
                sel = np.isfinite(residual) & (band == b)
                pool_mad[b] = float(np.mean(np.abs(residual[sel]))) if sel.any() else np.nan
            ref = pool_mad[band]
            good = np.isfinite(residual) & np.isfinite(ref)
            abs_err += np.bincount(
                lot_of_row[good], weights=np.abs(residual[good]), minlength=len(lots)
            )
            abs_ref += np.bincount(lot_of_row[good], weights=ref[good], minlength=len(lots))
            n_ref += np.bincount(lot_of_row[good], minlength=len(lots))
            # The next horizon builds its own design matrix: this one goes first.
            del x, dp, _dev
        # Shrunk towards 1 by 30 pseudo-errors at the lot's own reference level.
        prior = 30.0 * np.where(n_ref > 0, abs_ref / np.maximum(n_ref, 1), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = (abs_err + prior) / (abs_ref + prior)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        report(1.0)
        return cls(lots, profiles, scale, coefficients, quantiles, int(origin.size), boosters)

    # -- forecasting -----------------------------------------------------------------------

    def predict(self, lot: str, series: Series, origins: npt.ArrayLike) -> dict[int, Prediction]:
        """Forecasts of ``lot`` at every origin in ``origins`` (epoch seconds), per horizon in
        minutes, from the points of ``series`` at or before each origin."""
        o = np.atleast_1d(np.asarray(origins, dtype=np.float64))
        return self._predict_many([(lot, series, o)])[0]

    def forecast(self, lot: str, series: Series, origin: float) -> list[Forecast]:
        """Forecasts of ``lot`` at ``origin`` for :data:`HORIZONS_MIN`, from the points of
        ``series`` at or before ``origin``; an empty list when there is none."""
        return self.forecast_many({lot: series}, origin)[lot]

    def forecast_many(
        self, items: Mapping[str, Series], origin: float
    ) -> dict[str, list[Forecast]]:
        """:meth:`forecast` for many lots at one origin, vectorised over the lots."""
        o = np.asarray([float(origin)])
        names = list(items)
        done = self._predict_many([(name, items[name], o) for name in names])
        out: dict[str, list[Forecast]] = {}
        for name, preds in zip(names, done, strict=True):
            cap = items[name].capacity
            found: list[Forecast] = []
            for h in HORIZONS_MIN:
                p = preds[h]
                free = float(p.free[0])
                if not math.isfinite(free):
                    continue
                found.append(
                    Forecast(h, free, 1.0 - free / cap, float(p.low[0]), float(p.high[0]), p.method)
                )
            out[name] = found
        return out

    def _predict_many(
        self, items: list[tuple[str, Series, FloatArray]]
    ) -> list[dict[int, Prediction]]:
        horizons_s = tuple(60.0 * h for h in HORIZONS_MIN)
        panel = _Panel()
        methods: list[str] = []
        extra: list[FloatArray] = []  # profiles of lots served by profile_delta
        sizes: list[int] = []
        for name, series, origins in items:
            row = self.lots.get(name)
            if row is not None and self.coefficients:
                method, index = "model", row
            else:
                # Built from the points before the earliest origin: nothing later may leak.
                own = _own_profile(series, float(origins.min()) if origins.size else -math.inf)
                if own is not None:
                    method, index = "profile_delta", len(self.profiles) + len(extra)
                    extra.append(own.values)
                else:
                    method, index = "last_value", -1
            methods.append(method)
            sizes.append(origins.size)
            panel.add(max(index, 0), series, origins, horizons_s)
        obs = panel.arrays()
        stack = np.concatenate([self.profiles, np.stack(extra)]) if extra else self.profiles
        if stack.shape[0] == 0:
            stack = np.zeros((1, 8, 96))
        pidx = np.asarray(obs["lot"], dtype=np.int64)
        last = np.asarray(obs["last"], dtype=np.float64)
        cap = np.asarray(obs["capacity"], dtype=np.float64)
        origin = np.asarray(obs["origin"], dtype=np.float64)
        method_of_row = np.repeat(np.asarray([_METHODS.index(m) for m in methods]), sizes)
        scale_of_row = np.ones(last.size)
        is_model = method_of_row == 0
        if is_model.any() and self.scale.size:
            scale_of_row[is_model] = self.scale[np.clip(pidx[is_model], 0, self.scale.size - 1)]
        per_h: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}
        for hi, h in enumerate(HORIZONS_MIN):
            hs = horizons_s[hi]
            x, dp, _dev = _design(obs, stack, pidx, hi, hs)
            beta = self.coefficients.get(h, np.zeros(_N_FEATURES))
            linear = x @ beta
            occ = np.where(
                method_of_row == 0,
                last + linear,
                np.where(method_of_row == 1, last + dp, last),
            )
            booster = self.boosters.get(h)
            if booster is not None and is_model.any():
                occ[is_model] += booster.predict(_boost_features(x[is_model], linear[is_model]))
            occ = np.clip(occ, 0.0, 1.0)
            band = _band(origin + hs)
            q = np.empty((last.size, 2))
            for m, method in enumerate(_METHODS):
                sel = method_of_row == m
                if sel.any():
                    table = self.quantiles.get((method, h))
                    if table is None:
                        table = np.tile(np.asarray(_DEFAULT_Q[h]), (_N_BANDS, 1))
                    q[sel] = table[band[sel]]
            q *= scale_of_row[:, None]
            occ_low = np.clip(occ + q[:, 0], 0.0, 1.0)
            occ_high = np.clip(occ + q[:, 1], 0.0, 1.0)
            free = cap * (1.0 - occ)
            high = np.maximum(cap * (1.0 - occ_low), free)
            low = np.minimum(cap * (1.0 - occ_high), free)
            per_h[h] = (free, low, high)
        out: list[dict[int, Prediction]] = []
        start = 0
        for method, size in zip(methods, sizes, strict=True):
            sl = slice(start, start + size)
            out.append(
                {
                    h: Prediction(per_h[h][0][sl], per_h[h][1][sl], per_h[h][2][sl], method)
                    for h in HORIZONS_MIN
                }
            )
            start += size
        return out


def _fit_booster(
    x: FloatArray,
    y: FloatArray,
    weight: FloatArray,
    train: npt.NDArray[np.bool_],
    test: npt.NDArray[np.bool_],
    beta: FloatArray,
    rng: np.random.Generator,
) -> HistGradientBoostingRegressor | None:
    """The residual booster on top of the linear model ``beta``: learns ``y - x @ beta`` from
    at most :data:`BOOST_ROWS` of the ``train`` rows and stops early on at most
    :data:`BOOST_VALIDATION_ROWS` of the ``test`` rows, both drawn at random (with
    replacement) with a probability proportional to the row's weight, so the booster itself
    needs no weights (weighted binning would cost more than the boosting). None when there
    are too few rows of positive weight in either."""
    learn = _draw(train & (weight > 0), weight, BOOST_ROWS, rng)
    check = _draw(test & (weight > 0), weight, BOOST_VALIDATION_ROWS, rng)
    if learn.size < _MIN_BOOST_ROWS or check.size < _MIN_BOOST_VALIDATION:
        return None
    lin_learn = x[learn] @ beta
    lin_check = x[check] @ beta
    booster = _booster()
    booster.fit(
        _boost_features(x[learn], lin_learn),
        y[learn] - lin_learn,
        X_val=_boost_features(x[check], lin_check),
        y_val=y[check] - lin_check,
    )
    return booster


def _draw(
    rows: npt.NDArray[np.bool_], weight: FloatArray, most: int, rng: np.random.Generator
) -> IntArray:
    """Sorted indices of ``min(most, rows.sum())`` draws, with replacement, among the
    ``rows``, each with a probability proportional to its ``weight``."""
    index = np.flatnonzero(rows)
    if index.size == 0:
        return index
    p = weight[index] / float(weight[index].sum())
    drawn: IntArray = np.sort(rng.choice(index, min(most, index.size), replace=True, p=p))
    return drawn


def _own_profile(series: Series, origin: float) -> Profile | None:
    """The profile of ``series`` up to ``origin`` if it has enough days, else None."""
    s = series.until(origin)
    if s.span_days() < MIN_PROFILE_DAYS - 1:
        return None
    profile = profile_of_matrix(DayMatrix.of(s))
    if not profile.valid or profile.total_days < MIN_PROFILE_DAYS:
        return None
    return profile
