"""Plain-text point lists, one point per line ``x y [z]``: read, transformed, written.

Contract of ``arserver transform``: whitespace-separated numbers in x y [z] order (easting
northing, or longitude latitude); blank lines and lines starting with ``#`` are kept as they are
so output lines match input lines; numbers are written with full precision (the shortest text
that reads back as the same float64), in the units of the target CRS (degrees for geographic,
metres for projected and geocentric CRSs, heights in metres). Errors name the 1-based line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from arserver.errors import InputError
from tiles.crs import Transformer
from tiles.errors import CrsError, InvalidCoordinatesError, OutsideGridError


@dataclass
class PointGroup:
    """Points of one dimension (2 or 3 numbers per line) and the 1-based lines they came from."""

    dimension: int
    lines: list[int] = field(default_factory=list)
    values: list[tuple[float, ...]] = field(default_factory=list)

    def columns(self) -> list[NDArray[np.float64]]:
        table = np.array(self.values, dtype=np.float64).reshape(-1, self.dimension)
        return [np.ascontiguousarray(table[:, k]) for k in range(self.dimension)]


@dataclass
class PointList:
    """Parsed input: the points by dimension, and the text of lines that are not points."""

    line_count: int
    groups: dict[int, PointGroup]
    passthrough: dict[int, str]


def parse_points(text: str) -> PointList:
    """Parse a whole point list; raises :class:`InputError` naming the first bad line."""
    groups = {2: PointGroup(2), 3: PointGroup(3)}
    passthrough: dict[int, str] = {}
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            passthrough[number] = raw
            continue
        tokens = stripped.split()
        if len(tokens) not in (2, 3):
            raise InputError(
                f"expected 2 or 3 numbers (x y [z]), found {len(tokens)} fields: {stripped!r}",
                line=number,
            )
        values = tuple(_number(token, number) for token in tokens)
        group = groups[len(values)]
        group.lines.append(number)
        group.values.append(values)
    return PointList(len(lines), {d: g for d, g in groups.items() if g.lines}, passthrough)


def _number(token: str, line: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise InputError(f"{token!r} is not a number", line=line) from None
    if not math.isfinite(value):
        raise InputError(f"{token!r} is not a finite number", line=line)
    return value


def format_points(points: PointList, results: dict[int, list[NDArray[np.float64]]]) -> str:
    """Text with one output line per input line: transformed points, and passthrough lines."""
    out: list[str] = [""] * points.line_count
    for number, raw in points.passthrough.items():
        out[number - 1] = raw
    for dimension, group in points.groups.items():
        columns = [c.tolist() for c in results[dimension]]
        for row, number in enumerate(group.lines):
            out[number - 1] = " ".join(repr(column[row]) for column in columns)
    return "\n".join(out) + ("\n" if out else "")


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
