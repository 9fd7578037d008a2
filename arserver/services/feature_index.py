"""Reading a converted tileset's ``features.json`` (see :mod:`tiles.features`) into the rows of
``asset_features``, for :meth:`~arserver.services.assets.AssetService.publish_tiles`.

The file is streamed (never held whole). What it may hold is checked as untrusted input:

- a missing file (point clouds, tilesets converted before there was one), bytes that are not
  JSON, or a document that is not ``{"features": [...]}`` give no features, never an error;
- a feature's position is its ``point`` (a point on the feature itself), or its ``center``
  (the centre of its bounding box, which may lie off the feature) in files written before
  there were points;
- an entry whose id is not text, is empty, longer than
  :data:`~arserver.store.features.MAX_FEATURE_ID` characters or not storable
  (:func:`~arserver.services.checks.storable_text`), or whose position is not a finite
  longitude, latitude and height on Earth, is skipped (the parser reads an escaped lone
  surrogate as ``?``, so none reaches the database);
- of several entries with one id the first is kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson  # type: ignore[import-untyped]

from arserver.services.checks import MAX_ABS_HEIGHT_M, storable_text
from arserver.store.features import MAX_FEATURE_ID, FeaturePosition

log = logging.getLogger(__name__)

#: The file's name in a converted tileset's directory (as :mod:`tiles.features` writes it).
FEATURES_FILE = "features.json"


#: How deep an entry may nest (the entry object, then its lists) and how many members or
#: items one of its objects or lists may have: an entry beyond either is skipped unbuilt.
MAX_ENTRY_DEPTH = 3
MAX_ENTRY_ITEMS = 16

_SCALARS = frozenset({"string", "number", "boolean", "null"})
_UNUSABLE = object()  # an entry too deep or too large to build


class _MalformedError(ValueError):
    """The document is not ``{"features": [...]}`` JSON."""


@dataclass(frozen=True)
class FeatureIndexFile:
    """The usable features of one ``features.json`` and how many entries were skipped
    (unusable, or a repeated id)."""

    features: list[FeaturePosition]
    skipped: int = 0


def read_feature_index(path: Path) -> FeatureIndexFile:
    """The features listed in the ``features.json`` at ``path``, in file order; none for a
    missing or malformed file (logged, never raised). Memory: the features kept, plus one
    entry of bounded size at a time, however the file nests."""
    if not path.is_file():
        return FeatureIndexFile([])
    features: list[FeaturePosition] = []
    seen: set[str] = set()
    skipped = 0
    try:
        with path.open("rb") as handle:
            for entry in _entries(ijson.basic_parse(handle, use_float=True)):
                feature = _position(entry)
                if feature is None or feature.feature_id in seen:
                    skipped += 1
                    continue
                seen.add(feature.feature_id)
                features.append(feature)
    except (OSError, ValueError, ijson.JSONError) as exc:
        log.warning("%s is unusable (%s); the asset gets no features", path.name, exc)
        return FeatureIndexFile([])
    if skipped:
        log.warning("%s: %d entries skipped (unusable, or a repeated id)", path.name, skipped)
    return FeatureIndexFile(features, skipped)


Events = Iterator[tuple[str, Any]]


def _next(events: Events) -> tuple[str, Any]:
    for event in events:
        return event
    raise _MalformedError("the document ends early")


def _entries(events: Events) -> Iterator[Any]:
    """Each item of the top-level object's ``features`` list, built (or :data:`_UNUSABLE`);
    other members are skipped without being built."""
    event, _ = _next(events)
    if event != "start_map":
        raise _MalformedError("the document is not a JSON object")
    while True:
        event, key = _next(events)
        if event == "end_map":
            return
        event, value = _next(events)
        if key != "features" or event != "start_array":
            _skip(events, event)
            continue
        while True:
            event, value = _next(events)
            if event == "end_array":
                break
            yield _built(events, event, value, 1)


def _built(events: Events, event: str, value: Any, depth: int) -> Any:
    """The value that starts with ``event``, or :data:`_UNUSABLE` (consumed whole) when it
    nests deeper than :data:`MAX_ENTRY_DEPTH` or holds more than :data:`MAX_ENTRY_ITEMS`."""
    if event in _SCALARS:
        return value
    if depth > MAX_ENTRY_DEPTH:
        _skip(events, event)
        return _UNUSABLE
    if event == "start_map":
        members: dict[str, Any] = {}
        while True:
            event, key = _next(events)
            if event == "end_map":
                return members
            if len(members) >= MAX_ENTRY_ITEMS:
                _close(events)
                return _UNUSABLE
            event, value = _next(events)
            members[key] = _built(events, event, value, depth + 1)
    if event == "start_array":
        items: list[Any] = []
        while True:
            event, value = _next(events)
            if event == "end_array":
                return items
            if len(items) >= MAX_ENTRY_ITEMS:
                _skip(events, event)
                _close(events)
                return _UNUSABLE
            items.append(_built(events, event, value, depth + 1))
    raise _MalformedError(f"unexpected {event}")


def _skip(events: Events, event: str) -> None:
    """Consume the rest of a value that started with ``event``; nothing is kept."""
    if event in ("start_map", "start_array"):
        _close(events)


def _close(events: Events) -> None:
    """Consume events up to the end of the object or list open now, however deep it nests
    (a count, nothing kept)."""
    depth = 1
    while depth > 0:
        event, _ = _next(events)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1


def _position(entry: Any) -> FeaturePosition | None:
    """The feature of one entry, or None when it is unusable."""
    if not isinstance(entry, dict):
        return None
    feature_id = entry.get("id")
    if (
        not isinstance(feature_id, str)
        or not 0 < len(feature_id) <= MAX_FEATURE_ID
        or not storable_text(feature_id)
    ):
        return None
    position = entry["point"] if "point" in entry else entry.get("center")
    if not isinstance(position, list) or len(position) != 3:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position):
        return None
    try:
        lon, lat, h = (float(v) for v in position)
    except OverflowError:  # an integer no double holds
        return None
    if not all(math.isfinite(v) for v in (lon, lat, h)):
        return None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 and abs(h) <= MAX_ABS_HEIGHT_M):
        return None
    return FeaturePosition(feature_id, lon, lat, h)
