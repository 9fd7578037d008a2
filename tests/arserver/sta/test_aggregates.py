"""Beyond the raw window the observations store keeps hourly aggregates only; the SensorThings
API gives them as Observations of the same Datastream, clearly marked (an hour-long
phenomenonTime interval, the hour's mean, ``parameters.aggregate`` with count, min and max,
a negative id), in order with the raw ones."""

from __future__ import annotations

from tests.arserver.sta.seed import Sta


def noise_stream(sta: Sta) -> str:
    found = sta.get("Datastreams?$filter=properties/sensor eq 'noise-leidseplein'")["value"]
    return str(found[0]["@iot.selfLink"])


def test_hourly_aggregates_are_observations_marked_as_such(sta: Sta) -> None:
    stream = noise_stream(sta)
    observations = sta.get(f"{stream}/Observations?$orderby=phenomenonTime&$count=true")
    assert observations["@iot.count"] == 7
    first, second, *raw = observations["value"]
    assert first["phenomenonTime"] == "2026-10-01T10:00:00.000Z/2026-10-01T11:00:00.000Z"
    assert first["result"] == 73.0
    assert first["parameters"] == {
        "aggregate": "hourly mean of readings beyond the raw window",
        "count": 3, "min": 70.0, "max": 76.0,
    }  # fmt: skip
    assert first["@iot.id"] < 0
    assert second["result"] == 80.0
    assert second["parameters"]["count"] == 1
    assert [o["result"] for o in raw] == [60.0, 61.0, 62.0, 63.0, 64.0]
    assert all("aggregate" not in o.get("parameters", {}) for o in raw)


def test_an_aggregate_resolves_by_id_and_navigates(sta: Sta) -> None:
    stream = noise_stream(sta)
    first = sta.get(f"{stream}/Observations?$orderby=phenomenonTime&$top=1")["value"][0]
    assert sta.get(first["@iot.selfLink"]) == first
    assert sta.get(f"{first['@iot.selfLink']}/Datastream")["@iot.selfLink"] == stream
    assert sta.get(f"{first['@iot.selfLink']}/FeatureOfInterest")["feature"]["type"] == "Point"


def test_filters_and_pages_run_over_raw_readings_and_aggregates_together(sta: Sta) -> None:
    stream = noise_stream(sta)
    loud = sta.get(f"{stream}/Observations?$filter=result gt 63.5&$orderby=result desc")
    assert [o["result"] for o in loud["value"]] == [80.0, 73.0, 64.0]
    walked: list[float] = []
    page = sta.get(f"{stream}/Observations?$orderby=phenomenonTime desc&$top=3")
    while True:
        walked += [o["result"] for o in page["value"]]
        if "@iot.nextLink" not in page:
            break
        page = sta.get(page["@iot.nextLink"])
    assert walked == [64.0, 63.0, 62.0, 61.0, 60.0, 80.0, 73.0]
    october = sta.get(f"{stream}/Observations?$filter=month(phenomenonTime) eq 10")
    assert len(october["value"]) == 2


def test_the_datastream_spans_its_aggregates_and_raw_readings(sta: Sta) -> None:
    stream = sta.get(noise_stream(sta))
    assert stream["phenomenonTime"] == "2026-10-01T10:00:00.000Z/2026-11-30T04:00:00.000Z"
