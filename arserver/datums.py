"""The datum a client wants positions in: ETRS89 (as everything is stored), or ITRF2020,
ITRF2014 or WGS 84 (G2296) at an epoch, for clients that position themselves with GNSS in a
frame that moves against ETRS89 (see :mod:`tiles.crs.datums`).

Tilesets in another datum differ only in their root transform, composed with the Helmert
matrix; so that caches hold one answer per datum and epoch, the epoch is rounded to
:data:`EPOCH_STEP` years (0.1 year moves a point in the Netherlands by 2.4 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from arserver.errors import InputError
from tiles.crs import datums
from tiles.crs.ellipsoid import FloatArray
from tiles.errors import CrsError

#: Epochs of served tilesets are rounded to this many years.
EPOCH_STEP: Final = 0.1


@dataclass(frozen=True)
class ClientDatum:
    """A datum other than ETRS89 at an epoch, and the 4x4 matrix taking ETRS89 geocentric
    coordinates (metres) to it."""

    name: str
    epoch: float
    matrix: FloatArray = field(compare=False)  # follows from the name and the epoch


def decimal_year(moment: datetime) -> float:
    """``moment`` (timezone-aware) as a decimal year, e.g. 2026-11-25 -> 2026.90."""
    start = datetime(moment.year, 1, 1, tzinfo=UTC)
    end = datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    return moment.year + (moment - start) / (end - start)


def client_datum(
    datum: str | None, epoch: float | None, *, now: datetime | None = None, step: float = 0.0
) -> ClientDatum | None:
    """The datum ``datum`` names at ``epoch`` (default: ``now``), rounded to ``step`` years
    when given; None for ETRS89 (or no datum), which needs no change.
    :class:`InputError` for an unknown datum or an epoch outside 1989..2100."""
    if datum is None:
        return None
    try:
        frame = datums.frame(datum)
        if frame == "ETRS89":
            return None
        year = epoch if epoch is not None else decimal_year(now or datetime.now(UTC))
        if step:
            year = round(round(year / step) * step, 6)
        year = datums.check_epoch(year)
        matrix = datums.helmert("ETRS89", frame, year).matrix
    except CrsError as exc:
        raise InputError(str(exc)) from None
    return ClientDatum(datum.strip().upper(), year, matrix)
