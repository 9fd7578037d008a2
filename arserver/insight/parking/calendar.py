"""The parking calendar: 15-minute slots and day types in Europe/Amsterdam local time.

Every function takes a numpy array of epoch seconds (UTC, float64) and works element-wise. The
local time comes from the IANA zone ``Europe/Amsterdam`` (zoneinfo), so a profile slot means the
same wall-clock quarter hour in winter and in summer time. Dutch UTC offsets are whole hours and
change on whole UTC hours, so a 15-minute slot in UTC is also a 15-minute slot in local time.

Day types are integers: 0 = Monday ... 6 = Sunday, 7 = a Dutch public holiday (the list of the
``holidays`` package, country ``NL``), which overrides the weekday.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt

#: The zone every profile slot is counted in.
ZONE = ZoneInfo("Europe/Amsterdam")
SLOT_SECONDS = 900
SLOTS_PER_DAY = 96
HOLIDAY = 7
N_DAY_TYPES = 8
DAY_TYPE_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_TYPE_NAMES_ALL = (*DAY_TYPE_NAMES, "holiday")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Years outside this range are clamped for the offset and holiday tables (no crash, no table
#: of a thousand years for a bad timestamp).
_MIN_YEAR, _MAX_YEAR = 1971, 2199


@lru_cache(maxsize=64)
def _offsets_of_year(year: int) -> npt.NDArray[np.int32]:
    """UTC offset in seconds of ``ZONE`` for every UTC hour of ``year``."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    hours = int((dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC) - start).total_seconds() // 3600)
    out = np.empty(hours, dtype=np.int32)
    base = start.timestamp()
    for h in range(hours):
        offset = dt.datetime.fromtimestamp(base + 3600 * h, ZONE).utcoffset()
        out[h] = int(offset.total_seconds()) if offset is not None else 0
    return out


@lru_cache(maxsize=64)
def _year_start(year: int) -> float:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp()


@lru_cache(maxsize=64)
def _holiday_days(year: int) -> npt.NDArray[np.int64]:
    """Local dates of the Dutch public holidays of ``year`` as days since 1970-01-01."""
    epoch = dt.date(1970, 1, 1)
    days = [(d - epoch).days for d in holidays.country_holidays("NL", years=year)]
    return np.asarray(sorted(days), dtype=np.int64)


def _year_of(seconds: float) -> int:
    clamped = min(max(seconds, _year_start(_MIN_YEAR)), _year_start(_MAX_YEAR + 1) - 1)
    return dt.datetime.fromtimestamp(clamped, dt.UTC).year


def utc_offset(times: npt.ArrayLike) -> IntArray:
    """UTC offset of Europe/Amsterdam in seconds (3600 or 7200) at each epoch second.

    Times outside 1971..2199 get the offset at the nearest edge of that range; non-finite
    times get 3600. Returns a new int64 array of the same shape."""
    t = np.asarray(times, dtype=np.float64)
    flat = t.ravel()
    out = np.full(flat.shape, 3600, dtype=np.int64)
    finite = np.isfinite(flat)
    if not finite.any():
        return out.reshape(t.shape)
    tf = np.clip(flat[finite], _year_start(_MIN_YEAR), _year_start(_MAX_YEAR + 1) - 1)
    first, last = _year_of(float(tf.min())), _year_of(float(tf.max()))
    table = np.concatenate([_offsets_of_year(y) for y in range(first, last + 1)])
    hour = ((tf - _year_start(first)) // 3600).astype(np.int64)
    out[finite] = table[np.clip(hour, 0, len(table) - 1)]
    return out.reshape(t.shape)


def _local_seconds(times: npt.ArrayLike) -> FloatArray:
    t = np.asarray(times, dtype=np.float64)
    return np.where(np.isfinite(t), t, 0.0) + utc_offset(t)


def _holiday_mask(days: IntArray) -> npt.NDArray[np.bool_]:
    if days.size == 0:
        return np.zeros(days.shape, dtype=bool)
    lo, hi = int(days.min()), int(days.max())
    epoch = dt.date(1970, 1, 1)
    first = (epoch + dt.timedelta(days=min(max(lo, 0), 84_000))).year
    last = (epoch + dt.timedelta(days=min(max(hi, 0), 84_000))).year
    table = np.zeros(hi - lo + 1, dtype=bool)
    for year in range(max(first, _MIN_YEAR), min(last, _MAX_YEAR) + 1):
        found = _holiday_days(year)
        found = found[(found >= lo) & (found <= hi)]
        table[found - lo] = True
    return table[days - lo]


def local_day(times: npt.ArrayLike) -> IntArray:
    """Local calendar date as days since 1970-01-01 (non-finite times count as 1970-01-01)."""
    return np.floor(_local_seconds(times) / 86400.0).astype(np.int64)


def local_slot(times: npt.ArrayLike) -> IntArray:
    """Local 15-minute slot of the day, 0 (00:00-00:15) to 95 (23:45-24:00)."""
    seconds = np.mod(_local_seconds(times), 86400.0)
    return np.clip((seconds // SLOT_SECONDS).astype(np.int64), 0, SLOTS_PER_DAY - 1)


def weekday(times: npt.ArrayLike) -> IntArray:
    """Local weekday, 0 = Monday ... 6 = Sunday."""
    return np.mod(local_day(times) + 3, 7)  # 1970-01-01 was a Thursday


def is_holiday(times: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where the local date is a Dutch public holiday."""
    return _holiday_mask(local_day(times))


def day_type(times: npt.ArrayLike) -> IntArray:
    """Day type at each time: the local weekday (0..6), or :data:`HOLIDAY` (7)."""
    return day_type_and_slot(times)[0]


def day_type_and_slot(times: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Day type (0..7) and local slot (0..95) at each time, with one offset lookup."""
    local = _local_seconds(times)
    days = np.floor(local / 86400.0).astype(np.int64)
    slots = np.clip(
        ((local - days * 86400.0) // SLOT_SECONDS).astype(np.int64), 0, SLOTS_PER_DAY - 1
    )
    types = np.where(_holiday_mask(days), HOLIDAY, np.mod(days + 3, 7)).astype(np.int64)
    return types, slots


def slot_label(slot: int) -> str:
    """``"HH:MM"`` of the start of a local slot."""
    minutes = int(slot) * 15
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
