"""Feature ids and ``features.json``: where each feature of a mesh or feature tileset is.

Every feature of a conversion (a GeoJSON feature, a CityJSON city object, a model's mesh node)
gets a **feature id**, the text of its ``id`` property if it has one, else of its ``name``
property, else its index in the conversion (``"0"``, ``"1"``, ...). A client picks a feature
in a tile and reads the id from the feature's ``EXT_structural_metadata`` properties the same
way: ``id``, else ``name``. So that the text it reads is exactly the id, the chosen property is
written as text (a numeric GeoJSON id 17 becomes ``"17"``), and a feature with neither gets an
``id`` property holding its index. A property that is null or empty text counts as absent.

``features.json``, next to ``tileset.json`` (written in the same atomic directory, so it
appears with the tileset or not at all)::

    {"features": [{"id": "zone-1",
                   "point": [lon, lat, h],
                   "center": [lon, lat, h],
                   "bbox": [west, south, east, north, hmin, hmax]}, ...]}

Degrees are WGS 84 (taken as ETRS89, as in the tileset), heights ellipsoidal metres, rounded
to 1e-9 degree and 1 mm. ``center`` is the centre of the feature's bounding box in the
tileset's East-North-Up frame, converted with the frame's own
:meth:`~tiles.crs.EnuFrame.to_geodetic`; ``bbox`` spans the geodetic coordinates of that box's
eight corners. ``point`` is a point **on** the feature: the point of its triangles closest to
that centre (of its vertices, for a feature without triangles). The centre of a box can lie
far off the feature itself (40 m beside an L-shaped cable), the point never does: it is where
a finding or a comment "on the feature" is placed. On a zone it lies on the top or bottom
face over the centre, on a building on the nearest wall, roof or floor, on a cable on its
surface. Files written before ``point`` existed have ``center`` only.

Features are listed in conversion order; ids are unique: of several features
with one id only the first is listed (the conversion report warns, naming them). A feature
without geometry is not listed. Point cloud tilesets have no features and no file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.crs import EnuFrame
from tiles.model import FeatureModel, MeshPart

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

#: The file's name in a tileset's directory.
FEATURES_FILE = "features.json"
#: Properties that hold a feature's id, in order of preference.
ID_PROPERTIES = ("id", "name")
#: Duplicate ids named in the conversion report's warning (the rest are counted).
NAMED_DUPLICATES = 5
#: Vertices reduced at a time when finding the features' boxes (bounds the extra memory).
_CHUNK_VERTICES = 1 << 20
#: Triangles searched at a time when finding the features' points (bounds the extra memory).
_CHUNK_TRIANGLES = 1 << 17

_DEGREE_DIGITS = 9  # 1e-9 degree: 0.1 mm on the ground
_METRE_DIGITS = 3  # 1 mm
_D, _M = f"%.{_DEGREE_DIGITS}f", f"%.{_METRE_DIGITS}f"
#: One feature of the file (%-format: the id as JSON text, then the twelve numbers).
_ROW = (
    f'{{"id":%s,"point":[{_D},{_D},{_M}],"center":[{_D},{_D},{_M}],'
    f'"bbox":[{_D},{_D},{_D},{_D},{_M},{_M}]}}'
)


def id_text(value: Any) -> str | None:
    """The feature id a property value gives, or None when it gives none (null, empty text).

    Text stays as it is; integers (and floats holding one below 2**53) are their decimal
    digits; other floats their shortest round-trip form; booleans ``true``/``false``; lists
    and objects their compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            text = str(int(value))
        else:
            text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text or None


def assign_ids(properties: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The feature id of each feature, and the properties to write so that picking yields it.

    Returns new property dicts where one changes (the chosen ``id``/``name`` written as its
    text, or an ``id`` holding the index added); the others are the caller's, unchanged."""
    written: list[dict[str, Any]] = []
    ids: list[str] = []
    for index, props in enumerate(properties):
        chosen: tuple[str, str] | None = None
        for name in ID_PROPERTIES:
            text = id_text(props.get(name))
            if text is not None:
                chosen = (name, text)
                break
        if chosen is None:
            chosen = ("id", str(index))
        name, text = chosen
        if props.get(name) != text:  # not text yet (a number, say), or absent
            props = {**props, name: text}
        written.append(props)
        ids.append(text)
    return written, ids


def with_ids(model: FeatureModel) -> tuple[FeatureModel, list[str]]:
    """``model`` with the properties of :func:`assign_ids` (same parts), and the ids."""
    properties, ids = assign_ids(model.properties)
    return FeatureModel(model.parts, properties), ids


@dataclass(frozen=True)
class FeatureIndex:
    """The features of one conversion as written to ``features.json``.

    ``ids`` are unique, in feature order; ``features`` (n,) the index of each in the model;
    ``centers`` (n, 3) the centres of their boxes and ``points`` (n, 3) the points on them
    closest to those centres, lon, lat (degrees), h (ellipsoidal metres); ``bboxes`` (n, 6)
    west, south, east, north (degrees), hmin, hmax (metres); all rounded as in the file.
    ``duplicates``: each id some later feature also had, with how many features were left
    out for it."""

    ids: list[str]
    features: IndexArray
    centers: FloatArray
    bboxes: FloatArray
    points: FloatArray
    duplicates: dict[str, int]

    def warning(self) -> str | None:
        """The conversion report's warning about duplicate ids (None without any)."""
        if not self.duplicates:
            return None
        named = ", ".join(
            repr(i if len(i) <= 60 else i[:59] + "…")
            for i in list(self.duplicates)[:NAMED_DUPLICATES]
        )
        more = len(self.duplicates) - NAMED_DUPLICATES
        left_out = sum(self.duplicates.values())
        return (
            f"{len(self.duplicates)} feature id{'s' if len(self.duplicates) != 1 else ''} "
            f"used by more than one feature ({named}{f', and {more} more' if more > 0 else ''})"
            f"; {FEATURES_FILE} lists the first feature of each and leaves out {left_out} "
            f"other{'s' if left_out != 1 else ''}"
        )


def feature_boxes(
    parts: Sequence[MeshPart], count: int
) -> tuple[FloatArray, FloatArray, IndexArray]:
    """The ENU bounding box (minimum, maximum: (k, 3) metres) of each of the ``count``
    features that has vertices, and those features' indices (k,), ascending.

    Vectorised: the parts' vertices are reduced about a million at a time (which bounds the
    memory this takes), then the parts' boxes per feature."""
    used = [p for p in parts if p.vertices.shape[0] > 0 and 0 <= p.feature < count]
    if not used:
        return np.empty((0, 3)), np.empty((0, 3)), np.empty(0, dtype=np.int64)
    sizes = np.array([p.vertices.shape[0] for p in used], dtype=np.int64)
    ends = np.cumsum(sizes)
    # Chunk k holds the parts that end in (k * chunk, (k + 1) * chunk], at least one part.
    cuts = np.unique(np.searchsorted(ends, np.arange(0, ends[-1], _CHUNK_VERTICES), "right"))
    bounds = [*cuts[cuts > 0].tolist(), len(used)] if cuts.size else [len(used)]
    part_lo = np.empty((len(used), 3))
    part_hi = np.empty((len(used), 3))
    start = 0
    for stop in dict.fromkeys(bounds):  # ascending, each once
        if stop <= start:
            continue
        vertices = np.concatenate([p.vertices for p in used[start:stop]])
        offsets = ends[start:stop] - sizes[start:stop] - (ends[start] - sizes[start])
        part_lo[start:stop] = np.minimum.reduceat(vertices, offsets, axis=0)
        part_hi[start:stop] = np.maximum.reduceat(vertices, offsets, axis=0)
        start = stop
    feature_of = np.array([p.feature for p in used], dtype=np.int64)
    order = np.argsort(feature_of, kind="stable")
    sorted_features = feature_of[order]
    firsts = np.flatnonzero(np.r_[True, sorted_features[1:] != sorted_features[:-1]])
    lo = np.minimum.reduceat(part_lo[order], firsts, axis=0)
    hi = np.maximum.reduceat(part_hi[order], firsts, axis=0)
    return lo, hi, sorted_features[firsts]


def closest_on_triangles(targets: FloatArray, triangles: FloatArray) -> FloatArray:
    """For each row, the point of triangle ``triangles[i]`` ((t, 3, 3): corners a, b, c)
    closest to ``targets[i]`` ((t, 3)); returns a new (t, 3) array, same units.

    Ericson's region test (Real-Time Collision Detection, 5.1.5), vectorised: the Voronoi
    region of the target (a corner, an edge, the face) decides the projection. A degenerate
    triangle (a segment or a point) gives its nearest point where the test defines one; in
    any case the result is never farther than the nearest corner."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ab, ac = b - a, c - a
    ap, bp, cp = targets - a, targets - b, targets - c

    def dot(u: FloatArray, v: FloatArray) -> FloatArray:
        products: FloatArray = np.einsum("ij,ij->i", u, v)
        return products

    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        total = va + vb + vc
        found = a + ab * (vb / total)[:, None] + ac * (vc / total)[:, None]  # inside the face
        # The regions in the reverse of Ericson's order, so that his first match wins.
        on_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        in_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        found = np.where(in_bc[:, None], b + (c - b) * on_bc[:, None], found)
        on_ac = d2 / (d2 - d6)
        found = np.where(
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0))[:, None], a + ac * on_ac[:, None], found
        )
        found = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, found)
        on_ab = d1 / (d1 - d3)
        found = np.where(
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0))[:, None], a + ab * on_ab[:, None], found
        )
        found = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, found)
        found = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, found)
        # The nearest of the projection and the three corners (a non-finite one loses).
        candidates = np.stack([found, a, b, c], axis=1)
        squared = ((candidates - targets[:, None, :]) ** 2).sum(axis=2)
    squared[~np.isfinite(squared)] = np.inf
    best = squared.argmin(axis=1)
    result: FloatArray = candidates[np.arange(len(targets)), best]
    return result


def feature_points(
    parts: Sequence[MeshPart], features: IndexArray, targets: FloatArray
) -> FloatArray:
    """For each of ``features`` (ascending, unique feature indices), the point of its parts
    closest to its row of ``targets`` ((k, 3) ENU metres): on the surface of its triangles,
    or its nearest vertex when it has none; a new (k, 3) array. A feature without vertices
    keeps its target.

    Vectorised: the parts' triangles are searched about :data:`_CHUNK_TRIANGLES` at a time
    (which bounds the memory this takes); per feature the nearest candidate wins (a lexsort
    by feature, then squared distance)."""
    points: FloatArray = np.array(targets, dtype=np.float64, copy=True)
    best = np.full(len(features), np.inf)
    if not len(features) or not parts:
        return points
    feature_of = np.array([p.feature for p in parts], dtype=np.int64)
    where = np.minimum(np.searchsorted(features, feature_of), len(features) - 1)
    listed = features[where] == feature_of
    owned = [
        (at, part)
        for at, part, ok in zip(where.tolist(), parts, listed.tolist(), strict=True)
        if ok and part.vertices.shape[0]
    ]
    chunk: list[FloatArray] = []
    owners: list[int] = []
    size = 0
    for position, (at, part) in enumerate(owned):
        if part.faces.shape[0]:
            triangles = part.vertices[part.faces]
        else:  # no triangles: each vertex as a triangle of one point
            triangles = np.repeat(part.vertices[:, None, :], 3, axis=1)
        chunk.append(triangles)
        owners.append(at)
        size += triangles.shape[0]
        if size >= _CHUNK_TRIANGLES or position == len(owned) - 1:
            counts = [t.shape[0] for t in chunk]
            owner = np.repeat(np.asarray(owners, dtype=np.int64), counts)
            _keep_nearest(np.concatenate(chunk), owner, targets, points, best)
            chunk, owners, size = [], [], 0
    return points


def _keep_nearest(
    triangles: FloatArray,
    owner: IndexArray,
    targets: FloatArray,
    points: FloatArray,
    best: FloatArray,
) -> None:
    """Update ``points`` and ``best`` (squared distances, in place) with each owner's
    nearest point of ``triangles`` (rows owned by ``owner``) where it is nearer."""
    found = closest_on_triangles(targets[owner], triangles)
    squared = ((found - targets[owner]) ** 2).sum(axis=1)
    order = np.lexsort((squared, owner))
    sorted_owner = owner[order]
    firsts = order[np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])]
    who = owner[firsts]
    nearer = squared[firsts] < best[who]
    best[who[nearer]] = squared[firsts][nearer]
    points[who[nearer]] = found[firsts][nearer]


#: Which of (minimum, maximum) each of a box's eight corners takes per axis.
_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=bool)


def index_features(model: FeatureModel, ids: Sequence[str], frame: EnuFrame) -> FeatureIndex:
    """The :class:`FeatureIndex` of ``model`` (ENU metres in ``frame``), ``ids`` one per
    feature of ``model.properties``."""
    if len(ids) != len(model.properties):
        raise ValueError(f"{len(ids)} ids for {len(model.properties)} features")
    lo, hi, features = feature_boxes(model.parts, len(model.properties))
    keep, duplicates = _first_of_each(ids, features)
    lo, hi, features = lo[keep], hi[keep], features[keep]
    middle = (lo + hi) / 2.0
    on_feature = feature_points(model.parts, features, middle)
    # Per feature its point, its centre and then its eight corners: ten points, one call.
    corners = np.where(_CORNERS[None], hi[:, None, :], lo[:, None, :])
    enu = np.concatenate([on_feature[:, None, :], middle[:, None, :], corners], axis=1)
    lon, lat, h = (a.reshape(-1, 10) for a in frame.to_geodetic(*enu.reshape(-1, 3).T))
    points = np.column_stack([lon[:, 0], lat[:, 0], h[:, 0]])
    centers = np.column_stack([lon[:, 1], lat[:, 1], h[:, 1]])
    bboxes = np.column_stack(
        [
            lon[:, 2:].min(axis=1),
            lat[:, 2:].min(axis=1),
            lon[:, 2:].max(axis=1),
            lat[:, 2:].max(axis=1),
            h[:, 2:].min(axis=1),
            h[:, 2:].max(axis=1),
        ]
    )
    digits = np.array([_DEGREE_DIGITS, _DEGREE_DIGITS, _METRE_DIGITS])
    scale = 10.0 ** np.r_[digits, digits, digits[:2], digits[:2], digits[2], digits[2]]
    rounded = np.round(np.hstack([points, centers, bboxes]) * scale) / scale
    return FeatureIndex(
        [ids[f] for f in features.tolist()],
        features,
        centers=rounded[:, 3:6],
        bboxes=rounded[:, 6:],
        points=rounded[:, :3],
        duplicates=duplicates,
    )


def _first_of_each(ids: Sequence[str], features: IndexArray) -> tuple[IndexArray, dict[str, int]]:
    """Positions in ``features`` (ascending indices) of the first feature of each id, and the
    ids left out with how many times."""
    seen: set[str] = set()
    keep: list[int] = []
    duplicates: dict[str, int] = {}
    for position, feature in enumerate(features.tolist()):
        text = ids[feature]
        if text in seen:
            duplicates[text] = duplicates.get(text, 0) + 1
        else:
            seen.add(text)
            keep.append(position)
    return np.asarray(keep, dtype=np.int64), duplicates


def write_features(index: FeatureIndex, directory: Path) -> Path:
    """Write ``features.json`` into ``directory``; returns its path.

    One line of JSON text per feature (ids with ASCII escapes, so any text is written, lone
    surrogates included; numbers with the digits they were rounded to)."""
    path = directory / FEATURES_FILE
    numbers = np.hstack([index.points, index.centers, index.bboxes])
    rows = [_ROW] * len(index.ids)
    items = np.empty((len(index.ids), 13), dtype=object)
    items[:, 0] = [encode_basestring_ascii(i) for i in index.ids]
    items[:, 1:] = numbers
    body = ",\n".join(rows) % tuple(items.ravel().tolist())
    path.write_text('{"features":[\n' + body + "\n]}\n", encoding="utf-8")
    return path
