"""The read side of the Filtering Extension (OGC 18-088, section 9.3, as the OGC test suite
checks it): every query option, their priority order, the comparison, logical and arithmetic
operators, the string, date, math and geospatial functions, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.arserver.sta.seed import Sta, ids


def stream_of(sta: Sta, sensor: str, kind: str) -> str:
    streams = sta.get(
        f"Datastreams?$filter=properties/sensor eq '{sensor}' and properties/kind eq '{kind}'"
    )
    (stream,) = streams["value"]
    return str(stream["@iot.selfLink"])


def results(sta: Sta, url: str) -> list[float]:
    return [o["result"] for o in sta.get(url)["value"]]


def test_the_options_apply_in_the_order_filter_count_orderby_skip_top(sta: Sta) -> None:
    """The suite's own case: results 1..8, ``result gt '3'`` keeps 5, counted before paging."""
    stream = stream_of(sta, "ets-results", "count")
    page = sta.get(
        f"{stream}/Observations?$count=true&$top=1&$skip=2&$orderby=phenomenonTime asc"
        "&$filter=result gt '3'"
    )
    assert page["@iot.count"] == 5
    assert [o["result"] for o in page["value"]] == [6.0]
    following = sta.get(page["@iot.nextLink"])
    assert following["@iot.count"] == 5  # of the whole filtered collection, on every page
    assert [o["result"] for o in following["value"]] == [7.0]


def test_top_skip_and_next_links_walk_a_collection_once(sta: Sta) -> None:
    stream = stream_of(sta, "air-dam", "no2")
    seen: list[float] = []
    page = sta.get(f"{stream}/Observations?$top=3&$orderby=result")
    while True:
        seen += [o["result"] for o in page["value"]]
        if "@iot.nextLink" not in page:
            break
        assert "$top=3" in page["@iot.nextLink"]
        page = sta.get(page["@iot.nextLink"])
    assert seen == [20.0 + h for h in range(10)]
    assert "@iot.nextLink" not in sta.get(f"{stream}/Observations?$top=10")
    assert sta.get(f"{stream}/Observations?$skip=50")["value"] == []


@pytest.mark.parametrize(
    "order",
    ["phenomenonTime", "phenomenonTime desc", "result desc,phenomenonTime", "id desc",
     "Datastream/name,id"],  # the last sorts through a path: its pages are skipped to
)  # fmt: skip
def test_next_links_walk_every_observation_once_whatever_the_sort(sta: Sta, order: str) -> None:
    """Ties (readings of two datastreams at one instant), raw readings and hourly
    aggregates together: a walk in pages of 3 sees what one big page holds, in its order."""
    everything = sta.get(f"Observations?$orderby={order}&$top=1000")["value"]
    walked: list[int] = []
    page = sta.get(f"Observations?$orderby={order}&$top=3")
    while True:
        walked += [o["@iot.id"] for o in page["value"]]
        if "@iot.nextLink" not in page:
            break
        page = sta.get(page["@iot.nextLink"])
    assert walked == [o["@iot.id"] for o in everything]
    assert len(walked) == len(set(walked)) == 39  # 37 raw readings, 2 hourly aggregates


@pytest.mark.parametrize(
    "token",
    ["garbage!", "W10", "WzEsMiwzLDRd", "W1sidCIsIm5vdCBhIHRpbWUiXSwxXQ", "W251bGwsMV0",
     "x" * 3000],
)  # fmt: skip
def test_a_forged_skiptoken_is_refused(sta: Sta, token: str) -> None:
    assert sta.status(f"Observations?$orderby=phenomenonTime&$skiptoken={token}") == 400


def test_orderby_sorts_ascending_descending_and_by_several_keys(sta: Sta) -> None:
    stream = stream_of(sta, "air-dam", "pm25")
    assert results(sta, f"{stream}/Observations?$orderby=result desc&$top=3") == [14.0, 13.0, 12.0]
    names = [
        d["name"] for d in sta.get("Datastreams?$orderby=properties/kind desc,name asc")["value"]
    ]
    assert names == ["Air quality, Dam: pm25", "Bike courier PM: pm25", "Air quality, Dam: no2",
                     "Noise, Leidseplein: laeq", "Test suite results: count"]  # fmt: skip
    by_thing = sta.get("Observations?$orderby=Datastream/Thing/name,phenomenonTime&$top=1")
    assert by_thing["value"][0]["result"] == 20.0  # "Air quality, Dam" first, no2 before pm25 by id


def test_select_returns_only_the_named_properties(sta: Sta) -> None:
    things = sta.get("Things?$select=name,id")["value"]
    assert all(set(t) == {"@iot.id", "@iot.selfLink", "name"} for t in things)
    just_names = sta.get("Things?$select=name")["value"]
    assert all(set(t) == {"name"} for t in just_names)
    links = sta.get("Things?$select=Datastreams")["value"][0]
    assert set(links) == {"Datastreams@iot.navigationLink"}
    assert sta.status("Things?$select=colour") == 400


def test_count_is_that_of_the_filtered_collection(sta: Sta) -> None:
    assert sta.get("Things?$count=true")["@iot.count"] == 4
    assert (
        sta.get("Things?$count=true&$filter=properties/owner eq 'Gemeente Amsterdam'")["@iot.count"]
        == 2
    )
    assert "@iot.count" not in sta.get("Things?$count=false")
    assert sta.status("Things?$count=maybe") == 400


def test_expand_reads_related_entities_with_their_own_options(sta: Sta) -> None:
    thing = sta.get(
        "Things?$filter=properties/sensor eq 'air-dam'&$expand=Locations,Datastreams($orderby=name;"
        "$select=name,id;$expand=Observations($filter=result ge 25;$orderby=result desc;"
        "$top=2;$count=true))"
    )["value"][0]
    assert thing["Locations"][0]["location"]["type"] == "Point"
    no2, pm25 = thing["Datastreams"]
    assert set(no2) >= {"@iot.id", "name", "Observations"}
    assert "unitOfMeasurement" not in no2
    assert [o["result"] for o in no2["Observations"]] == [29.0, 28.0]
    assert no2["Observations@iot.count"] == 5
    following = sta.get(no2["Observations@iot.nextLink"])
    assert [o["result"] for o in following["value"]] == [27.0, 26.0]
    assert [o["result"] for o in pm25["Observations"]] == []
    assert pm25["Observations@iot.count"] == 0
    observation = sta.get("Observations?$top=1&$expand=Datastream($expand=Thing),FeatureOfInterest")
    first = observation["value"][0]
    assert first["Datastream"]["Thing"]["name"]
    assert first["FeatureOfInterest"]["feature"]["type"] == "Point"
    assert sta.get("Things?$expand=Datastreams,Datastreams/Observations($top=1)")["value"][0][
        "Datastreams"
    ][0]["Observations"]
    assert sta.status("Things?$expand=Colours") == 400


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("result eq 25", [25.0]), ("result ne 20 and result lt 23", [21.0, 22.0]),
        ("result gt 27", [28.0, 29.0]), ("result ge 28.5", [29.0]), ("result le 20", [20.0]),
        ("result lt 21 or result gt 28", [20.0, 29.0]), ("not (result lt 29)", [29.0]),
        ("result add 5 eq 30", [25.0]), ("result sub 5 eq 15", [20.0]),
        ("result mul 2 eq 44", [22.0]), ("result div 2 eq 12", [24.0]),
        ("result mod 7 eq 0", [21.0, 28.0]), ("-result gt -21", [20.0]),
        ("result in (21, 23, 99)", [21.0, 23.0]),
        ("round(result div 10) eq 3", [25.0, 26.0, 27.0, 28.0, 29.0]),
        ("floor(result div 10) eq 2", [20.0 + h for h in range(10)]),
        ("ceiling(result div 10) eq 2", [20.0]),
        ("phenomenonTime ge 2026-11-30T08:00:00Z", [28.0, 29.0]),
        ("phenomenonTime lt '2026-11-30T01:30:00%2B01:00'", [20.0]),  # + encoded
        ("resultTime eq 2026-11-30T03:00:00.000Z", [23.0]),
        ("year(phenomenonTime) eq 2026 and month(phenomenonTime) eq 11 and "
         "day(phenomenonTime) eq 30 and hour(phenomenonTime) eq 4", [24.0]),
        ("minute(phenomenonTime) eq 0 and second(phenomenonTime) eq 0 and "
         "hour(phenomenonTime) lt 1", [20.0]),
        ("date(phenomenonTime) eq 2026-11-30 and hour(phenomenonTime) gt 8", [29.0]),
        ("phenomenonTime lt now() and phenomenonTime gt mindatetime() and "
         "hour(phenomenonTime) eq 9", [29.0]),
        ("fractionalseconds(phenomenonTime) eq 0 and totaloffsetminutes(phenomenonTime) eq 0 "
         "and result lt 21", [20.0]),
    ],
)  # fmt: skip
def test_comparisons_arithmetic_and_date_functions(
    sta: Sta, condition: str, expected: list[float]
) -> None:
    stream = stream_of(sta, "air-dam", "no2")
    assert results(sta, f"{stream}/Observations?$orderby=result&$filter={condition}") == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("substringof('Dam', name)", ["air-dam"]),
        ("contains(name, 'Leidse')", ["noise-leidseplein"]),
        ("startswith(name, 'Bike')", ["bike-pm"]), ("endswith(name, 'results')", ["ets-results"]),
        ("contains(name, 'dam')", []),  # case-sensitive
        ("length(name) eq 16", ["air-dam"]), ("indexof(name, 'courier') eq 5", ["bike-pm"]),
        ("substring(name, 5) eq 'courier PM'", ["bike-pm"]),
        ("substring(name, 0, 4) eq 'Test'", ["ets-results"]),
        ("tolower(name) eq 'noise, leidseplein'", ["noise-leidseplein"]),
        ("toupper(name) eq 'BIKE COURIER PM'", ["bike-pm"]),
        ("trim(name) eq name and startswith(name, 'A')", ["air-dam"]),
        ("concat(concat(name, ' / '), properties/owner) eq "
         "'Bike courier PM / RIVM Samen Meten'", ["bike-pm"]),
        ("properties/sensor_type eq 'chemical'", ["air-dam"]),
        ("properties/owner eq null", ["ets-results"]),
        ("properties/owner ne null and not startswith(properties/owner, 'Gemeente')", ["bike-pm"]),
        ("name eq 'x'' OR 1=1 --'", []),
    ],
)  # fmt: skip
def test_string_functions_on_things(sta: Sta, condition: str, expected: list[str]) -> None:
    found = sta.get(f"Things?$orderby=id&$filter={condition}")["value"]
    assert sorted(t["properties"]["sensor"] for t in found) == sorted(expected)


DAM = "POLYGON((4.89 52.37, 4.90 52.37, 4.90 52.38, 4.89 52.38, 4.89 52.37))"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (f"geo.intersects(location, geography'{DAM}')", ["air-dam", "bike-pm"]),
        (f"st_intersects(location, geography'{DAM}')", ["air-dam", "bike-pm"]),
        (f"st_within(location, geography'{DAM}')", ["air-dam"]),
        (f"st_contains(location, geography'{DAM}')", ["bike-pm"]),
        (f"st_disjoint(location, geography'{DAM}')", ["noise-leidseplein", "ets-results"]),
        ("st_overlaps(location, geography'POLYGON((4.92 52.38, 5 52.38, 5 52.5, 4.92 52.5, "
         "4.92 52.38))')", ["bike-pm"]),
        ("st_equals(location, geography'POINT(4.9 52.36)')", ["ets-results"]),
        ("st_touches(location, geography'LINESTRING(4.9 52.36, 4.95 52.36)')", ["ets-results"]),
        ("st_crosses(geography'LINESTRING(4.80 52.37, 4.90 52.37)', location)", ["bike-pm"]),
        ("st_relate(location, geography'POINT(4.9 52.36)', 'T*F**FFF*')", ["ets-results"]),
        ("geo.distance(location, geography'POINT(4.8930 52.3740)') lt 20", ["bike-pm"]),  # inside
        ("geo.distance(location, geography'POINT(4.8930 52.3740)') gt 90 and "
         "geo.distance(location, geography'POINT(4.8930 52.3740)') lt 200", ["air-dam"]),
        ("geo.length(location) eq 0 and location/type eq 'Polygon'", ["bike-pm"]),
    ],
)  # fmt: skip
def test_geospatial_functions_on_locations(sta: Sta, condition: str, expected: list[str]) -> None:
    found = sta.get(f"Locations?$expand=Things&$filter=id gt 0 and ({condition})")["value"]
    assert sorted(loc["Things"][0]["properties"]["sensor"] for loc in found) == sorted(expected)


def test_distance_is_in_metres_on_both_backends(sta: Sta) -> None:
    """The Dam sensor lies 0.0009 degrees of latitude (about 100 m) south of the point."""
    near = "geo.distance(location, geography'POINT(4.8930 52.3740)')"
    assert len(sta.get(f"Locations?$filter={near} gt 95 and {near} lt 105")["value"]) == 1
    nearest = sta.get("Locations?$filter=id lt 0&$orderby=id desc&$top=1")["value"][0]
    assert nearest["location"]["coordinates"] == [4.88, 52.36]  # the bike's first position


def test_observed_area_filters_datastreams(sta: Sta) -> None:
    found = sta.get(f"Datastreams?$filter=st_within(observedArea, geography'{DAM}')")["value"]
    assert sorted(d["properties"]["kind"] for d in found) == ["no2", "pm25"]


def test_filters_go_through_single_entities(sta: Sta) -> None:
    stream = stream_of(sta, "air-dam", "no2").rsplit("(", 1)[1].rstrip(")")
    observed = sta.get(
        f"Observations?$count=true&$top=0&$filter=Datastream/@iot.id eq {stream}"
        if False
        else f"Observations?$count=true&$top=0&$filter=Datastream/id eq {stream}"
    )
    assert observed["@iot.count"] == 10
    by_owner = sta.get(
        "Observations?$count=true&$top=0"
        "&$filter=Datastream/Thing/properties/owner eq 'RIVM Samen Meten'"
    )
    assert by_owner["@iot.count"] == 4
    assert sta.status("Things?$filter=Datastreams/name eq 'x'") == 400  # a collection


def test_ids_list_entities(sta: Sta) -> None:
    assert ids(sta.get("Things?$orderby=id")) == sorted(ids(sta.get("Things")))
