"""DATEX II parking reader: ParkingTablePublication (static) and ParkingStatusPublication.

Both DATEX II v3 (``http://datex2.eu/schema/3/parking`` and friends, in a ``messageContainer`` or
a bare ``payload``) and v2.3 (``d2LogicalModel`` with ``payloadPublication
xsi:type="ParkingTablePublication"`` or ``"ParkingStatusPublication"``, namespace
``http://datex2.eu/schema/2/2_0``) are read. Elements are matched by local name, so namespace
prefixes (and the version's namespace) do not matter.

- Static: each ``parkingTable/parkingRecord`` (ParkingSite, UrbanParkingSite,
  InterUrbanParkingSite...): ``id``, ``parkingName`` (multilingual; Dutch, then English, then the
  first value), ``parkingNumberOfSpaces``, ``operator``, and the location: ``pointByCoordinates/
  pointCoordinates`` or ``locationForDisplay`` (latitude/longitude), else the centre of a GML
  polygon (``exterior/posList``, latitude-longitude pairs as EPSG:4326 orders them).
- Dynamic: each ``parkingRecordStatus``: ``parkingRecordReference/@id``,
  ``parkingStatusOriginTime`` (else the publication's ``publicationTime``), ``parkingOccupancy``
  (``parkingNumberOfVacantSpaces``, ``parkingNumberOfOccupiedSpaces``, percentage
  ``parkingOccupancy``), ``parkingSiteOpeningStatus`` and ``parkingSiteStatus``. When only the
  occupied count or the percentage is given, the vacant count is derived from the capacity (the
  status's ``parkingNumberOfSpacesOverride``, else the record's capacity from the same document or
  from ``capacities``).

Times without an offset are taken as UTC. Documents are parsed with defusedxml and any DTD is
refused, so entity expansion ("billion laughs") and external entities never run. Identifiers
become ``"datex2:<id>"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeElementTree

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

SOURCE = "datex2"

#: Default bound on the size of a document (bytes); the fetcher enforces the same bound.
MAX_BYTES = 20 * 1024 * 1024

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_MAX_ID = 200
_LANGUAGES = ("nl", "en")

_OPEN = {"open": True, "closed": False, "closedabnormal": False}
_FULL = {
    "full": True,
    "fullatentrance": True,
    "overcrowded": True,
    "spacesavailable": False,
    "almostfull": False,
    "fewspacesavailable": False,
    "manyspacesavailable": False,
}


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _child(element: Element, name: str) -> Element | None:
    return next(_children(element, name), None)


def _descendants(element: Element, name: str) -> Iterator[Element]:
    return (item for item in element.iter() if _local(item.tag) == name)


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _child_text(element: Element, name: str) -> str | None:
    return _text(_child(element, name))


def _xsi_type(element: Element) -> str:
    """The local part of ``xsi:type`` ("prk:ParkingSite" -> "ParkingSite"), "" when absent."""
    return element.get(_XSI_TYPE, "").rsplit(":", 1)[-1]


def _identifier(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise FeedError(f"{what} has no id")
    if len(value.strip()) > _MAX_ID:
        raise FeedError(f"{what} has an id longer than {_MAX_ID} characters")
    return value.strip()


def _multilingual(element: Element | None) -> str | None:
    """The Dutch text of a DATEX II multilingual string, else English, else the first."""
    if element is None:
        return None
    values = [(v.get("lang", "").lower(), _text(v)) for v in _descendants(element, "value")]
    texts = [(lang, text) for lang, text in values if text]
    for wanted in _LANGUAGES:
        for lang, text in texts:
            if lang == wanted:
                return text
    return texts[0][1] if texts else _text(element)


def _time(text: str | None, what: str) -> datetime:
    if text is None:
        raise FeedError(f"{what} is missing")
    try:
        time = datetime.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{what} is not an ISO 8601 time: {short(text)}") from None
    return check_time(time, what)


def parse_xml(data: bytes, *, max_bytes: int = MAX_BYTES) -> Element:
    """The root element of ``data``; FeedError for a document that is too big, not well-formed
    XML, or has a DTD (entity declarations and external entities are never processed)."""
    if len(data) > max_bytes:
        raise FeedError(f"the DATEX II document is larger than {max_bytes} bytes")
    try:
        root: Element = SafeElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DTDForbidden:
        raise FeedError("the DATEX II document declares a DTD, which is refused") from None
    except defusedxml.EntitiesForbidden:
        raise FeedError("the DATEX II document declares entities, which are refused") from None
    except defusedxml.DefusedXmlException:
        raise FeedError("the DATEX II document uses XML features that are refused") from None
    except (ParseError, ValueError, RecursionError) as exc:
        detail = f" ({exc})" if isinstance(exc, ParseError) else ""
        raise FeedError(f"the DATEX II document is not well-formed XML{detail}") from None
    return root


# -- static ----------------------------------------------------------------------------------


def _coordinates(element: Element) -> tuple[float, float] | None:
    """(lon, lat) of an element with ``latitude`` and ``longitude`` children, if in range."""
    try:
        lat = to_number(_child_text(element, "latitude"), "latitude")
        lon = to_number(_child_text(element, "longitude"), "longitude")
    except FeedError:
        return None
    return (lon, lat) if valid_position(lon, lat) else None


def _first_point(scope: Element, names: tuple[str, ...]) -> tuple[float, float] | None:
    for name in names:
        for element in _descendants(scope, name):
            point = _coordinates(element)
            if point is not None:
                return point
    return None


def _polygon(scope: Element) -> list[list[float]] | None:
    """Outer ring of the first GML polygon in ``scope`` as ``[[lon, lat], ...]``."""
    for exterior in _descendants(scope, "exterior"):
        pos_list = next(_descendants(exterior, "posList"), None)
        text = _text(pos_list)
        if text is None:
            continue
        try:
            numbers = [to_number(part, "posList") for part in text.split()]
        except FeedError:
            continue
        if len(numbers) % 2:
            continue
        ring = closed_ring([[numbers[i + 1], numbers[i]] for i in range(0, len(numbers), 2)])
        if ring is not None:
            return ring
    return None


def _operator(record: Element) -> str | None:
    operator = _child(record, "operator")
    if operator is None:
        return None
    for name in ("contactOrganisationName", "organisationName", "name"):
        named = _multilingual(next(_descendants(operator, name), None))
        if named:
            return named
    for element in operator.iter():
        if len(element) == 0 and _text(element):
            return _text(element)
    return None


def _parking_record(record: Element) -> CarParkInfo:
    ident = _identifier(record.get("id"), "a parking record")
    what = f"parking record {ident}"
    name = (
        _multilingual(_child(record, "parkingName"))
        or _multilingual(_child(record, "name"))
        or ident
    )
    spaces = _child_text(record, "parkingNumberOfSpaces")
    capacity = None if spaces is None else to_capacity(spaces, f"{what}: parkingNumberOfSpaces")
    location = _child(record, "parkingLocation")
    scope = location if location is not None else record
    area = _polygon(scope)
    point = (
        _first_point(scope, ("pointCoordinates", "locationForDisplay"))
        or _first_point(record, ("pointCoordinates", "locationForDisplay"))
        or (ring_centre(area) if area is not None else None)
    )
    if point is None:
        raise FeedError(f"{what} has no usable location")
    return CarParkInfo(
        id=f"{SOURCE}:{ident}",
        name=name,
        lon=point[0],
        lat=point[1],
        capacity=capacity,
        area=area,
        operator=_operator(record),
        source=SOURCE,
    )


def _records(root: Element) -> Iterator[Element]:
    for table in _descendants(root, "parkingTable"):
        yield from _children(table, "parkingRecord")


# -- dynamic ---------------------------------------------------------------------------------


def _publications(root: Element) -> list[Element]:
    """The payload elements (v3 ``payload``, v2.3 ``payloadPublication``), the root if none."""
    found = [
        element
        for element in root.iter()
        if _local(element.tag) in ("payload", "payloadPublication") and len(element)
    ]
    return found or [root]


def _status_elements(publication: Element) -> Iterator[Element]:
    for element in publication.iter():
        if _local(element.tag) == "parkingRecordStatus":
            yield element


def _vacant(occupancy: Element | None, capacity: int | None, what: str) -> tuple[int | None, bool]:
    """(vacant spaces, whether the status said anything about occupancy)."""
    if occupancy is None:
        return None, False
    vacant_text = _child_text(occupancy, "parkingNumberOfVacantSpaces")
    occupied_text = _child_text(occupancy, "parkingNumberOfOccupiedSpaces")
    rate_text = next(
        (_text(e) for e in _children(occupancy, "parkingOccupancy") if len(e) == 0), None
    )
    if vacant_text is not None:
        return to_count(vacant_text, f"{what}: parkingNumberOfVacantSpaces"), True
    if occupied_text is not None:
        occupied = to_count(occupied_text, f"{what}: parkingNumberOfOccupiedSpaces")
        return (None if capacity is None else capacity - occupied), True
    if rate_text is not None:
        rate = to_number(rate_text, f"{what}: parkingOccupancy")
        if not 0.0 <= rate <= 1000.0:
            raise FeedError(f"{what}: parkingOccupancy is out of range: {short(rate_text)}")
        return (None if capacity is None else round(capacity * (1.0 - rate / 100.0))), True
    return None, False


def _parking_status(
    element: Element,
    publication_time: str | None,
    capacities: Mapping[str, int],
) -> CarParkStatus:
    reference = _child(element, "parkingRecordReference")
    ref_id = None
    if reference is not None:
        ref_id = reference.get("id") or _text(reference)
    ident = _identifier(ref_id, "a parking record status")
    what = f"status of parking record {ident}"
    key = f"{SOURCE}:{ident}"
    origin = _child_text(element, "parkingStatusOriginTime")
    time = _time(
        origin or publication_time,
        f"{what}: parkingStatusOriginTime" if origin else f"{what}: publicationTime",
    )
    override_text = next(
        (t for e in _descendants(element, "parkingNumberOfSpacesOverride") if (t := _text(e))),
        None,
    )
    override = (
        None
        if override_text is None
        else to_capacity(override_text, f"{what}: parkingNumberOfSpacesOverride")
    )
    capacity = override if override is not None else capacities.get(key)
    occupancy = next((e for e in _children(element, "parkingOccupancy") if len(e)), None)
    vacant, said_occupancy = _vacant(occupancy, capacity, what)
    opening = (_child_text(element, "parkingSiteOpeningStatus") or "").lower()
    site = next((_text(e) for e in _children(element, "parkingSiteStatus") if len(e) == 0), None)
    site = (site or "").lower()
    is_open = _OPEN.get(opening)
    if site == "closed":
        is_open = False
    is_full = _FULL.get(site)
    if not said_occupancy and is_open is None and is_full is None:
        raise FeedError(f"{what} has no occupancy and no opening or site status")
    return CarParkStatus(
        id=key, time=time, vacant=vacant, capacity=override, open=is_open, full=is_full
    )


# -- document --------------------------------------------------------------------------------


def _is_parking(root: Element) -> bool:
    for element in root.iter():
        if _local(element.tag) in ("parkingTable", "parkingRecordStatus"):
            return True
        if _xsi_type(element) in ("ParkingTablePublication", "ParkingStatusPublication"):
            return True
    return False


def read_datex2(
    data: bytes,
    *,
    capacities: Mapping[str, int] | None = None,
    max_bytes: int = MAX_BYTES,
) -> FeedBatch:
    """Car parks and statuses of a DATEX II v3 or v2.3 parking document.

    ``capacities`` maps car-park ids (``"datex2:<id>"``) to capacities known from an earlier
    table, to derive vacant spaces of a status publication that gives only occupied spaces or a
    percentage; capacities of records in the same document take precedence. Records and statuses
    that cannot be used are skipped with a line in ``problems``; FeedError is raised when the
    document is too big, not safe well-formed XML, or not a DATEX II parking publication.
    """
    root = parse_xml(data, max_bytes=max_bytes)
    if not _is_parking(root):
        raise FeedError(
            "not a DATEX II parking publication: no ParkingTablePublication or "
            "ParkingStatusPublication"
        )
    problems = Problems()
    car_parks: list[CarParkInfo] = []
    seen: set[str] = set()
    for number, record in enumerate(_records(root), start=1):
        try:
            info = _parking_record(record)
        except FeedError as exc:
            problems.add(f"parking record {number} skipped: {exc}")
            continue
        if info.id in seen:
            problems.add(f"{info.id}: listed twice; the first one was read")
            continue
        seen.add(info.id)
        car_parks.append(info)
    known = dict(capacities or {})
    known.update({c.id: c.capacity for c in car_parks if c.capacity is not None})
    statuses: list[CarParkStatus] = []
    number = 0
    visited: set[int] = set()
    for publication in _publications(root):
        publication_time = next((_text(e) for e in _children(publication, "publicationTime")), None)
        for element in _status_elements(publication):
            if id(element) in visited:
                continue
            visited.add(id(element))
            number += 1
            try:
                statuses.append(_parking_status(element, publication_time, known))
            except FeedError as exc:
                problems.add(f"parking record status {number} skipped: {exc}")
    return FeedBatch(car_parks, statuses, problems.lines())
