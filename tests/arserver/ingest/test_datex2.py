"""DATEX II parking reader: v3 and v2.3 samples, derived counts, hostile and broken XML."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element, fromstring, tostring

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arserver.ingest.datex2 import read_datex2
from arserver.ingest.parking_feeds import CarParkStatus, FeedBatch, FeedError, merge

DATEX2 = Path(__file__).resolve().parents[2] / "data" / "parking" / "datex2"

V3 = "http://datex2.eu/schema/3"
V2 = "http://datex2.eu/schema/2/2_0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def read(name: str, **kwargs: object) -> FeedBatch:
    return read_datex2((DATEX2 / name).read_bytes(), **kwargs)  # type: ignore[arg-type]


def v2_status(*statuses: str, publication_time: str = "2025-03-14T08:15:00Z") -> bytes:
    """A v2.3 ParkingStatusPublication holding ``statuses`` (parkingRecordStatus bodies)."""
    body = "".join(
        f'<parkingRecordStatus xsi:type="ParkingSiteStatus">{s}</parkingRecordStatus>'
        for s in statuses
    )
    return (
        f'<d2LogicalModel xmlns="{V2}" xmlns:xsi="{XSI}" modelBaseVersion="2">'
        f'<payloadPublication xsi:type="ParkingStatusPublication" lang="nl">'
        f"<publicationTime>{publication_time}</publicationTime>{body}"
        "</payloadPublication></d2LogicalModel>"
    ).encode()


def v2_table(*records: str) -> bytes:
    """A v2.3 ParkingTablePublication holding ``records`` (whole parkingRecord elements)."""
    return (
        f'<d2LogicalModel xmlns="{V2}" xmlns:xsi="{XSI}" modelBaseVersion="2">'
        f'<payloadPublication xsi:type="ParkingTablePublication" lang="nl">'
        "<publicationTime>2025-03-14T07:00:00Z</publicationTime>"
        f'<parkingTable id="t" version="1">{"".join(records)}</parkingTable>'
        "</payloadPublication></d2LogicalModel>"
    ).encode()


def ref(ident: str) -> str:
    return f'<parkingRecordReference targetClass="ParkingRecord" id="{ident}" version="1"/>'


POINT = (
    "<parkingLocation><pointByCoordinates><pointCoordinates><latitude>52.1</latitude>"
    "<longitude>5.1</longitude></pointCoordinates></pointByCoordinates></parkingLocation>"
)


# -- the samples -----------------------------------------------------------------------------


def test_the_v3_table_gives_three_car_parks() -> None:
    batch = read("v3_table.xml")
    assert batch.problems == []
    assert batch.statuses == []
    by_id = {c.id: c for c in batch.car_parks}
    assert list(by_id) == [
        "datex2:NL-AMF-FLINTPLEIN",
        "datex2:NL-AMF-STADHUISPLEIN",
        "datex2:NL-AMF-EEMPLEIN",
    ]
    flint = by_id["datex2:NL-AMF-FLINTPLEIN"]
    assert flint.name == "Parkeergarage Flintplein"  # Dutch before English
    assert (flint.lon, flint.lat, flint.capacity) == (5.38703, 52.15752, 510)
    assert flint.operator == "Gemeente Amersfoort"
    assert flint.source == "datex2"
    eemplein = by_id["datex2:NL-AMF-EEMPLEIN"]
    assert eemplein.area is not None
    assert eemplein.area[0] == eemplein.area[-1] == [5.37890, 52.15940]  # lat lon swapped
    assert (eemplein.lon, eemplein.lat) == (5.3801, 52.16)  # centre of the polygon


def test_the_v3_status_gives_counts_times_and_opening() -> None:
    table = read("v3_table.xml")
    batch = read(
        "v3_status.xml", capacities={c.id: c.capacity for c in table.car_parks if c.capacity}
    )
    assert batch.problems == []
    assert batch.car_parks == []
    by_id = {s.id: s for s in batch.statuses}
    assert by_id["datex2:NL-AMF-FLINTPLEIN"] == CarParkStatus(
        id="datex2:NL-AMF-FLINTPLEIN",
        time=datetime(2025, 3, 14, 8, 15, tzinfo=UTC),
        vacant=123,
        capacity=None,
        open=True,
        full=False,
    )
    over = by_id["datex2:NL-AMF-STADHUISPLEIN"]
    assert over.vacant == 580 - 596  # derived from the occupied count: over capacity
    assert over.time == datetime(2025, 3, 14, 8, 16, tzinfo=UTC)  # the publication time
    assert over.full is True
    closed = by_id["datex2:NL-AMF-EEMPLEIN"]
    assert (closed.open, closed.full, closed.vacant) == (False, None, 650)
    assert closed.time == datetime(2025, 3, 14, 8, 55, 30, tzinfo=UTC)


def test_the_v3_status_without_capacities_leaves_derived_counts_unknown() -> None:
    by_id = {s.id: s for s in read("v3_status.xml").statuses}
    assert by_id["datex2:NL-AMF-FLINTPLEIN"].vacant == 123
    assert by_id["datex2:NL-AMF-STADHUISPLEIN"].vacant is None
    assert by_id["datex2:NL-AMF-EEMPLEIN"].vacant is None


def test_the_v2_table_and_status_give_three_car_parks_and_statuses() -> None:
    table = read("v2_table.xml")
    assert table.problems == []
    by_id = {c.id: c for c in table.car_parks}
    papendorp = by_id["datex2:NL-UT-PR-PAPENDORP"]
    assert (papendorp.name, papendorp.capacity) == ("P+R Papendorp", 430)
    assert (papendorp.lon, papendorp.lat) == (5.07962, 52.07105)  # pointByCoordinates first
    assert papendorp.operator == "Gemeente Utrecht"
    science = by_id["datex2:NL-UT-PR-SCIENCEPARK"]
    assert science.name == "P+R Utrecht Science Park"  # the Dutch value, listed second
    assert (science.lon, science.lat) == (5.17793, 52.08668)  # locationForDisplay
    assert by_id["datex2:NL-UT-JAARBEURS"].capacity == 2800

    status = read("v2_status.xml", capacities={c.id: c.capacity or 0 for c in table.car_parks})
    assert status.problems == []
    states = {s.id: s for s in status.statuses}
    assert states["datex2:NL-UT-PR-PAPENDORP"].vacant == 430 - 301
    assert states["datex2:NL-UT-PR-PAPENDORP"].time == datetime(2025, 3, 14, 8, 14, 30, tzinfo=UTC)
    negative = states["datex2:NL-UT-PR-SCIENCEPARK"]
    assert (negative.vacant, negative.full, negative.open) == (-4, True, True)
    closed = states["datex2:NL-UT-JAARBEURS"]
    assert (closed.vacant, closed.open, closed.full) == (None, False, None)


def test_a_table_and_status_in_one_document_derive_from_their_own_capacity() -> None:
    table = read("v2_table.xml")
    status = read("v2_status.xml")
    assert {s.id: s.vacant for s in status.statuses}["datex2:NL-UT-PR-PAPENDORP"] is None
    both = merge(table, status)
    assert len(both.car_parks) == 3
    assert len(both.statuses) == 3
    doc = (DATEX2 / "v3_table.xml").read_text()
    status_part = (DATEX2 / "v3_status.xml").read_text().split("?>", 1)[1]
    status_part = status_part.split("-->", 1)[1].replace("d2:payload", "payload")
    status_part = status_part.replace(
        "<payload ", '<payload xmlns="http://datex2.eu/schema/3/messageContainer" '
    )
    combined = doc.replace("<exchangeInformation", status_part + "<exchangeInformation", 1)
    batch = read_datex2(combined.encode())
    assert batch.problems == []
    assert {s.id: s.vacant for s in batch.statuses}["datex2:NL-AMF-STADHUISPLEIN"] == -16


# -- derived counts and states ---------------------------------------------------------------


def test_vacant_is_derived_from_the_percentage_and_the_status_capacity() -> None:
    batch = read_datex2(
        v2_status(
            ref("a")
            + "<parkingOccupancy><parkingOccupancy>25</parkingOccupancy></parkingOccupancy>",
            ref("b")
            + "<parkingNumberOfSpacesOverride>200</parkingNumberOfSpacesOverride>"
            + "<parkingOccupancy><parkingOccupancy>90</parkingOccupancy></parkingOccupancy>",
        ),
        capacities={"datex2:a": 400},
    )
    a, b = batch.statuses
    assert (a.vacant, a.capacity) == (300, None)
    assert (b.vacant, b.capacity) == (20, 200)


def test_site_states_map_to_open_and_full() -> None:
    states = ["spacesAvailable", "almostFull", "full", "fullAtEntrance", "closed", "statusUnknown"]
    batch = read_datex2(
        v2_status(
            *(ref(s) + f"<parkingSiteStatus>{s}</parkingSiteStatus>" for s in states),
            ref("opening") + "<parkingSiteOpeningStatus>openingTimesInForce"
            "</parkingSiteOpeningStatus><parkingSiteStatus>full</parkingSiteStatus>",
        )
    )
    seen = {s.id.removeprefix("datex2:"): (s.open, s.full) for s in batch.statuses}
    assert seen == {
        "spacesAvailable": (None, False),
        "almostFull": (None, False),
        "full": (None, True),
        "fullAtEntrance": (None, True),
        "closed": (False, None),
        "opening": (None, True),
    }
    assert batch.problems == [
        "parking record status 6 skipped: status of parking record statusUnknown has no "
        "occupancy and no opening or site status"
    ]


def test_a_status_without_origin_time_takes_the_publication_time_and_naive_is_utc() -> None:
    batch = read_datex2(
        v2_status(
            ref("a") + "<parkingSiteStatus>full</parkingSiteStatus>",
            publication_time="2025-03-14T09:00:00",
        )
    )
    assert batch.statuses[0].time == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


# -- hostile and broken input ----------------------------------------------------------------


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<d2LogicalModel><payloadPublication>&lol9;</payloadPublication></d2LogicalModel>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d2LogicalModel [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<d2LogicalModel><parkingTable><parkingRecord id="&secret;"/></parkingTable></d2LogicalModel>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE d2LogicalModel SYSTEM "http://127.0.0.1:9/evil.dtd">
<d2LogicalModel/>"""


@pytest.mark.parametrize("document", [BOMB, EXTERNAL, EXTERNAL_DTD])
def test_dtds_entity_expansion_and_external_entities_are_refused(document: bytes) -> None:
    with pytest.raises(FeedError, match="DTD"):
        read_datex2(document)


@pytest.mark.parametrize(
    "document",
    [b"", b"not xml at all", b"<d2LogicalModel>", b'{"ParkingFacilities": []}', b"\xff\xfe<a/>"],
)
def test_a_document_that_is_not_xml_is_a_feed_error(document: bytes) -> None:
    with pytest.raises(FeedError, match="not well-formed XML"):
        read_datex2(document)


def test_xml_that_is_not_a_parking_publication_is_a_feed_error() -> None:
    doc = (
        f'<d2LogicalModel xmlns="{V2}" xmlns:xsi="{XSI}"><payloadPublication '
        'xsi:type="MeasuredDataPublication"/></d2LogicalModel>'
    )
    with pytest.raises(FeedError, match="not a DATEX II parking publication"):
        read_datex2(doc.encode())


def test_a_document_over_the_bound_is_refused_before_parsing() -> None:
    data = (DATEX2 / "v2_table.xml").read_bytes()
    assert len(read_datex2(data, max_bytes=len(data)).car_parks) == 3
    with pytest.raises(FeedError, match="larger than"):
        read_datex2(data, max_bytes=len(data) - 1)


def test_deeply_nested_xml_does_not_crash() -> None:
    depth = 50_000
    doc = b"<parkingTable>" + b"<a>" * depth + b"</a>" * depth + b"</parkingTable>"
    assert read_datex2(doc) == FeedBatch([], [], [])


def test_records_without_ids_or_locations_are_reported_and_the_rest_read() -> None:
    batch = read_datex2(
        v2_table(
            f'<parkingRecord xsi:type="UrbanParkingSite">{POINT}</parkingRecord>',
            '<parkingRecord id="noloc"><parkingNumberOfSpaces>5</parkingNumberOfSpaces>'
            "</parkingRecord>",
            f'<parkingRecord id="bad"><parkingNumberOfSpaces>veel</parkingNumberOfSpaces>'
            f"{POINT}</parkingRecord>",
            f'<parkingRecord id="neg"><parkingNumberOfSpaces>-3</parkingNumberOfSpaces>'
            f"{POINT}</parkingRecord>",
            f'<parkingRecord id="ok">{POINT}</parkingRecord>',
            f'<parkingRecord id="ok">{POINT}</parkingRecord>',
            '<parkingRecord id="far"><parkingLocation><locationForDisplay><latitude>520</latitude>'
            "<longitude>5</longitude></locationForDisplay></parkingLocation></parkingRecord>",
        )
    )
    assert [(c.id, c.name, c.capacity) for c in batch.car_parks] == [("datex2:ok", "ok", None)]
    assert batch.problems == [
        "parking record 1 skipped: a parking record has no id",
        "parking record 2 skipped: parking record noloc has no usable location",
        "parking record 3 skipped: parking record bad: parkingNumberOfSpaces must be a number, "
        "not 'veel'",
        "parking record 4 skipped: parking record neg: parkingNumberOfSpaces must not be "
        "negative, not -3",
        "datex2:ok: listed twice; the first one was read",
        "parking record 7 skipped: parking record far has no usable location",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<parkingSiteStatus>full</parkingSiteStatus>",
            "a parking record status has no id",
        ),
        (
            ref("a") + "<parkingOccupancy><parkingNumberOfVacantSpaces>12,5"
            "</parkingNumberOfVacantSpaces></parkingOccupancy>",
            "parkingNumberOfVacantSpaces must be a number, not '12,5'",
        ),
        (
            ref("a") + "<parkingOccupancy><parkingNumberOfOccupiedSpaces>1e12"
            "</parkingNumberOfOccupiedSpaces></parkingOccupancy>",
            "parkingNumberOfOccupiedSpaces is out of range",
        ),
        (
            ref("a") + "<parkingOccupancy><parkingOccupancy>-7</parkingOccupancy>"
            "</parkingOccupancy>",
            "parkingOccupancy is out of range",
        ),
        (
            ref("a") + "<parkingStatusOriginTime>14-03-2025 08:15</parkingStatusOriginTime>"
            "<parkingSiteStatus>full</parkingSiteStatus>",
            "parkingStatusOriginTime is not an ISO 8601 time",
        ),
        (
            ref("a") + "<parkingStatusOriginTime>1899-12-31T23:00:00Z</parkingStatusOriginTime>"
            "<parkingSiteStatus>full</parkingSiteStatus>",
            "parkingStatusOriginTime is out of range",
        ),
        (
            ref("a") + "<parkingStatusOriginTime>2250-01-01T00:00:00+01:00"
            "</parkingStatusOriginTime><parkingSiteStatus>full</parkingSiteStatus>",
            "parkingStatusOriginTime is out of range",
        ),
        (
            ref("a") + "<parkingStatusOriginTime>9999-12-31T23:59:59-23:59"
            "</parkingStatusOriginTime><parkingSiteStatus>full</parkingSiteStatus>",
            "parkingStatusOriginTime is out of range",
        ),
    ],
)
def test_bad_status_values_are_reported_per_status(body: str, message: str) -> None:
    good = ref("good") + "<parkingSiteStatus>full</parkingSiteStatus>"
    batch = read_datex2(v2_status(body, good))
    assert [s.id for s in batch.statuses] == ["datex2:good"]
    assert len(batch.problems) == 1
    assert batch.problems[0].startswith("parking record status 1 skipped: ")
    assert message in batch.problems[0]


def test_a_status_without_any_time_is_reported() -> None:
    doc = (
        f'<d2LogicalModel xmlns="{V2}" xmlns:xsi="{XSI}">'
        '<payloadPublication xsi:type="ParkingStatusPublication">'
        f"<parkingRecordStatus>{ref('a')}<parkingSiteStatus>full</parkingSiteStatus>"
        "</parkingRecordStatus></payloadPublication></d2LogicalModel>"
    )
    batch = read_datex2(doc.encode())
    assert batch.statuses == []
    assert batch.problems == [
        "parking record status 1 skipped: status of parking record a: publicationTime is missing"
    ]


def test_namespace_prefixes_do_not_matter() -> None:
    plain = read("v3_table.xml")
    text = (DATEX2 / "v3_table.xml").read_text()
    renamed = text.replace("prk:", "p:").replace("xmlns:prk=", "xmlns:p=")
    renamed = renamed.replace("loc:", "l:").replace("xmlns:loc=", "xmlns:l=")
    assert read_datex2(renamed.encode()) == plain


# -- any tree of DATEX II parking elements ---------------------------------------------------

_NAMES = [
    "parkingTable",
    "parkingRecord",
    "parkingName",
    "values",
    "value",
    "parkingNumberOfSpaces",
    "parkingLocation",
    "pointByCoordinates",
    "pointCoordinates",
    "locationForDisplay",
    "latitude",
    "longitude",
    "exterior",
    "posList",
    "operator",
    "payloadPublication",
    "publicationTime",
    "parkingRecordStatus",
    "parkingRecordReference",
    "parkingStatusOriginTime",
    "parkingOccupancy",
    "parkingNumberOfVacantSpaces",
    "parkingNumberOfOccupiedSpaces",
    "parkingNumberOfSpacesOverride",
    "parkingSiteStatus",
    "parkingSiteOpeningStatus",
]
_TEXTS = st.one_of(
    st.sampled_from(
        [
            "",
            "12",
            "-4",
            "52.1",
            "5.1",
            "1e400",
            "nan",
            "full",
            "closed",
            "open",
            "x" * 300,
            "52.1 5.1 52.2 5.1 52.2 5.2",
            "2025-03-14T08:15:00Z",
            "9999-12-31T23:59:59-23:59",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8),
)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> Element:
    element = Element(f"{{{V3}/parking}}{draw(st.sampled_from(_NAMES))}")
    if draw(st.booleans()):
        element.set("id", draw(_TEXTS))
    if draw(st.booleans()):
        element.text = draw(_TEXTS)
    if depth < 3:
        for child in draw(st.lists(_element(depth + 1), max_size=3)):
            element.append(child)
    return element


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(root=_element())
def test_any_tree_of_parking_elements_gives_a_batch_or_a_feed_error(root: Element) -> None:
    data = tostring(root)
    try:
        batch = read_datex2(data, capacities={"datex2:12": 100})
    except FeedError:
        return
    assert all(c.id.startswith("datex2:") for c in batch.car_parks)
    assert all(s.time.tzinfo is UTC for s in batch.statuses)


_SAMPLE_ROOTS = [
    fromstring((DATEX2 / name).read_bytes())
    for name in ("v3_table.xml", "v3_status.xml", "v2_table.xml", "v2_status.xml")
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_samples_with_any_text_replaced_give_a_batch_or_a_feed_error(data: st.DataObject) -> None:
    root = copy.deepcopy(data.draw(st.sampled_from(_SAMPLE_ROOTS)))
    elements = list(root.iter())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        element = data.draw(st.sampled_from(elements))
        if data.draw(st.booleans()):
            element.text = data.draw(_TEXTS)
        else:
            element.set("id", data.draw(_TEXTS))
    try:
        batch = read_datex2(tostring(root))
    except FeedError:
        return
    assert len(batch.car_parks) + len(batch.statuses) + len(batch.problems) >= 1
