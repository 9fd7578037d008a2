"""Synthetic car-park counters with the flaws of real feeds, for tests, benchmarks and demos.

Each lot has a capacity (50..1500 spaces, log-uniform) and a type with its own weekly pattern in
Europe/Amsterdam local time:

- ``shopping``: open 08:00-18:00 (21:00 on Thursday and Friday, 12:00-18:00 on Sunday), busiest
  on Saturday afternoon, nearly empty when closed;
- ``commuter`` (P+R): fills 06:30-09:00 on workdays and empties 16:00-19:00, quiet at weekends
  and on holidays;
- ``residential``: full at night, emptier on workdays' daytime;
- ``event``: quiet, with evening events on some (mostly Friday and Saturday) nights.

Public holidays (the Dutch list) follow a Sunday-like pattern. Two variants (``variant``):

- ``regular``: the pattern times a day level that holds for the whole day (independent from day
  to day), an AR(1) deviation with a decay time of about two hours, and counting noise;
- ``realistic`` (the default): what makes real counters differ from a clean weekly pattern.
  Demand above a floor is scaled per lot (0.85..1.3), so some lots sit full for hours and free
  clamps at 0; the day level is a product of town-wide spells shared by all lots (weather,
  school holidays: 2..9 consecutive days), the lot's own spells, a day-to-day AR(1) and a slow
  trend over the weeks; every day's rhythm runs early or late (a per-day time shift of about
  25 minutes); three lots in ten change pattern mid-period (shifted by 0.5..1.5 hours, another
  level, sometimes another type); a slow AR(1) deviation (decay 8 hours) adds to the quick one
  (decay 2 hours, as a rate shrinking with the square root of capacity, since arrivals are
  many independent decisions); lots that are not event venues see an occasional event; and a
  third of the counters report only on change (half of them with an hourly heartbeat). It is
  calibrated so that ``profile_delta`` beats persistence by about 20% at +60 minutes, as
  measured on real counters.

The reports are messy on purpose: irregular intervals (1-10 minutes), outages of hours and of
days, counters stuck for hours, counters that drift beyond capacity or below zero, lots that stop
reporting (or report a constant) while closed at night, duplicate rows, rows out of order, and
timestamps with a local offset or ``Z``. Everything follows from ``seed``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import numpy.typing as npt

from arserver.insight.parking import calendar
from arserver.insight.parking.series import Series

FloatArray = npt.NDArray[np.float64]

LOT_TYPES = ("shopping", "commuter", "residential", "event")
_TYPE_WEIGHTS = (0.35, 0.25, 0.25, 0.15)
#: Monday 2 March 2026, 00:00 local time: six weeks from here cross the change to summer time
#: (29 March), Good Friday, Easter and Easter Monday; eight weeks reach King's Day (27 April).
DEFAULT_START = dt.datetime(2026, 3, 2, tzinfo=calendar.ZONE).timestamp()
#: The generator's variants: ``regular`` (a clean weekly pattern with day-level noise) and
#: ``realistic`` (the irregularities of real counters, see the module docstring).
VARIANTS = ("regular", "realistic")
DEFAULT_VARIANT = "realistic"
HEADER = ("timestamp", "lot_id", "capacity", "free", "lat", "lon")
_STEP = 300.0  # the simulation's resolution, seconds


@dataclass(frozen=True)
class Lot:
    """One simulated lot: id, type, capacity (spaces) and WGS84 position (None if unknown)."""

    lot_id: str
    kind: str
    capacity: int
    lat: float | None
    lon: float | None


Row = tuple[str, str, int, int, float | None, float | None]


def _ramp(h: FloatArray, centre: float | FloatArray, width: float) -> FloatArray:
    """0 -> 1 logistic step at local hour ``centre``."""
    return 1.0 / (1.0 + np.exp(-(h - centre) / width))


def _bump(
    h: FloatArray, start: float | FloatArray, end: float | FloatArray, width: float = 0.5
) -> FloatArray:
    return _ramp(h, start, width) * (1.0 - _ramp(h, end, width))


def _pattern(
    kind: str, hour: FloatArray, wd: npt.NDArray[np.int64], holiday: npt.NDArray[np.bool_],
    events: npt.NDArray[np.bool_],
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:  # fmt: skip
    """Base occupancy rate and "open" flag at local ``hour`` (0..24) and weekday ``wd``."""
    sunday_like = (wd == 6) | holiday
    saturday = (wd == 5) & ~holiday
    workday = (wd <= 4) & ~holiday
    if kind == "shopping":
        close = np.where((wd == 3) | (wd == 4), 21.0, 18.0)
        open_h = np.where(sunday_like, 12.0, 8.0)
        close = np.where(sunday_like, 18.0, close)
        level = np.where(saturday, 0.92, np.where(sunday_like, 0.6, 0.55))
        shape = 0.35 + 0.65 * np.exp(-(((hour - 14.5) / 3.0) ** 2))
        evening = np.where((wd == 3) & ~holiday, 0.25 * _bump(hour, 18.5, 21.0), 0.0)
        is_open = (hour >= open_h) & (hour < close)
        opening: FloatArray = _bump(hour, open_h + 0.3, close - 0.4, 0.35)
        occ = level * shape * opening + evening
        return 0.02 + occ, is_open
    if kind == "commuter":
        day = 0.88 * _ramp(hour, 7.6, 0.45) * (1.0 - _ramp(hour, 17.3, 0.6))
        day = np.where(wd == 4, 0.75 * day, day)
        quiet = 0.12 * _bump(hour, 10.0, 18.0, 1.0)
        occ = np.where(workday, 0.04 + day, 0.04 + quiet)
        return occ, np.ones(hour.shape, dtype=bool)
    if kind == "residential":
        dip = np.where(workday, 0.42, 0.2) * _bump(hour, 8.3, 17.5, 0.7)
        evening_dip = 0.08 * _bump(hour, 18.5, 21.0, 0.5)
        return 0.9 - dip - evening_dip, np.ones(hour.shape, dtype=bool)
    # event venue
    base = 0.08 + 0.12 * _bump(hour, 9.0, 18.0, 1.0)
    event = np.where(events, 0.85 * _bump(hour, 18.6, 23.2, 0.35), 0.0)
    return base + event, np.ones(hour.shape, dtype=bool)


def make_lots(n_lots: int, seed: int, kinds: Sequence[str] | None = None) -> list[Lot]:
    """``n_lots`` lots with ids ``P0001``..., types, capacities and positions around Amsterdam
    (a tenth without a position). ``kinds`` restricts the types (in their usual proportions);
    all of :data:`LOT_TYPES` when None."""
    weights = np.asarray(_TYPE_WEIGHTS)
    if kinds is not None:
        unknown = sorted(set(kinds) - set(LOT_TYPES))
        if unknown or not kinds:
            raise ValueError(f"lot types must be among {', '.join(LOT_TYPES)}, not {unknown}")
        weights = np.where([k in kinds for k in LOT_TYPES], weights, 0.0)
    weights = weights / weights.sum()
    rng = np.random.default_rng([seed, 1])
    lots = []
    for i in range(n_lots):
        kind = str(rng.choice(LOT_TYPES, p=weights))
        capacity = round(math.exp(rng.uniform(math.log(50), math.log(1500))))
        has_pos = rng.random() > 0.1
        lat = round(float(rng.uniform(52.30, 52.42)), 6) if has_pos else None
        lon = round(float(rng.uniform(4.78, 5.02)), 6) if has_pos else None
        lots.append(Lot(f"P{i + 1:04d}", kind, capacity, lat, lon))
    return lots


def _ar1(rng: np.random.Generator, n: int, decay_s: float, std: float) -> FloatArray:
    """A stationary AR(1) path on the simulation grid (by convolution with phi^k)."""
    phi = math.exp(-_STEP / decay_s)
    k = np.arange(int(12 * decay_s / _STEP) + 1)
    kernel = phi**k
    eps = rng.normal(0.0, std * math.sqrt(1 - phi * phi), n + k.size)
    return np.convolve(eps, kernel, mode="full")[k.size : k.size + n]


def _day_ar(rng: np.random.Generator, n_days: int, phi: float, std: float) -> FloatArray:
    """A stationary AR(1) path over days (log-level units)."""
    out = np.empty(n_days)
    x = rng.normal(0.0, std)
    for d in range(n_days):
        x = phi * x + rng.normal(0.0, std * math.sqrt(1 - phi * phi))
        out[d] = x
    return out


def _spells(rng: np.random.Generator, n_days: int, per_week: float, std: float) -> FloatArray:
    """Log-level shifts that hold for 2..9 consecutive days (weather spells, school
    holidays, road works), a Poisson number of them."""
    out = np.zeros(n_days)
    for _ in range(rng.poisson(n_days / 7 * per_week)):
        first = int(rng.integers(0, n_days))
        out[first : first + int(rng.integers(2, 10))] += rng.normal(0.0, std)
    return out


def _realistic(
    lot: Lot,
    seed: int,
    start: float,
    hour: FloatArray,
    wd: npt.NDArray[np.int64],
    holiday: npt.NDArray[np.bool_],
    events: npt.NDArray[np.bool_],
    day_index: npt.NDArray[np.int64],
    n_days: int,
) -> FloatArray:
    """Occupancy rate (before the fast AR deviation and counting noise) of the realistic
    variant; draws from its own streams so the regular variant's draws are untouched."""
    rng = np.random.default_rng([seed, 3, int(lot.lot_id[1:])])
    common = np.random.default_rng([seed, 4, int(start // 86400)])  # shared by all lots
    n = hour.size
    # Demand above the floor scaled per lot: some lots reach capacity at their peak and stay
    # full for hours (free clamps at 0).
    peak = rng.uniform(0.85, 1.3)
    # Day level: town-wide spells (weather, school holidays) shared by every lot, the lot's
    # own spells, a persistent day-to-day AR(1), and a slow trend over the weeks.
    shared = _spells(common, n_days, 0.5, 0.15) + _day_ar(common, n_days, 0.6, 0.06)
    own = _spells(rng, n_days, 0.4, 0.25) + _day_ar(rng, n_days, 0.7, 0.2)
    trend = rng.normal(0.0, 0.15) * np.arange(n_days) / 28.0
    log_level = (rng.uniform(0.5, 1.0) * shared + own + trend)[day_index]
    kinds = [lot.kind]
    shift_day, shift_h = n_days, 0.0
    if rng.random() < 0.3:  # the lot's pattern changes mid-period (a shop opens, new rules)
        shift_day = int(rng.integers(n_days // 4, max(n_days // 4 + 1, 3 * n_days // 4)))
        shift_h = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5))
        log_level = log_level + np.where(day_index >= shift_day, rng.normal(0.0, 0.2), 0.0)
        kinds.append(lot.kind if rng.random() < 0.7 else str(rng.choice(LOT_TYPES)))
    # The day's rhythm runs early or late (weather, traffic): a per-day time shift.
    hour = np.mod(hour - rng.normal(0.0, 0.4, n_days)[day_index], 24.0)
    base, _open = _pattern(kinds[0], hour, wd, holiday, events)
    if len(kinds) > 1:
        later, _ = _pattern(kinds[1], np.mod(hour - shift_h, 24.0), wd, holiday, events)
        base = np.where(day_index >= shift_day, later, base)
    floor = 0.03
    demand = floor + (base - floor).clip(0.0) * peak * np.exp(log_level)
    # A slow deviation that lasts most of a day (decay 8 h).
    demand = demand + _ar1(rng, n, 8 * 3600.0, 0.08) * (demand > 0.1)
    if lot.kind != "event":  # occasional events at lots that are not event venues
        for _ in range(rng.poisson(n_days / 21)):
            day = int(rng.integers(0, n_days))
            at = float(rng.uniform(10.0, 20.0))
            length = float(rng.uniform(2.0, 5.0))
            bump = _bump(hour, at, at + length, 0.3) * (day_index == day)
            demand = demand + rng.uniform(0.15, 0.45) * bump
    out: FloatArray = np.clip(demand, 0.0, 1.0)
    return out


def simulate_lot(
    lot: Lot,
    start: float,
    days: int,
    seed: int,
    *,
    messy: bool = True,
    variant: str = DEFAULT_VARIANT,
) -> tuple[FloatArray, FloatArray]:
    """Report times (epoch seconds, in report order, may repeat) and reported free spaces
    (may fall outside 0..capacity) of one lot over ``days`` days from ``start``, in the
    ``variant`` ``"regular"`` or ``"realistic"`` (see the module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    rng = np.random.default_rng([seed, 2, int(lot.lot_id[1:])])
    n = int(days * 86400 / _STEP)
    grid = start + _STEP * np.arange(n)
    local = grid + calendar.utc_offset(grid)
    hour = np.mod(local, 86400.0) / 3600.0
    day_index = np.floor((local - local[0]) / 86400.0).astype(np.int64)
    n_days = int(day_index[-1]) + 1
    wd = calendar.weekday(grid)
    holiday = calendar.is_holiday(grid)
    day_wd = wd[np.searchsorted(day_index, np.arange(n_days))]
    event_p = np.where(day_wd >= 4, 0.45, 0.08)
    events = (rng.random(n_days) < event_p)[day_index]
    base, is_open = _pattern(lot.kind, hour, wd, holiday, events)
    level = np.exp(rng.normal(0.0, 0.12, n_days))[day_index]
    dev = _ar1(rng, n, 7200.0, 0.07)
    if variant == "realistic":
        occ = _realistic(lot, seed, start, hour, wd, holiday, events, day_index, n_days)
        # Arrivals are many independent decisions: their quick fluctuation, as a rate, shrinks
        # with the square root of the lot's size.
        quick = min(1.5, max(0.35, math.sqrt(250.0 / lot.capacity)))
        occ = np.clip(occ + quick * dev * np.where(occ > 0.1, 1.0, 0.15), 0.0, 1.0)
    else:
        occ = np.clip(base * level + dev * np.where(is_open, 1.0, 0.15), 0.0, 1.0)
    cap = lot.capacity
    occupied = cap * occ + rng.normal(0.0, 0.5 + 0.004 * cap, n)
    free = cap - occupied
    if messy and rng.random() < 0.3:  # a counter that drifts, reset every night at 04:00
        drift = np.cumsum(rng.normal(0.0, 0.25, n))
        reset = np.maximum.accumulate(np.where((hour >= 4) & (hour < 4 + _STEP / 3600), drift, 0))
        free = free + (drift - reset) * (1 + cap / 500)

    # Report times: irregular intervals of 1..10 minutes around a per-lot typical interval.
    mean_gap = rng.uniform(60.0, 600.0)
    count = int(days * 86400 / mean_gap * 1.3) + 10
    gaps = rng.uniform(60.0, max(60.0, 2 * mean_gap - 60.0), count)
    times = start + np.cumsum(gaps)
    times = times[times < grid[-1]]
    j = np.clip(((times - start) / _STEP).astype(np.int64), 0, n - 1)
    reported = np.round(free[j])
    keep = np.ones(times.size, dtype=bool)
    if messy:
        if lot.kind == "shopping":
            closed = ~is_open[j]
            if rng.random() < 0.5:
                keep &= ~closed  # silent while closed
            else:
                reported = np.where(closed, float(cap), reported)  # a constant "all free"
        week = 7 * 86400.0
        for _ in range(rng.poisson(days * 86400.0 / week * 0.8)):  # outages of hours
            t0 = rng.uniform(start, grid[-1])
            keep &= ~((times >= t0) & (times < t0 + rng.uniform(1, 8) * 3600))
        if rng.random() < 0.3:  # an outage of days
            t0 = rng.uniform(start, grid[-1])
            keep &= ~((times >= t0) & (times < t0 + rng.uniform(1, 3) * 86400))
        for _ in range(rng.poisson(days / 7 * 0.5)):  # a stuck counter
            t0 = rng.uniform(start, grid[-1])
            stuck = (times >= t0) & (times < t0 + rng.uniform(2, 12) * 3600)
            if stuck.any():
                reported = np.where(stuck, reported[np.argmax(stuck)], reported)
    times, reported = times[keep], reported[keep]
    if messy and variant == "realistic" and times.size > 1 and rng.random() < 0.35:
        # A counter that reports only on change (as an SPDP feed whose lastUpdated only moves
        # when the count does), some with an hourly heartbeat.
        changed = np.ones(times.size, dtype=bool)
        changed[1:] = reported[1:] != reported[:-1]
        if rng.random() < 0.5:
            hour_no = np.floor(times / 3600.0)
            changed[1:] |= hour_no[1:] != hour_no[:-1]
        times, reported = times[changed], reported[changed]
    if messy and times.size > 2:
        dup = rng.random(times.size) < 0.01
        times = np.concatenate([times, times[dup]])
        reported = np.concatenate([reported, reported[dup]])
        jitter = rng.normal(0.0, 900.0, times.size) * (rng.random(times.size) < 0.03)
        order = np.argsort(times + jitter)  # a few rows out of order
        times, reported = times[order], reported[order]
    return np.floor(times), reported


def _iso(t: float, utc: bool) -> str:
    if utc:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.datetime.fromtimestamp(t, calendar.ZONE).isoformat()


def generate_rows(
    n_lots: int = 20,
    days: int = 42,
    *,
    seed: int = 0,
    start: float = DEFAULT_START,
    messy: bool = True,
    variant: str = DEFAULT_VARIANT,
    kinds: Sequence[str] | None = None,
) -> Iterator[Row]:
    """Rows ``(timestamp ISO 8601, lot_id, capacity, free, lat, lon)`` of ``n_lots`` lots over
    ``days`` days, lot after lot (so not in time order), with the flaws listed above when
    ``messy``. A fifth of the lots write UTC ``Z`` timestamps, the rest a local offset."""
    for lot in make_lots(n_lots, seed, kinds):
        times, free = simulate_lot(lot, start, days, seed, messy=messy, variant=variant)
        utc = int(lot.lot_id[1:]) % 5 == 0
        for t, f in zip(times.tolist(), free.tolist(), strict=True):
            yield (_iso(t, utc), lot.lot_id, lot.capacity, int(f), lot.lat, lot.lon)


def generate_series(
    n_lots: int = 20,
    days: int = 42,
    *,
    seed: int = 0,
    start: float = DEFAULT_START,
    messy: bool = True,
    variant: str = DEFAULT_VARIANT,
    kinds: Sequence[str] | None = None,
) -> dict[str, Series]:
    """The same lots as :func:`generate_rows`, straight to cleaned :class:`Series`."""
    out: dict[str, Series] = {}
    for lot in make_lots(n_lots, seed, kinds):
        times, free = simulate_lot(lot, start, days, seed, messy=messy, variant=variant)
        out[lot.lot_id] = Series.build(times, free, float(lot.capacity))
    return out


def csv_lines(rows: Iterable[Row]) -> Iterator[str]:
    """The CSV text of ``rows`` with its header, line by line (each ending in a newline)."""
    yield ",".join(HEADER) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for ts, lot_id, cap, free, lat, lon in rows:
        writer.writerow(
            [ts, lot_id, cap, free, "" if lat is None else lat, "" if lon is None else lon]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def write_csv(rows: Iterable[Row], out: TextIO) -> int:
    """Write ``rows`` as CSV with a header to ``out``; returns the number of data rows."""
    count = -1
    for line in csv_lines(rows):
        out.write(line)
        count += 1
    return count
