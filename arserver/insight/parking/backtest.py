"""The backtest of the parking forecaster, and the streaming reader of counter CSV files.

Reader (sans-I/O: it takes an iterable of text lines): columns
``timestamp,lot_id,capacity,free[,lat,lon]`` in any order, any row order. Timestamps are ISO
8601 with an offset or ``Z``; a timestamp without an offset is taken as UTC; one of digits only
is epoch seconds. Rows are aggregated as they stream into one point per lot per 5-minute bucket
(the latest in time; on equal times the later line), so memory grows with lots x buckets, not
with rows. Bad rows are counted by cause with their first line numbers; a file that cannot be
used at all (empty, a missing column, no usable row) raises
:class:`~arserver.errors.InputError`.

Protocol (:func:`run_backtest`): the test period is the last 14 days (the last third of the data
when it spans less than 6 weeks); the forecaster and every profile are fitted on the points
before it; forecast origins lie every 15 minutes in the test period and each forecast uses only
the points at or before its origin. The actual at a target time is the observed value as of
that time if at most 15 minutes old; otherwise that target is skipped for every method alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from arserver.errors import InputError
from arserver.insight.parking import baselines
from arserver.insight.parking.calendar import SLOT_SECONDS
from arserver.insight.parking.forecast import HORIZONS_MIN, Forecaster
from arserver.insight.parking.profile import weekly_profile
from arserver.insight.parking.series import Series, asof

FloatArray = npt.NDArray[np.float64]

REQUIRED = ("timestamp", "lot_id", "capacity", "free")
OPTIONAL = ("lat", "lon")
METHODS = ("model", "last_value", "seasonal_naive", "profile_delta")
#: Resolution of the streamed aggregation, seconds.
BUCKET_SECONDS = 300
#: A lot's data may span at most this many days; rows that would stretch it further are
#: dropped (``out_of_range``), so one absurd timestamp cannot blow up the memory.
MAX_SPAN_DAYS = 800
#: Timestamps outside these years are refused as implausible.
MIN_YEAR, MAX_YEAR = 1990, 2100
_FIRST_LINES = 5
_MIN_TS = dt.datetime(MIN_YEAR, 1, 1, tzinfo=dt.UTC).timestamp()
_MAX_TS = dt.datetime(MAX_YEAR, 1, 1, tzinfo=dt.UTC).timestamp()


@dataclass
class ReadReport:
    """What the reader did: ``rows`` data rows seen, ``points`` kept after aggregation,
    ``dropped`` rows by cause, ``first_lines`` the first line numbers (1-based) per cause,
    ``noted`` rows kept but with a remark (e.g. ``duplicate``, ``bad_position``)."""

    rows: int = 0
    points: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    noted: dict[str, int] = field(default_factory=dict)
    first_lines: dict[str, list[int]] = field(default_factory=dict)

    def _count(self, table: dict[str, int], cause: str, line: int) -> None:
        table[cause] = table.get(cause, 0) + 1
        lines = self.first_lines.setdefault(cause, [])
        if len(lines) < _FIRST_LINES:
            lines.append(line)

    def drop(self, cause: str, line: int) -> None:
        self._count(self.dropped, cause, line)

    def note(self, cause: str, line: int) -> None:
        self._count(self.noted, cause, line)

    def summary(self) -> list[str]:
        """One line per cause, e.g. ``"dropped 3 rows: bad_free (lines 4, 9, 12)"``."""
        out = []
        for verb, table in (("dropped", self.dropped), ("noted", self.noted)):
            for cause, count in sorted(table.items()):
                lines = ", ".join(str(n) for n in self.first_lines.get(cause, []))
                more = ", ..." if count > len(self.first_lines.get(cause, [])) else ""
                out.append(f"{verb} {count} rows: {cause} (lines {lines}{more})")
        return out


class _LotBuffer:
    """One lot's points, one per bucket, in flat arrays of doubles grown as needed (doubling,
    in either direction); NaN marks an empty bucket."""

    __slots__ = ("base", "cap_time", "capacity", "free", "lat", "lon", "times")

    def __init__(self, bucket: int) -> None:
        self.base = bucket - 64
        self.times = array("d", [math.nan]) * 256
        self.free = array("d", [math.nan]) * 256
        self.capacity = math.nan
        self.cap_time = -math.inf
        self.lat: float | None = None
        self.lon: float | None = None

    def span_ok(self, bucket: int) -> bool:
        """Whether holding ``bucket`` keeps the lot within :data:`MAX_SPAN_DAYS`."""
        filled = np.flatnonzero(np.isfinite(np.frombuffer(self.times, dtype=np.float64)))
        if filled.size == 0:
            return True
        lo = min(int(filled[0]) + self.base, bucket)
        hi = max(int(filled[-1]) + self.base, bucket)
        return (hi - lo) * BUCKET_SECONDS <= MAX_SPAN_DAYS * 86400

    def grow(self, bucket: int) -> None:
        """Make room for ``bucket``."""
        n = len(self.times)
        if bucket < self.base:
            extra = max(n, self.base - bucket + 64)
            pad = array("d", [math.nan]) * extra
            self.times = pad + self.times
            self.free = pad + self.free
            self.base -= extra
        else:
            extra = max(n, bucket - self.base - n + 64)
            pad = array("d", [math.nan]) * extra
            self.times.extend(pad)
            self.free.extend(pad)

    def series(self) -> tuple[Series | None, int]:
        times = np.frombuffer(self.times, dtype=np.float64)
        ok = np.isfinite(times)
        if not ok.any() or not math.isfinite(self.capacity) or self.capacity <= 0:
            return None, 0
        free = np.frombuffer(self.free, dtype=np.float64)
        return Series.build(times[ok], free[ok], self.capacity), int(ok.sum())


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp (with an offset or ``Z``; naive means UTC) or
    of a string of digits (epoch seconds). Raises ValueError when it is neither."""
    t = text.strip()
    if t.isdigit():
        value = float(t)
    else:
        stamp = dt.datetime.fromisoformat(t)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        value = stamp.timestamp()
    if not (_MIN_TS <= value < _MAX_TS):
        raise ValueError("timestamp out of range")
    return value


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


@dataclass(frozen=True, eq=False)
class CsvData:
    """The series read from a CSV, with the positions (lat, lon) where given and the report."""

    series: dict[str, Series]
    positions: dict[str, tuple[float, float]]
    report: ReadReport


def read_csv_lines(lines: Iterable[str]) -> CsvData:
    """Read counter rows from ``lines`` (text lines of a CSV file, with or without their line
    ends), streaming. See the module docstring for the format and what is dropped.

    Raises :class:`~arserver.errors.InputError` for an empty file, a header without one of
    the required columns, or a file without a single usable row."""
    reader = csv.reader(line.rstrip("\r\n") for line in lines)
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lstrip("\ufeff").strip().lower() for cell in row]
            break
    if header is None:
        raise InputError("the file is empty: expected a header timestamp,lot_id,capacity,free")
    header_line = reader.line_num
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} in the header"
            f" (found {', '.join(header) or 'none'}; expected timestamp,lot_id,capacity,free"
            "[,lat,lon])",
            line=header_line,
        )
    col = {name: header.index(name) for name in REQUIRED + OPTIONAL if name in header}
    i_ts, i_lot, i_cap, i_free = (col[name] for name in REQUIRED)
    i_lat, i_lon = col.get("lat"), col.get("lon")
    width = max(i_ts, i_lot, i_cap, i_free) + 1
    report = ReadReport()
    lots: dict[str, _LotBuffer] = {}
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        if len(row) < width:
            report.drop("short_row", line)
            continue
        lot_id = row[i_lot].strip()
        if not lot_id:
            report.drop("missing_lot_id", line)
            continue
        try:
            t = parse_time(row[i_ts])
        except ValueError:
            report.drop("bad_timestamp", line)
            continue
        try:
            capacity = _number(row[i_cap])
            if capacity <= 0:
                raise ValueError("capacity")
        except ValueError:
            report.drop("bad_capacity", line)
            continue
        try:
            free = _number(row[i_free])
        except ValueError:
            report.drop("bad_free", line)
            continue
        bucket = int(t // BUCKET_SECONDS)
        buf = lots.get(lot_id)
        if buf is None:
            buf = lots[lot_id] = _LotBuffer(bucket)
        i = bucket - buf.base
        if not 0 <= i < len(buf.times):
            if not buf.span_ok(bucket):
                report.drop("out_of_range", line)
                continue
            buf.grow(bucket)
            i = bucket - buf.base
        held = buf.times[i]
        if held == t and buf.free[i] == free:
            report.note("duplicate", line)
        if not held > t:  # NaN (empty) or not later: this row wins
            buf.times[i] = t
            buf.free[i] = free
        if t >= buf.cap_time:
            buf.capacity, buf.cap_time = capacity, t
        if i_lat is not None and i_lon is not None and len(row) > max(i_lat, i_lon):
            lat_s, lon_s = row[i_lat].strip(), row[i_lon].strip()
            if lat_s or lon_s:
                try:
                    lat, lon = _number(lat_s), _number(lon_s)
                    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                        raise ValueError("range")
                    buf.lat, buf.lon = lat, lon
                except ValueError:
                    report.note("bad_position", line)
    series: dict[str, Series] = {}
    positions: dict[str, tuple[float, float]] = {}
    for lot_id, buf in lots.items():
        s, points = buf.series()
        if s is None:
            continue
        series[lot_id] = s
        report.points += points
        if buf.lat is not None and buf.lon is not None:
            positions[lot_id] = (buf.lat, buf.lon)
    if not series:
        detail = "; ".join(report.summary()) or "no data rows"
        raise InputError(f"no usable rows in the file ({detail})")
    return CsvData(series, positions, report)


# -- the protocol ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """Errors of one method at one horizon, in free spaces over ``n`` targets."""

    mae: float
    rmse: float
    n: int


@dataclass(frozen=True, eq=False)
class Trace:
    """One lot's +30-minute forecasts over the test period, for the plot."""

    lot: str
    capacity: float
    targets: FloatArray
    actual: FloatArray
    model: FloatArray
    low: FloatArray
    high: FloatArray


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Scores per horizon (minutes) and method, the model's 80%-interval coverage per
    horizon, and what was tested."""

    scores: dict[int, dict[str, Score]]
    coverage: dict[int, float]
    train_start: float
    test_start: float
    test_end: float
    lots: int
    lots_tested: int
    origins: int
    methods: dict[str, int]
    too_short: list[str]
    traces: list[Trace]

    def to_json(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{"15": {"model": {"mae", "rmse"}, "last_value": ..., "seasonal_naive": ...,
        "profile_delta": ...}, "30": ..., "60": ...}`` (free spaces; None where nothing was
        scored)."""

        def num(value: float) -> float | None:
            return round(value, 4) if math.isfinite(value) else None

        return {
            str(h): {
                m: {"mae": num(self.scores[h][m].mae), "rmse": num(self.scores[h][m].rmse)}
                for m in METHODS
            }
            for h in HORIZONS_MIN
        }


def split_time(start: float, end: float) -> float:
    """Start of the test period of data spanning ``start..end`` (epoch seconds)."""
    span = end - start
    length = 14 * 86400.0 if span >= 42 * 86400.0 else span / 3.0
    return end - length


def run_backtest(
    series: Mapping[str, Series],
    *,
    progress: Callable[[float], None] | None = None,
    trace_lots: int = 4,
) -> BacktestResult:
    """Run the protocol of the module docstring over ``series``; ``progress`` gets the
    fraction done. Raises :class:`~arserver.errors.InputError` when the data span less than
    two days or nothing could be scored."""
    report = progress or (lambda _fraction: None)
    usable = {k: s for k, s in series.items() if len(s) > 0}
    if not usable:
        raise InputError("no lot has any data")
    start = min(float(s.times[0]) for s in usable.values())
    end = max(float(s.times[-1]) for s in usable.values())
    if end - start < 2 * 86400.0:
        raise InputError(
            f"the data span {(end - start) / 3600.0:.1f} hours; a backtest needs at least 2 days"
        )
    cut = split_time(start, end)
    forecaster = Forecaster.fit(usable, until=cut, progress=lambda f: report(0.5 * f))
    horizons_s = {h: 60.0 * h for h in HORIZONS_MIN}
    sums = {h: {m: [0.0, 0.0, 0] for m in METHODS} for h in HORIZONS_MIN}
    covered = {h: [0, 0] for h in HORIZONS_MIN}
    grid = np.arange(math.ceil(cut / SLOT_SECONDS) * SLOT_SECONDS, end, SLOT_SECONDS)
    origins_used: set[float] = set()
    methods: dict[str, int] = {}
    too_short: list[str] = []
    traces: list[Trace] = []
    names = sorted(usable)
    tested = 0
    for i, name in enumerate(names):
        report(0.5 + 0.5 * i / len(names))
        s = usable[name]
        if len(s) < 2:
            too_short.append(name)
            continue
        origins = grid[(grid >= s.times[0])]
        if origins.size == 0:
            too_short.append(name)
            continue
        profile = weekly_profile(s, until=cut)
        preds = forecaster.predict(name, s, origins)
        lot_scored = False
        for h in HORIZONS_MIN:
            hs = horizons_s[h]
            actual = asof(s, origins + hs, max_age=baselines.MAX_AGE)[0]
            actual = np.where(origins + hs <= end, actual, np.nan)
            pred = preds[h]
            candidates = {
                "model": pred.free,
                "last_value": baselines.last_value(s, origins),
                "seasonal_naive": baselines.seasonal_naive(s, origins, hs),
                "profile_delta": baselines.profile_delta(s, profile, origins, hs),
            }
            ok = np.isfinite(actual)
            for values in candidates.values():
                ok &= np.isfinite(values)
            if not ok.any():
                continue
            lot_scored = True
            origins_used.update(origins[ok].tolist())
            for m, values in candidates.items():
                err = values[ok] - actual[ok]
                acc = sums[h][m]
                acc[0] += float(np.abs(err).sum())
                acc[1] += float((err * err).sum())
                acc[2] += int(ok.sum())
            inside = (actual[ok] >= pred.low[ok] - 1e-9) & (actual[ok] <= pred.high[ok] + 1e-9)
            covered[h][0] += int(inside.sum())
            covered[h][1] += int(ok.sum())
            if h == 30 and len(traces) < trace_lots and ok.sum() > 96:
                traces.append(
                    Trace(
                        name, s.capacity, origins[ok] + hs, actual[ok], pred.free[ok],
                        pred.low[ok], pred.high[ok],
                    )
                )  # fmt: skip
        if lot_scored:
            tested += 1
            methods[preds[HORIZONS_MIN[0]].method] = (
                methods.get(preds[HORIZONS_MIN[0]].method, 0) + 1
            )
        else:
            too_short.append(name)
    report(1.0)
    if tested == 0:
        raise InputError("nothing to score: no lot has observations in the test period")
    scores = {
        h: {
            m: Score(
                acc[0] / acc[2] if acc[2] else math.nan,
                math.sqrt(acc[1] / acc[2]) if acc[2] else math.nan,
                int(acc[2]),
            )
            for m, acc in sums[h].items()
        }
        for h in HORIZONS_MIN
    }
    coverage = {h: c[0] / c[1] if c[1] else math.nan for h, c in covered.items()}
    return BacktestResult(
        scores, coverage, start, cut, end, len(series), tested, len(origins_used), methods,
        too_short, traces,
    )  # fmt: skip
