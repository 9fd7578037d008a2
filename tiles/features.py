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
                   "center": [lon, lat, h],
                   "bbox": [west, south, east, north, hmin, hmax]}, ...]}

Degrees are WGS 84 (taken as ETRS89, as in the tileset), heights ellipsoidal metres, rounded
to 1e-9 degree and 1 mm. ``center`` is the centre of the feature's bounding box in the
tileset's East-North-Up frame, converted with the frame's own
:meth:`~tiles.crs.EnuFrame.to_geodetic`; ``bbox`` spans the geodetic coordinates of that box's
eight corners. Features are listed in conversion order; ids are unique: of several features
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

_DEGREE_DIGITS = 9  # 1e-9 degree: 0.1 mm on the ground
_METRE_DIGITS = 3  # 1 mm
_D, _M = f"%.{_DEGREE_DIGITS}f", f"%.{_METRE_DIGITS}f"
#: One feature of the file (%-format: the id as JSON text, then the nine numbers).
_ROW = f'{{"id":%s,"center":[{_D},{_D},{_M}],"bbox":[{_D},{_D},{_D},{_D},{_M},{_M}]}}'


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
    ``centers`` (n, 3) lon, lat (degrees), h (ellipsoidal metres); ``bboxes`` (n, 6) west,
    south, east, north (degrees), hmin, hmax (metres); all rounded as in the file.
    ``duplicates``: each id some later feature also had, with how many features were left
    out for it."""

    ids: list[str]
    features: IndexArray
    centers: FloatArray
    bboxes: FloatArray
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
    # Per feature its centre and then its eight corners: nine points, one call.
    corners = np.where(_CORNERS[None], hi[:, None, :], lo[:, None, :])
    points = np.concatenate([((lo + hi) / 2.0)[:, None, :], corners], axis=1).reshape(-1, 3)
    lon, lat, h = (a.reshape(-1, 9) for a in frame.to_geodetic(*points.T))
    centers = np.column_stack([lon[:, 0], lat[:, 0], h[:, 0]])
    bboxes = np.column_stack(
        [
            lon[:, 1:].min(axis=1),
            lat[:, 1:].min(axis=1),
            lon[:, 1:].max(axis=1),
            lat[:, 1:].max(axis=1),
            h[:, 1:].min(axis=1),
            h[:, 1:].max(axis=1),
        ]
    )
    digits = np.array([_DEGREE_DIGITS, _DEGREE_DIGITS, _METRE_DIGITS])
    scale = 10.0 ** np.r_[digits, digits[:2], digits[:2], digits[2], digits[2]]
    rounded = np.round(np.hstack([centers, bboxes]) * scale) / scale
    return FeatureIndex(
        [ids[f] for f in features.tolist()], features, rounded[:, :3], rounded[:, 3:], duplicates
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
    numbers = np.hstack([index.centers, index.bboxes])
    rows = [_ROW] * len(index.ids)
    items = np.empty((len(index.ids), 10), dtype=object)
    items[:, 0] = [encode_basestring_ascii(i) for i in index.ids]
    items[:, 1:] = numbers
    body = ",\n".join(rows) % tuple(items.ravel().tolist())
    path.write_text('{"features":[\n' + body + "\n]}\n", encoding="utf-8")
    return path
