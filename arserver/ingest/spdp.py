"""SPDP v2 (Standaard voor Publicatie Dynamische Parkeerdata) reader: index, static, dynamic.

The shapes follow the open data of the Nationaal Parkeer Register (npropendata.rdw.nl) and the
operators that publish in the same form:

- index: ``{"ParkingFacilities": [{"identifier", "name", "staticDataUrl", "dynamicDataUrl",
  "limitedAccess", "staticDataLastUpdated"}, ...]}`` (older v1 feeds say ``uuid`` for the id);
- static: ``{"parkingFacilityInformation": {"identifier", "name", "operator": {"name"},
  "locationForDisplay": {"latitude", "longitude"}, "accessPoints": [{"isVehicleEntrance",
  "accessPointLocation": [{"latitude", "longitude"}]}], "specifications": [{"capacity",
  "areaGeometry" (GeoJSON), "validityStartOfPeriod"}]}}``;
- dynamic: ``{"parkingFacilityDynamicInformation": {"identifier", "name",
  "facilityActualStatus": {"vacantSpaces", "parkingCapacity", "full", "open",
  "lastUpdated"}}}`` with ``lastUpdated`` in epoch seconds (values that can only be
  milliseconds, above 10^11, are read as milliseconds).

Numbers may also come as numeric strings, as some publishers write them. Identifiers become
``"spdp:<identifier>"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from arserver.ingest.feed_fetch import resolve
from arserver.ingest.parking_feeds import (
    CarParkInfo,
    CarParkStatus,
    FeedBatch,
    FeedError,
    Problems,
    check_time,
    closed_ring,
    ring_centre,
    short,
    to_capacity,
    to_count,
    to_number,
    valid_position,
)

SOURCE = "spdp"

#: An index may list at most this many facilities per read; the rest are reported, not read.
MAX_FACILITIES = 5000

_MAX_ID = 200
_EPOCH_MS_ABOVE = 1e11

IndexEntry = tuple[str, str, str | None, str | None]


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        raise FeedError(f"{what} is missing")
    if not isinstance(value, dict):
        raise FeedError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _text(value: Any) -> str | None:
    """A non-empty stripped string from a string or number; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _identifier(value: Any, what: str) -> str:
    text = _text(value)
    if text is None:
        raise FeedError(f"{what} has no identifier")
    if len(text) > _MAX_ID:
        raise FeedError(f"{what} has an identifier longer than {_MAX_ID} characters")
    return text


def _bool(value: Any, what: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FeedError(f"{what} must be true or false, not {short(value)}")


def _url(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_spdp_index(doc: Any) -> list[IndexEntry]:
    """``(identifier, name, static_url, dynamic_url)`` of each facility in an SPDP index.

    URLs are as written in the index (possibly relative: resolve them against the index's
    source). An entry without an identifier raises FeedError here; :func:`read_spdp` instead
    skips such entries and names each in its ``problems``.
    """
    entries, problems = _index_entries(doc)
    if problems:
        raise FeedError(problems[0])
    return entries


def _index_entries(doc: Any) -> tuple[list[IndexEntry], list[str]]:
    facilities = doc.get("ParkingFacilities") if isinstance(doc, dict) else doc
    if not isinstance(facilities, list):
        raise FeedError("an SPDP index must have a list 'ParkingFacilities'")
    entries: list[IndexEntry] = []
    problems: list[str] = []
    for number, item in enumerate(facilities, start=1):
        what = f"index entry {number}"
        try:
            entry = _object(item, what)
            ident = _identifier(entry.get("identifier", entry.get("uuid", entry.get("id"))), what)
        except FeedError as exc:
            problems.append(str(exc))
            continue
        name = _text(entry.get("name")) or ident
        entries.append(
            (ident, name, _url(entry.get("staticDataUrl")), _url(entry.get("dynamicDataUrl")))
        )
    return entries, problems


def _point(value: Any) -> tuple[float, float] | None:
    """(lon, lat) of an SPDP ``{"latitude", "longitude"}`` object (or a list of them: the first
    usable one), None when absent or out of range."""
    candidates = value if isinstance(value, list) else [value]
    for item in candidates:
        if not isinstance(item, dict):
            continue
        try:
            lat = to_number(item.get("latitude"), "latitude")
            lon = to_number(item.get("longitude"), "longitude")
        except FeedError:
            continue
        if valid_position(lon, lat):
            return lon, lat
    return None


def _outer_ring(geometry: Any) -> list[list[float]] | None:
    """Outer ring of a GeoJSON Polygon (or of the first polygon of a MultiPolygon)."""
    if not isinstance(geometry, dict):
        return None
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    try:
        if kind == "MultiPolygon" and isinstance(coords, list) and coords:
            coords = coords[0]
        elif kind != "Polygon":
            return None
        if not isinstance(coords, list) or not coords or not isinstance(coords[0], list):
            return None
        points = [
            [to_number(p[0], "longitude"), to_number(p[1], "latitude")]
            for p in coords[0]
            if isinstance(p, list) and len(p) >= 2
        ]
    except FeedError:
        return None
    return closed_ring(points)


def _current_specification(specs: Any) -> dict[str, Any] | None:
    """The specification in force: the one with the latest ``validityStartOfPeriod``, the last
    one listed when they do not say."""
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list):
        return None
    best: dict[str, Any] | None = None
    best_start = float("-inf")
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        try:
            start = to_number(spec.get("validityStartOfPeriod"), "validityStartOfPeriod")
        except FeedError:
            start = float("-inf")
        if best is None or start >= best_start:
            best, best_start = spec, start
    return best


def _operator(value: Any) -> str | None:
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _text(value)


def parse_spdp_static(doc: Any, *, default_id: str | None = None) -> CarParkInfo:
    """The car park of an SPDP static document (``parkingFacilityInformation``).

    The position is the first vehicle entrance, else ``locationForDisplay``, else any access
    point, else the centre of the area; a facility without any usable position raises
    FeedError. ``default_id`` (the index's identifier) is used when the document has none.
    """
    info = _object(
        _object(doc, "an SPDP static document").get("parkingFacilityInformation"),
        "parkingFacilityInformation",
    )
    raw_id = info.get("identifier", info.get("uuid"))
    ident = _identifier(raw_id if raw_id is not None else default_id, "parkingFacilityInformation")
    name = _text(info.get("name")) or _text(info.get("description")) or ident
    spec = _current_specification(info.get("specifications"))
    capacity = None
    area = None
    if spec is not None:
        if spec.get("capacity") is not None:
            capacity = to_capacity(spec.get("capacity"), f"facility {ident}: capacity")
        area = _outer_ring(spec.get("areaGeometry"))
    access = info.get("accessPoints")
    access_points = [a for a in access if isinstance(a, dict)] if isinstance(access, list) else []
    entrances = [a for a in access_points if a.get("isVehicleEntrance") is True]
    position = None
    for point in [
        *(a.get("accessPointLocation") for a in entrances),
        info.get("locationForDisplay"),
        *(a.get("accessPointLocation") for a in access_points),
    ]:
        position = _point(point)
        if position is not None:
            break
    if position is None and area is not None:
        position = ring_centre(area)
    if position is None:
        raise FeedError(f"facility {ident} has no usable location")
    return CarParkInfo(
        id=f"{SOURCE}:{ident}",
        name=name,
        lon=position[0],
        lat=position[1],
        capacity=capacity,
        area=area,
        operator=_operator(info.get("operator")),
        source=SOURCE,
    )


def _epoch(value: Any, what: str) -> datetime:
    seconds = to_number(value, what)
    if abs(seconds) > _EPOCH_MS_ABOVE:
        seconds /= 1000.0
    try:
        time = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise FeedError(f"{what} is out of range: {short(value)}") from None
    return check_time(time, what)


def parse_spdp_dynamic(doc: Any, *, default_id: str | None = None) -> CarParkStatus:
    """The status of an SPDP dynamic document (``parkingFacilityDynamicInformation``).

    ``lastUpdated`` (epoch seconds) is required and becomes the status time in UTC; missing
    counts and flags are None. ``default_id`` is used when the document has no identifier.
    """
    info = _object(
        _object(doc, "an SPDP dynamic document").get("parkingFacilityDynamicInformation"),
        "parkingFacilityDynamicInformation",
    )
    raw_id = info.get("identifier", info.get("uuid"))
    ident = _identifier(
        raw_id if raw_id is not None else default_id, "parkingFacilityDynamicInformation"
    )
    what = f"facility {ident}"
    status = _object(info.get("facilityActualStatus"), f"{what}: facilityActualStatus")
    if status.get("lastUpdated") is None:
        raise FeedError(f"{what}: facilityActualStatus has no lastUpdated")
    vacant = status.get("vacantSpaces")
    capacity = status.get("parkingCapacity")
    return CarParkStatus(
        id=f"{SOURCE}:{ident}",
        time=_epoch(status.get("lastUpdated"), f"{what}: lastUpdated"),
        vacant=None if vacant is None else to_count(vacant, f"{what}: vacantSpaces"),
        capacity=None if capacity is None else to_capacity(capacity, f"{what}: parkingCapacity"),
        open=_bool(status.get("open"), f"{what}: open"),
        full=_bool(status.get("full"), f"{what}: full"),
    )


def parse_json(data: bytes, what: str) -> Any:
    """JSON of ``data``; FeedError naming ``what`` when it is not JSON (or nests too deep)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise FeedError(f"{what} is not valid JSON") from None


def read_spdp(
    source: str,
    fetch: Callable[[str], bytes],
    *,
    max_facilities: int = MAX_FACILITIES,
) -> FeedBatch:
    """Car parks and statuses from an SPDP index, static or dynamic document at ``source``.

    The kind of document is told by its top-level key. For an index, each facility's static and
    dynamic documents are fetched through ``fetch`` (their URLs resolved against ``source``); a
    facility whose documents cannot be fetched or used is skipped with a line in ``problems``.
    ``fetch`` must raise FeedError for a document it cannot get. FeedError is raised only when the
    document at ``source`` itself is unusable.
    """
    doc = parse_json(fetch(source), source)
    if isinstance(doc, dict) and "parkingFacilityInformation" in doc:
        return FeedBatch([parse_spdp_static(doc)], [], [])
    if isinstance(doc, dict) and "parkingFacilityDynamicInformation" in doc:
        return FeedBatch([], [parse_spdp_dynamic(doc)], [])
    if not (isinstance(doc, dict) and "ParkingFacilities" in doc):
        raise FeedError(
            f"{source} is not an SPDP document: expected 'ParkingFacilities', "
            "'parkingFacilityInformation' or 'parkingFacilityDynamicInformation'"
        )
    entries, index_problems = _index_entries(doc)
    problems = Problems()
    for line in index_problems:
        problems.add(line)
    if len(entries) > max_facilities:
        problems.add(
            f"the index lists {len(entries)} facilities; only the first {max_facilities} were read"
        )
        entries = entries[:max_facilities]
    car_parks: list[CarParkInfo] = []
    statuses: list[CarParkStatus] = []
    seen: set[str] = set()
    for ident, _name, static_url, dynamic_url in entries:
        if ident in seen:
            problems.add(f"facility {ident}: listed twice in the index; the first one was read")
            continue
        seen.add(ident)
        if static_url is None and dynamic_url is None:
            problems.add(f"facility {ident}: no staticDataUrl or dynamicDataUrl")
            continue
        if static_url is not None:
            try:
                url = resolve(source, static_url)
                doc = parse_json(fetch(url), "its static document")
                car_parks.append(parse_spdp_static(doc, default_id=ident))
            except FeedError as exc:
                problems.add(f"facility {ident}: static data skipped: {exc}")
        if dynamic_url is not None:
            try:
                url = resolve(source, dynamic_url)
                doc = parse_json(fetch(url), "its dynamic document")
                statuses.append(parse_spdp_dynamic(doc, default_id=ident))
            except FeedError as exc:
                problems.add(f"facility {ident}: dynamic data skipped: {exc}")
    return FeedBatch(car_parks, statuses, problems.lines())
