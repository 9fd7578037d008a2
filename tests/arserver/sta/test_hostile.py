"""Hostile SensorThings requests: filters nested a thousand deep or 100 KB long, unknown
functions, SQL in string literals, out-of-range numbers and pages, broken Unicode and paths.
Each is a 400, a 404 or an empty page with a message that names the problem; never a 5xx, and
the service answers normally afterwards."""

from __future__ import annotations

import pytest

from arserver.errors import QueryError
from arserver.odata.options import parse_filter
from tests.arserver.sta.seed import Sta

DEEP = "(" * 1000 + "result gt 1" + ")" * 1000
NOTS = "not " * 1000 + "result gt 1"
CHAIN = " and ".join(["id gt 1"] * 600)
LONG = "name eq '" + "x" * 50_000 + "'"  # longer is refused by the HTTP server before it


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"Observations?$filter={DEEP}", "nests deeper"),
        (f"Observations?$filter={NOTS}", "nests deeper"),
        (f"Observations?$filter={CHAIN}", "terms"),
        (f"Things?$filter={LONG}", "longer than"),
        ("Things?$filter=frobnicate(name) eq 1", "frobnicate"),
        ("Things?$filter=geo.area(location) gt 1", "geo.area"),
        ("Things?$filter=name eq", "cannot be parsed"),
        ("Things?$filter=name eq 'unclosed", "cannot be parsed"),
        ("Things?$filter=colour eq 'red'", "colour"),
        ("Things?$filter=name", "condition"),
        ("Things?$filter=name gt 3", "compare"),
        ("Things?$filter=Datastreams/name eq 'x'", "collection"),
        ("Observations?$filter=result gt 99999999999999999999999", "out of range"),
        ("Observations?$filter=result gt 'many'", "not a number"),
        ("Observations?$filter=phenomenonTime gt '2026-13-45'", "ISO 8601"),
        ("Observations?$filter=phenomenonTime gt '0001-01-01T00:00:00%2B14:00'", "out of range"),
        ("Locations?$filter=geo.intersects(location, geography'POLYGON((0 0, 1 1')", "WKT"),
        ("Locations?$filter=geo.intersects(geography'POINT(1 2)', geography'POINT(1 3)')",
         "property"),
        ("Locations?$filter=st_relate(location, geography'POINT(1 2)', 'DROP TABLE')", "DE-9IM"),
        ("Locations?$orderby=location", "geometry"),
        ("Things?$top=-1", "$top"),
        ("Things?$top=ten", "$top"),
        ("Things?$skip=-5", "$skip"),
        ("Things?$skip=99999999999", "$skip"),
        ("Things?$count=yes", "$count"),
        ("Things?$select=name;drop", "$select"),
        ("Things?$orderby=name sideways", "asc or desc"),
        ("Things?$expand=Datastreams($top=-1)", "$top"),
        ("Things?$expand=Datastreams($evil=1)", "$expand option"),
        ("Things?$expand=" + "Datastreams($expand=Thing($expand=" * 10 + "Locations" + "))" * 10,
         "deeper"),
        ("Things?$expand=Datastreams(", "unbalanced"),
        ("Things?$format=xml", "unsupported query option"),
        ("Things?$top=1&$top=2", "twice"),
        ("Things?$filter=name in (1, 'a')", "'in'"),
        ("Things?$filter=any(x: x eq 1)", "parsed"),
    ],
)  # fmt: skip
def test_bad_queries_are_400s_that_name_the_problem(sta: Sta, url: str, named: str) -> None:
    response = sta.response(url)
    assert response.status_code == 400, (url[:80], response.status_code, response.text[:200])
    assert named.lower() in response.json()["detail"].lower(), response.text[:200]


def test_a_100_kb_filter_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse_filter("name eq '" + "x" * 100_000 + "'")


def test_sql_in_string_literals_is_only_text(sta: Sta) -> None:
    for text in ("x' OR '1'='1", "'; DROP TABLE sensors; --", "x\\' OR 1=1 --", "%", "_"):
        quoted = text.replace("'", "''")
        assert sta.get(f"Things?$filter=name eq '{quoted}'")["value"] == []
        assert sta.get(f"Things?$filter=contains(name, '{quoted}')")["value"] == []
    assert len(sta.get("Things")["value"]) == 4


def test_pages_beyond_the_limits_are_capped_or_empty(sta: Sta) -> None:
    capped = sta.get("Observations?$top=10000000&$count=true")
    assert len(capped["value"]) == capped["@iot.count"] <= 1000
    assert sta.get("Observations?$skip=1000000")["value"] == []
    assert sta.get("Observations?$top=0")["value"] == []


@pytest.mark.parametrize(
    "url",
    [
        "Things(1", "Things()", "Things(1)(2)", "Things(1.5)", "Things(%00)", "Th%C3%AFngs",
        "Things(1)/" + "Datastreams/" * 20, "Things%2F..", "Things(1)/$value",
        "Things(1)/Datastreams(1)/$ref/extra", "Observations(1)/parameters",
    ],
)  # fmt: skip
def test_broken_paths_are_404s(sta: Sta, url: str) -> None:
    assert sta.status(url) in (400, 404), url


@pytest.mark.parametrize(
    "query",
    ["$filter=name eq '%ff%fe'", "$filter=name eq '%ED%A0%80'", "$filter=%00", "$select=%00",
     "$orderby=%FF", "$expand=%C0%AF"],
)  # fmt: skip
def test_invalid_unicode_and_nul_characters_are_refused_or_match_nothing(
    sta: Sta, query: str
) -> None:
    response = sta.response(f"Things?{query}")
    assert response.status_code in (200, 400, 422), (
        query,
        response.status_code,
        response.text[:200],
    )
    if response.status_code == 200:
        assert response.json()["value"] == []
    assert sta.status("Things") == 200
