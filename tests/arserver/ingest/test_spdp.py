"""SPDP v2 reader: the samples, the shapes real feeds use, and hostile or broken input."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arserver.errors import InputError
from arserver.ingest.feed_fetch import fetch
from arserver.ingest.parking_feeds import MAX_PROBLEMS, CarParkStatus, FeedError
from arserver.ingest.spdp import (
    parse_spdp_dynamic,
    parse_spdp_index,
    parse_spdp_static,
    read_spdp,
)

SPDP = Path(__file__).resolve().parents[2] / "data" / "parking" / "spdp"
SPRINGWEG = "3f1c2a9e-5b7d-4e21-9a63-0c8e7d54b1a2"
VREDENBURG = "8a0d6b3c-1e4f-4c5a-b7d2-9f3e1a6c8b04"
WESTRAVEN = "c5e27f41-9d3b-4a86-8e1f-2b7a4d0c9e63"


def sample(kind: str, ident: str) -> Any:
    return json.loads((SPDP / kind / f"{ident}.json").read_text())


class Documents:
    """A ``fetch`` over in-memory documents, recording what was asked."""

    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.asked: list[str] = []

    def __call__(self, source: str) -> bytes:
        self.asked.append(source)
        if source not in self.docs:
            raise FeedError(f"feed file not found: {source}")
        doc = self.docs[source]
        return doc if isinstance(doc, bytes) else json.dumps(doc).encode()


def index(*entries: Any) -> dict[str, Any]:
    return {"ParkingFacilities": list(entries)}


def dynamic(**status: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"vacantSpaces": 10, "lastUpdated": 1741940100}
    base.update(status)
    return {
        "parkingFacilityDynamicInformation": {"identifier": "abc", "facilityActualStatus": base}
    }


# -- the samples -----------------------------------------------------------------------------


def test_the_sample_index_gives_three_car_parks_and_their_statuses() -> None:
    batch = read_spdp(str(SPDP / "index.json"), fetch)
    assert batch.problems == []
    by_id = {c.id: c for c in batch.car_parks}
    assert set(by_id) == {f"spdp:{i}" for i in (SPRINGWEG, VREDENBURG, WESTRAVEN)}

    springweg = by_id[f"spdp:{SPRINGWEG}"]
    assert springweg.name == "Parkeergarage Springweg"
    assert (springweg.lon, springweg.lat) == (5.11722, 52.08761)  # the vehicle entrance
    assert springweg.capacity == 525
    assert springweg.operator == "Gemeente Utrecht"
    assert springweg.area is None
    assert springweg.source == "spdp"

    vredenburg = by_id[f"spdp:{VREDENBURG}"]
    assert (vredenburg.lon, vredenburg.lat) == (5.11385, 52.09241)  # locationForDisplay
    assert vredenburg.capacity == 860  # the specification in force, not the older one
    assert vredenburg.operator == "Q-Park Nederland"

    westraven = by_id[f"spdp:{WESTRAVEN}"]
    assert westraven.area is not None
    assert westraven.area[0] == westraven.area[-1] == [5.10630, 52.06390]
    assert (westraven.lon, westraven.lat) == pytest.approx((5.1077, 52.0646))  # area centre
    assert westraven.capacity == 640


def test_the_sample_statuses_keep_counts_as_published() -> None:
    batch = read_spdp(str(SPDP / "index.json"), fetch)
    by_id = {s.id: s for s in batch.statuses}
    assert by_id[f"spdp:{SPRINGWEG}"] == CarParkStatus(
        id=f"spdp:{SPRINGWEG}",
        time=datetime(2025, 3, 14, 8, 15, tzinfo=UTC),
        vacant=-3,
        capacity=525,
        open=True,
        full=True,
    )
    assert by_id[f"spdp:{VREDENBURG}"].vacant == 312
    assert by_id[f"spdp:{VREDENBURG}"].time == datetime(2025, 3, 14, 8, 14, 30, tzinfo=UTC)
    closed = by_id[f"spdp:{WESTRAVEN}"]
    assert (closed.open, closed.full, closed.vacant, closed.capacity) == (False, False, 0, 640)
    assert all(s.time.tzinfo is UTC for s in batch.statuses)


def test_the_index_lists_identifiers_names_and_relative_urls() -> None:
    entries = parse_spdp_index(json.loads((SPDP / "index.json").read_text()))
    assert entries[0] == (
        SPRINGWEG,
        "Parkeergarage Springweg",
        f"static/{SPRINGWEG}.json",
        f"dynamic/{SPRINGWEG}.json",
    )
    assert len(entries) == 3


def test_a_single_static_or_dynamic_document_is_recognised() -> None:
    static = read_spdp(str(SPDP / "static" / f"{VREDENBURG}.json"), fetch)
    assert [c.id for c in static.car_parks] == [f"spdp:{VREDENBURG}"]
    assert static.statuses == []
    dyn = read_spdp(str(SPDP / "dynamic" / f"{VREDENBURG}.json"), fetch)
    assert [s.vacant for s in dyn.statuses] == [312]
    assert dyn.car_parks == []


# -- shapes of real feeds --------------------------------------------------------------------


def test_urls_resolve_against_an_http_index_and_absolute_ones_are_kept() -> None:
    docs = Documents(
        {
            "https://feeds.example.nl/spdp/v2/": index(
                {"identifier": "a", "staticDataUrl": "static/a"},
                {"identifier": "b", "dynamicDataUrl": "https://other.example.nl/dyn/b"},
            ),
            "https://feeds.example.nl/spdp/v2/static/a": sample("static", VREDENBURG),
            "https://other.example.nl/dyn/b": dynamic(),
        }
    )
    batch = read_spdp("https://feeds.example.nl/spdp/v2/", docs)
    assert batch.problems == []
    assert [c.id for c in batch.car_parks] == [f"spdp:{VREDENBURG}"]
    assert [s.id for s in batch.statuses] == ["spdp:abc"]


def test_v1_style_uuid_keys_and_numeric_strings_are_accepted() -> None:
    doc = {
        "parkingFacilityInformation": {
            "uuid": "old-1",
            "name": "P+R Leidsche Rijn",
            "locationForDisplay": {"latitude": "52.0950", "longitude": "5.0530"},
            "specifications": [{"capacity": "350"}],
            "operator": "Gemeente Utrecht",
        }
    }
    info = parse_spdp_static(doc)
    assert (info.id, info.lon, info.lat, info.capacity, info.operator) == (
        "spdp:old-1",
        5.053,
        52.095,
        350,
        "Gemeente Utrecht",
    )
    status = parse_spdp_dynamic(dynamic(vacantSpaces="17", full="false", open="true"))
    assert (status.vacant, status.full, status.open) == (17, False, True)
    assert parse_spdp_index([{"uuid": "u1", "staticDataUrl": "s"}]) == [("u1", "u1", "s", None)]


def test_missing_optional_fields_become_none() -> None:
    status = parse_spdp_dynamic(
        {"parkingFacilityDynamicInformation": {"facilityActualStatus": {"lastUpdated": 1.7e9}}},
        default_id="from-index",
    )
    assert status.id == "spdp:from-index"
    assert (status.vacant, status.capacity, status.open, status.full) == (None, None, None, None)
    info = parse_spdp_static(
        {"parkingFacilityInformation": {"locationForDisplay": {"latitude": 52, "longitude": 5}}},
        default_id="x",
    )
    assert (info.name, info.capacity, info.operator, info.area) == ("x", None, None, None)


def test_last_updated_in_milliseconds_is_read_as_milliseconds() -> None:
    status = parse_spdp_dynamic(dynamic(lastUpdated=1741940100123))
    assert status.time == datetime(2025, 3, 14, 8, 15, 0, 123000, tzinfo=UTC)


def test_a_placeholder_or_out_of_range_position_falls_back_to_the_next_one() -> None:
    doc = copy.deepcopy(sample("static", SPRINGWEG))
    info_doc = doc["parkingFacilityInformation"]
    info_doc["accessPoints"][1]["accessPointLocation"] = [{"latitude": 0, "longitude": 0}]
    info_doc["locationForDisplay"] = {"latitude": 5208737, "longitude": 511790}
    info = parse_spdp_static(doc)
    assert (info.lon, info.lat) == (5.11853, 52.08712)  # the pedestrian access point


# -- hostile and broken input ----------------------------------------------------------------


def test_a_document_that_is_not_json_is_a_feed_error(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_bytes(b"<html>503 Service Unavailable</html>")
    with pytest.raises(FeedError, match="not valid JSON"):
        read_spdp(str(path), fetch)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FeedError, match="not valid JSON"):
        read_spdp(str(path), fetch)


def test_deeply_nested_json_is_a_feed_error() -> None:
    docs = Documents({"feed": b"[" * 100_000 + b"]" * 100_000})
    with pytest.raises(FeedError, match="not valid JSON"):
        read_spdp("feed", docs)


def test_json_of_the_wrong_shape_is_a_feed_error() -> None:
    for doc in ([1, 2], {"type": "FeatureCollection"}, "text", None):
        with pytest.raises(FeedError, match="not an SPDP document"):
            read_spdp("feed", Documents({"feed": doc}))
    with pytest.raises(FeedError, match="must have a list"):
        read_spdp("feed", Documents({"feed": {"ParkingFacilities": {"a": 1}}}))
    with pytest.raises(FeedError, match="must be a JSON object"):
        parse_spdp_static({"parkingFacilityInformation": [1]})
    with pytest.raises(FeedError, match="facility a: facilityActualStatus is missing"):
        parse_spdp_dynamic({"parkingFacilityDynamicInformation": {"identifier": "a"}})
    with pytest.raises(FeedError, match="facilityActualStatus must be a JSON object, not list"):
        parse_spdp_dynamic(
            dynamic()
            | {"parkingFacilityDynamicInformation": {"identifier": "a", "facilityActualStatus": []}}
        )
    with pytest.raises(FeedError, match="parkingFacilityInformation is missing"):
        parse_spdp_static({"parkingFacilityDynamicInformation": {}})


def test_feed_errors_are_input_errors() -> None:
    assert issubclass(FeedError, InputError)


def test_index_entries_without_identifiers_are_reported_and_the_rest_read() -> None:
    docs = Documents(
        {
            "idx": index(
                {"name": "no id", "staticDataUrl": "s0"},
                "not an object",
                {"identifier": "   ", "staticDataUrl": "s0"},
                {"identifier": "ok", "dynamicDataUrl": "d1"},
                {"identifier": "ok", "dynamicDataUrl": "d1"},
                {"identifier": "nothing"},
            ),
            "d1": dynamic(),
        }
    )
    batch = read_spdp("idx", docs)
    assert [s.id for s in batch.statuses] == ["spdp:abc"]
    assert batch.problems == [
        "index entry 1 has no identifier",
        "index entry 2 must be a JSON object, not str",
        "index entry 3 has no identifier",
        "facility ok: listed twice in the index; the first one was read",
        "facility nothing: no staticDataUrl or dynamicDataUrl",
    ]
    with pytest.raises(FeedError, match="index entry 1 has no identifier"):
        parse_spdp_index(index({"name": "no id"}))


def test_a_facility_whose_documents_fail_is_skipped_with_a_reason() -> None:
    docs = Documents(
        {
            "idx": index(
                {"identifier": "a", "staticDataUrl": "missing", "dynamicDataUrl": "bad"},
                {"identifier": "b", "staticDataUrl": "noloc", "dynamicDataUrl": "nan"},
                {"identifier": "c", "dynamicDataUrl": "good"},
            ),
            "bad": b"{not json",
            "noloc": {"parkingFacilityInformation": {"identifier": "b", "name": "B"}},
            "nan": dynamic(vacantSpaces="veel"),
            "good": dynamic(),
        }
    )
    batch = read_spdp("idx", docs)
    assert batch.car_parks == []
    assert [s.vacant for s in batch.statuses] == [10]
    assert batch.problems == [
        "facility a: static data skipped: feed file not found: missing",
        "facility a: dynamic data skipped: its dynamic document is not valid JSON",
        "facility b: static data skipped: facility b has no usable location",
        "facility b: dynamic data skipped: facility abc: vacantSpaces must be a number, not 'veel'",
    ]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"vacantSpaces": "12a"}, "vacantSpaces must be a number"),
        ({"vacantSpaces": 12.5}, "vacantSpaces must be a whole number"),
        ({"vacantSpaces": True}, "vacantSpaces must be a number"),
        ({"vacantSpaces": 10**30}, "vacantSpaces is out of range"),
        ({"parkingCapacity": -5}, "parkingCapacity must not be negative"),
        ({"full": "yes"}, "full must be true or false"),
        ({"lastUpdated": None}, "has no lastUpdated"),
        ({"lastUpdated": "gisteren"}, "lastUpdated must be a number"),
        ({"lastUpdated": -1}, "lastUpdated is out of range"),
        ({"lastUpdated": 1e300}, "lastUpdated is out of range"),
        ({"lastUpdated": 4102444800}, "lastUpdated is out of range"),  # 2100-01-01
        ({"lastUpdated": float("nan")}, "lastUpdated must be a finite number"),
    ],
)
def test_bad_dynamic_values_are_feed_errors(status: dict[str, Any], message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_spdp_dynamic(dynamic(**status))


def test_bad_static_values_are_feed_errors() -> None:
    doc = copy.deepcopy(sample("static", VREDENBURG))
    doc["parkingFacilityInformation"]["specifications"][1]["capacity"] = "groot"
    with pytest.raises(FeedError, match="capacity must be a number"):
        parse_spdp_static(doc)
    doc["parkingFacilityInformation"]["identifier"] = "x" * 201
    with pytest.raises(FeedError, match="longer than 200"):
        parse_spdp_static(doc)


def test_problems_are_bounded_and_counted() -> None:
    entries = [{"name": f"no id {i}"} for i in range(MAX_PROBLEMS + 25)]
    batch = read_spdp("idx", Documents({"idx": index(*entries)}))
    assert len(batch.problems) == MAX_PROBLEMS + 1
    assert batch.problems[-1] == "... and 25 more problems"


def test_an_index_is_read_only_up_to_its_bound() -> None:
    entries = [{"identifier": f"f{i}", "dynamicDataUrl": "d"} for i in range(5)]
    docs = Documents({"idx": index(*entries), "d": dynamic()})
    batch = read_spdp("idx", docs, max_facilities=2)
    assert len(batch.statuses) == 2
    assert batch.problems == ["the index lists 5 facilities; only the first 2 were read"]
    assert docs.asked == ["idx", "d", "d"]


def test_a_remote_index_cannot_make_the_reader_open_local_files() -> None:
    docs = Documents(
        {"https://x.nl/idx": index({"identifier": "a", "staticDataUrl": "file:///etc/passwd"})}
    )
    batch = read_spdp("https://x.nl/idx", docs)
    assert docs.asked == ["https://x.nl/idx"]
    assert batch.problems == [
        "facility a: static data skipped: a feed at an http(s) URL may only refer to http(s) "
        "URLs: 'file:///etc/passwd'"
    ]


# -- any JSON at all -------------------------------------------------------------------------

_KEYS = [
    "parkingFacilityInformation",
    "parkingFacilityDynamicInformation",
    "facilityActualStatus",
    "identifier",
    "uuid",
    "name",
    "operator",
    "specifications",
    "capacity",
    "areaGeometry",
    "type",
    "coordinates",
    "accessPoints",
    "accessPointLocation",
    "isVehicleEntrance",
    "locationForDisplay",
    "latitude",
    "longitude",
    "validityStartOfPeriod",
    "vacantSpaces",
    "parkingCapacity",
    "full",
    "open",
    "lastUpdated",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "52.1", "5", "abc", "Polygon", "MultiPolygon", "true", "1e400"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_JSON)
def test_any_json_gives_a_record_or_a_feed_error(doc: Any) -> None:
    for parse in (parse_spdp_static, parse_spdp_dynamic, parse_spdp_index):
        with contextlib.suppress(FeedError):
            parse(doc)
    wrapped = {"parkingFacilityInformation": doc, "parkingFacilityDynamicInformation": doc}
    for parse in (parse_spdp_static, parse_spdp_dynamic):
        with contextlib.suppress(FeedError):
            parse(wrapped)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found += _paths(item, (*prefix, number))
    return found


_SAMPLES = [sample(k, i) for k in ("static", "dynamic") for i in (SPRINGWEG, WESTRAVEN)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_samples_with_any_value_replaced_give_a_record_or_a_feed_error(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(_SAMPLES)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(doc)[1:]))
        target = doc
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = data.draw(_JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    for parse in (parse_spdp_static, parse_spdp_dynamic):
        with contextlib.suppress(FeedError):
            parse(doc)
