"""``arserver transform``: a whole point list through a Transformer, errors tied to lines."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from arserver.errors import InputError
from arserver.pointio import format_points, parse_points
from tiles.crs import Transformer
from tiles.errors import CrsError, InvalidCoordinatesError, OutsideGridError


def transform_text(transformer: Transformer, text: str) -> str:
    """Transform every point of ``text``; returns the output text, or raises
    :class:`InputError` naming the first offending line. Nothing is returned partially."""
    points = parse_points(text)
    results: dict[int, list[NDArray[np.float64]]] = {}
    for dimension, group in points.groups.items():
        columns = group.columns()
        try:
            x, y, z = transformer.transform(*columns)
        except OutsideGridError as exc:
            lines = [group.lines[i] for i in exc.indices]
            listed = ", ".join(str(n) for n in lines) + (", ..." if exc.count > len(lines) else "")
            raise InputError(
                f"{exc.count} point(s) outside the area of the transformation (lines {listed}): "
                f"{exc}",
                line=lines[0],
            ) from exc
        except InvalidCoordinatesError as exc:
            line = group.lines[exc.index] if exc.index is not None else group.lines[0]
            raise InputError(str(exc), line=line) from exc
        except CrsError as exc:
            raise InputError(str(exc), line=group.lines[0]) from exc
        results[dimension] = [x, y] if z is None else [x, y, z]
    return format_points(points, results)


def location_to_wgs84(location: list[float], crs: str) -> list[float]:
    """A sensor location given in ``crs`` (x y [z] order, e.g. RD New + NAP ``[x, y, nap]``)
    as [lon, lat] or [lon, lat, h]: ETRS89 degrees (= WGS 84 in this service) and ellipsoidal
    metres. Raises :class:`InputError` for an unknown CRS or a point outside its grids."""
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
