"""Query options and resource paths parsed without a database: nested expansions merged, the
SensorThings functions known, limits on size and depth enforced before anything walks a tree."""

from __future__ import annotations

import pytest

from arserver.errors import NotFoundError, QueryError
from arserver.odata.options import (
    MAX_FILTER_DEPTH,
    OrderKey,
    bool_chain,
    parse_filter,
    parse_options,
)
from arserver.odata.paths import NO_ID, Segment, parse_path


def test_nested_expansions_carry_their_own_options_and_merge() -> None:
    expand = (
        "Datastreams($top=10;$select=name;$expand=Observations($orderby=phenomenonTime desc;"
        "$top=100)),Datastreams/Sensor,Locations"
    )
    options = parse_options({"$expand": expand, "$top": "200", "$count": "false"})
    assert (options.top, options.count) == (200, False)
    datastreams, locations = options.expand
    assert (datastreams.name, locations.name) == ("Datastreams", "Locations")
    assert datastreams.options.top == 10
    assert datastreams.options.select == ("name",)
    observations, sensor = datastreams.options.expand
    assert (observations.name, sensor.name) == ("Observations", "Sensor")
    assert observations.options.orderby == (OrderKey(("phenomenonTime",), descending=True),)
    assert observations.options.top == 100
    assert dict(observations.options.raw)["$orderby"] == "phenomenonTime desc"


def test_select_and_orderby_lists() -> None:
    options = parse_options(
        {"$select": "@iot.id, name", "$orderby": "Datastream/name, result desc"}
    )
    assert options.select == ("id", "name")
    assert options.orderby == (OrderKey(("Datastream", "name")), OrderKey(("result",), True))


def test_a_top_beyond_any_page_is_capped_not_refused() -> None:
    assert parse_options({"$top": "10000000000000000000000"}).top == 10_000_000


def test_sensorthings_functions_parse_and_unknown_ones_are_named() -> None:
    for text in ("st_within(location, geography'POINT(1 2)')", "substringof('a', name)",
                 "geo.distance(location, geography'POINT(1 2)') lt 3", "st_relate(location, "
                 "geography'POINT(1 2)', 'T********')"):  # fmt: skip
        parse_filter(text)
    with pytest.raises(QueryError, match=r"'geo\.area'"):
        parse_filter("geo.area(location) gt 1")
    with pytest.raises(QueryError, match="takes 2 arguments"):
        parse_filter("st_within(location)")


def test_long_chains_are_one_level_and_deep_nesting_is_refused() -> None:
    chain = parse_filter(" or ".join(f"id eq {n}" for n in range(300)))
    assert len(bool_chain(chain)) == 300  # type: ignore[arg-type]
    nested = "result gt 1"
    for _ in range(MAX_FILTER_DEPTH + 1):
        nested = f"not ({nested})"
    with pytest.raises(QueryError, match="deeper"):
        parse_filter(nested)


def test_paths_split_into_segments_with_keys() -> None:
    path = parse_path("Things(1)/Datastreams(22)/Observations/$ref")
    assert path.segments == (
        Segment("Things", 1),
        Segment("Datastreams", 22),
        Segment("Observations"),
    )
    assert path.ref
    assert parse_path("Things('x')").segments == (Segment("Things", NO_ID),)
    assert parse_path("Things(99999999999999999999)").segments == (Segment("Things", NO_ID),)
    assert parse_path("Observations(7)/result/$value").value
    for bad in ("", "Things(1", "Things)(", "Things(1)/" * 9, "../x"):
        with pytest.raises((NotFoundError, QueryError)):
            parse_path(bad)
