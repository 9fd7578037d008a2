"""The requests QGIS (3.36 to 3.40, src/core/providers/sensorthings) and Grafana's SensorThings
data sources send, one by one, as they send them."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.arserver.sta.seed import Sta


def qgis_number(value: float) -> str:
    """How QGIS writes a coordinate (qgsDoubleToString: 17 decimals, zeros stripped)."""
    return f"{value:.17f}".rstrip("0").rstrip(".")


def qgis_extent(west: float, south: float, east: float, north: float) -> str:
    w, s, e, n = (qgis_number(v) for v in (west, south, east, north))
    ring = f"{w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}"
    return f"geo.intersects(location, geography'POLYGON(({ring}))')"


def type_filter(kind: str, field: str = "location") -> str:
    return f"{field}/type eq '{kind}' or {field}/geometry/type eq '{kind}'"


# Points: three fixed sensors and the four positions the bike reported; its area a Polygon.
@pytest.mark.parametrize(("kind", "count"), [("Point", 7), ("Polygon", 1), ("LineString", 0)])
def test_qgis_probes_each_geometry_type_with_a_count(sta: Sta, kind: str, count: int) -> None:
    probe = sta.get(f"Locations?$top=0&$count=true&$filter={type_filter(kind)}")
    assert probe == {"@iot.count": count, "value": []}  # a count alone: no next link


def test_qgis_counts_features_and_things(sta: Sta) -> None:
    assert sta.get("Things?$top=0&$count=true")["@iot.count"] == 4
    assert (
        sta.get("FeaturesOfInterest?$top=0&$count=true&$filter=" + type_filter("Point", "feature"))[
            "@iot.count"
        ]
        == 3
    )


def test_qgis_loads_a_layer_for_its_extent_and_pages_through_it(sta: Sta) -> None:
    extent = qgis_extent(4.8, 52.3, 5.0, 52.4)
    expand = (
        "Things($top=100;$expand=Datastreams($top=10;"
        "$expand=Observations($orderby=phenomenonTime desc;$top=100)))"
    )
    condition = f"({type_filter('Point')}) and ({extent})"
    first = sta.get(f"Locations?$top=2&$count=false&$filter={condition}&$expand={expand}")
    assert "@iot.count" not in first
    seen = [loc["@iot.id"] for loc in first["value"]]
    link = first["@iot.nextLink"]
    assert "$top=2" in link  # QGIS rewrites $top=\d+ in it, e.g. to fit its feature limit
    page = sta.get(link.replace("$top=2", "$top=3"))
    seen += [loc["@iot.id"] for loc in page["value"]]
    while "@iot.nextLink" in page:
        assert "$top=3" in page["@iot.nextLink"]
        page = sta.get(page["@iot.nextLink"])
        seen += [loc["@iot.id"] for loc in page["value"]]
    assert len(seen) == len(set(seen)) == 7  # the seven points in the extent, each once
    place = sta.get(f"Locations?$top=1&$filter=id gt 0 and ({extent})&$expand={expand}")
    thing = place["value"][0]["Things"][0]
    newest = thing["Datastreams"][0]["Observations"]
    times = [o["phenomenonTime"] for o in newest]
    assert times == sorted(times, reverse=True)


def test_qgis_world_extent_and_percent_encoded_requests(sta: Sta) -> None:
    world = qgis_extent(-180, -90, 180, 90)
    raw = sta.get(f"Locations?$top=200&$count=false&$filter={world}")
    options = (("$top", "200"), ("$count", "false"), ("$filter", world))
    encoded = sta.get("Locations?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in options))
    assert [loc["@iot.id"] for loc in raw["value"]] == [loc["@iot.id"] for loc in encoded["value"]]
    assert len(raw["value"]) == 8  # four places and four positions


def test_qgis_expands_single_entities_with_a_top(sta: Sta) -> None:
    """QGIS adds $top to every expansion, also of one entity (Thing, Datastream)."""
    observations = sta.get(
        "Observations?$top=200&$count=false&$expand=Datastream($top=100;$expand=Thing($top=100))"
    )
    assert all(o["Datastream"]["Thing"]["name"] for o in observations["value"])
    datastreams = sta.get(
        "Datastreams?$top=200&$count=false&$expand=Thing($top=100),ObservedProperty($top=100)"
    )
    assert all("definition" in d["ObservedProperty"] for d in datastreams["value"])


def test_expanded_observations_page_with_their_own_next_link(sta: Sta) -> None:
    stream = sta.get(
        "Datastreams?$filter=properties/kind eq 'no2'"
        "&$expand=Observations($orderby=phenomenonTime desc;$top=4)"
    )["value"][0]
    assert len(stream["Observations"]) == 4
    link = stream["Observations@iot.nextLink"]
    assert link.startswith(f"{stream['@iot.selfLink']}/Observations?")
    walked = [o["result"] for o in stream["Observations"]]
    while link:
        page = sta.get(link)
        walked += [o["result"] for o in page["value"]]
        link = page.get("@iot.nextLink")
    assert walked == [29.0 - h for h in range(10)]


def test_grafana_time_series_queries(sta: Sta) -> None:
    stream = sta.get("Datastreams?$filter=properties/kind eq 'no2'")["value"][0]["@iot.selfLink"]
    frost = sta.get(
        f"{stream}/Observations?$orderby=phenomenonTime&$filter=phenomenonTime ge "
        "2026-11-30T02:00:00.000Z and phenomenonTime le 2026-11-30T04:00:00.000Z&$top=1000"
    )
    assert [o["result"] for o in frost["value"]] == [22.0, 23.0, 24.0]
    linksmart = sta.get(
        f"{stream}/Observations?$filter=phenomenonTime gt 2026-11-30T02:00:00.000Z and "
        "phenomenonTime lt 2026-11-30T04:00:00.000Z&$select=phenomenonTime,result"
        "&$orderby=phenomenonTime desc&$top=1000"
    )
    assert linksmart["value"] == [{"phenomenonTime": "2026-11-30T03:00:00.000Z", "result": 23.0}]
    listing = sta.get("Datastreams?$top=1000&$select=name,id,observationType")["value"]
    assert all(set(d) == {"@iot.id", "@iot.selfLink", "name", "observationType"} for d in listing)


def test_the_access_token_travels_in_next_links(sta: Sta) -> None:
    token = sta.headers("viewer")["Authorization"].split()[1]
    page = sta.get(f"Observations?$top=2&access_token={token}", role=None)
    assert f"access_token={token}" in page["@iot.nextLink"]
    assert sta.get(page["@iot.nextLink"], role=None)["value"]
    thing = sta.get(f"Things?$top=1&$expand=Datastreams($top=1)&access_token={token}", role=None)
    assert f"access_token={token}" in thing["value"][0]["Datastreams@iot.nextLink"]
