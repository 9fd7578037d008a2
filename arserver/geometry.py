"""Coordinate helpers the HTTP layer needs, on top of :mod:`tiles.crs`.

Positions in this service are ETRS89 (treated as WGS 84) ``[lon, lat]`` in degrees or
``[lon, lat, h]`` with ``h`` in ellipsoidal metres; clients may give them in any CRS PROJ knows,
in x y [z] order whatever that CRS's official axis order.
"""

from __future__ import annotations

from arserver.errors import InputError
from tiles.crs import Transformer
from tiles.errors import CrsError, InvalidCoordinatesError, OutsideGridError


def location_to_wgs84(location: list[float], crs: str) -> list[float]:
    """A location given in ``crs`` (x y [z] order, e.g. RD New + NAP ``[x, y, nap]`` in metres)
    as ``[lon, lat]`` or ``[lon, lat, h]``: ETRS89 degrees (= WGS 84 in this service) and
    ellipsoidal metres. Raises :class:`InputError` for an unknown CRS, a point outside its grids
    or coordinates the transformation cannot take."""
    target = "EPSG:4937" if len(location) == 3 else "EPSG:4258"
    try:
        transformer = Transformer.from_crs(crs, target)
        x, y, z = transformer.transform(
            [location[0]], [location[1]], [location[2]] if len(location) == 3 else None
        )
    except (CrsError, OutsideGridError, InvalidCoordinatesError) as exc:
        raise InputError(f"location in {crs}: {exc}") from exc
    result = [float(x[0]), float(y[0])]
    if z is not None:
        result.append(float(z[0]))
    return result


def positions_to_etrs89(
    points: list[tuple[float, float, float]], crs: str | None
) -> list[tuple[float, float, float]]:
    """Positions x, y, z in ``crs`` (None: already ETRS89 lon, lat, h, which are checked to be
    degrees) as ETRS89 lon, lat (degrees) and ellipsoidal h (metres), in one transformation.
    :class:`InputError` as :func:`location_to_wgs84` raises it."""
    xs, ys, zs = (list(c) for c in zip(*points, strict=True))
    if crs is None:
        if not all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in zip(xs, ys, strict=True)):
            raise InputError(
                "positions are [lon, lat, h] in degrees; positions in another CRS (RD New + "
                "NAP: EPSG:7415) need 'crs'"
            )
        return list(zip(xs, ys, zs, strict=True))
    try:
        lon, lat, h = Transformer.from_crs(crs, "EPSG:4937").transform(xs, ys, zs)
    except (CrsError, OutsideGridError, InvalidCoordinatesError) as exc:
        raise InputError(f"positions in {crs}: {exc}") from exc
    assert h is not None  # heights given, and the target has them
    return list(zip(lon.tolist(), lat.tolist(), h.tolist(), strict=True))
