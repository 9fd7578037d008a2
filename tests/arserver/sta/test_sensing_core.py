"""The read side of the SensorThings API's Sensing Core conformance class (OGC 18-088, as the
OGC test suite checks it): the service root, every entity set, single entities with their
mandatory properties, self and navigation links that resolve, properties and ``$value``,
navigation paths, ``$ref``, and 404 for what does not exist."""

from __future__ import annotations

import pytest

from tests.arserver.sta.seed import Sta

ROOT = "http://testserver/sta/v1.1"
#: The mandatory properties of each entity type (18-088, section 8.2) and its relations.
MANDATORY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Things": (("name", "description"), ("Locations", "HistoricalLocations", "Datastreams")),
    "Locations": (("name", "description", "encodingType", "location"),
                  ("Things", "HistoricalLocations")),
    "HistoricalLocations": (("time",), ("Thing", "Locations")),
    "Datastreams": (("name", "description", "unitOfMeasurement", "observationType"),
                    ("Thing", "Sensor", "ObservedProperty", "Observations")),
    "Sensors": (("name", "description", "encodingType", "metadata"), ("Datastreams",)),
    "ObservedProperties": (("name", "definition", "description"), ("Datastreams",)),
    "Observations": (("phenomenonTime", "result", "resultTime"),
                     ("Datastream", "FeatureOfInterest")),
    "FeaturesOfInterest": (("name", "description", "encodingType", "feature"),
                           ("Observations",)),
}  # fmt: skip


def test_the_service_root_lists_every_entity_set_and_the_conformance_classes(sta: Sta) -> None:
    root = sta.get("/sta/v1.1")
    assert {e["name"]: e["url"] for e in root["value"]} == {
        name: f"{ROOT}/{name}" for name in MANDATORY
    }
    conformance = root["serverSettings"]["conformance"]
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel" in conformance
    assert sta.get("/sta/v1.1/") == root


@pytest.mark.parametrize("entity_set", list(MANDATORY))
def test_every_entity_set_lists_entities_whose_links_resolve(sta: Sta, entity_set: str) -> None:
    listing = sta.get(entity_set)
    assert listing["value"], entity_set
    properties, relations = MANDATORY[entity_set]
    for entity in listing["value"]:
        assert isinstance(entity["@iot.id"], int)
        assert entity["@iot.selfLink"] == f"{ROOT}/{entity_set}({entity['@iot.id']})"
        for name in properties:
            assert name in entity, (entity_set, name)
        for relation in relations:
            link = entity[f"{relation}@iot.navigationLink"]
            assert link == f"{entity['@iot.selfLink']}/{relation}"
    first = listing["value"][0]
    assert sta.get(first["@iot.selfLink"]) == first
    for relation in relations:
        related = sta.get(first[f"{relation}@iot.navigationLink"])
        assert "value" in related or "@iot.id" in related, (entity_set, relation)


def test_entities_carry_what_was_registered_and_measured(sta: Sta) -> None:
    things = {t["properties"]["sensor"]: t for t in sta.get("Things")["value"]}
    air = things["air-dam"]
    assert air["name"] == "Air quality, Dam"
    assert air["description"] == "air quality monitoring"
    assert air["properties"]["owner"] == "Gemeente Amsterdam"
    streams = sta.get(f"Things({air['@iot.id']})/Datastreams")["value"]
    no2 = next(s for s in streams if s["properties"]["kind"] == "no2")
    assert no2["unitOfMeasurement"] == {
        "name": "microgram per cubic metre", "symbol": "ug/m3", "definition": "https://ucum.org/ucum",
    }  # fmt: skip
    assert no2["observationType"].endswith("OM_Measurement")
    assert no2["observedArea"] == {"type": "Point", "coordinates": [4.893, 52.3731, 45.0]}
    assert no2["phenomenonTime"] == "2026-11-30T00:00:00.000Z/2026-11-30T09:00:00.000Z"
    values = sta.get(f"Datastreams({no2['@iot.id']})/Observations?$orderby=phenomenonTime")
    assert [o["result"] for o in values["value"]] == [20.0 + h for h in range(10)]
    assert values["value"][0]["phenomenonTime"] == "2026-11-30T00:00:00.000Z"
    prop = sta.get(f"Datastreams({no2['@iot.id']})/ObservedProperty")
    assert prop["name"] == "no2"
    assert prop["definition"] == "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/8"


def test_rd_nap_positions_are_given_in_wgs84(sta: Sta) -> None:
    things = {t["properties"]["sensor"]: t["@iot.id"] for t in sta.get("Things")["value"]}
    location = sta.get(f"Things({things['noise-leidseplein']})/Locations")["value"][0]
    lon, lat, h = location["location"]["coordinates"]
    assert 4.87 < lon < 4.89
    assert 52.35 < lat < 52.37
    assert 40 < h < 45  # NAP 1.5 m is about 43 m above the ellipsoid here
    assert location["encodingType"] == "application/geo+json"


def test_a_mobile_sensor_has_its_area_and_positioned_observations(sta: Sta) -> None:
    things = {t["properties"]["sensor"]: t["@iot.id"] for t in sta.get("Things")["value"]}
    bike = things["bike-pm"]
    location = sta.get(f"Things({bike})/Locations")["value"][0]
    assert location["location"]["type"] == "Polygon"
    observations = sta.get(f"Things({bike})/Datastreams")["value"][0][
        "@iot.navigationLink" if False else "@iot.selfLink"
    ]
    first = sta.get(f"{observations}/Observations?$orderby=phenomenonTime&$top=1")["value"][0]
    assert first["parameters"]["position"] == [4.88, 52.36]


def test_a_mobile_sensors_positions_are_its_historical_locations(sta: Sta) -> None:
    things = {t["properties"]["sensor"]: t["@iot.id"] for t in sta.get("Things")["value"]}
    bike = things["bike-pm"]
    positions = "$filter=id lt 0&$orderby=time&$expand=Locations"  # ids of positions are < 0
    history = sta.get(f"Things({bike})/HistoricalLocations?{positions}")
    times = [h["time"] for h in history["value"]]
    assert times == ["2026-11-30T00:30:00.000Z", "2026-11-30T01:30:00.000Z",
                     "2026-11-30T02:30:00.000Z", "2026-11-30T03:30:00.000Z"]  # fmt: skip
    route = [h["Locations"][0]["location"]["coordinates"] for h in history["value"]]
    assert route == [[4.88, 52.36], [4.89, 52.365], [4.90, 52.37], [4.91, 52.375]]
    position = history["value"][0]["Locations"][0]["@iot.selfLink"]
    assert sta.get(f"{position}/Things")["value"][0]["@iot.id"] == bike
    assert sta.get(f"{position}/HistoricalLocations")["value"][0]["time"] == times[0]
    assert [loc["location"]["type"] for loc in sta.get(f"Things({bike})/Locations")["value"]] == [
        "Polygon"
    ]
    fixed = sta.get(f"Things({things['air-dam']})/HistoricalLocations")["value"]
    assert len(fixed) == 1  # a fixed sensor: since it was placed
    assert len(sta.get(f"Things({bike})/HistoricalLocations")["value"]) == 5  # and its area


def test_properties_and_their_raw_values(sta: Sta) -> None:
    thing = sta.get("Things?$top=1")["value"][0]
    base = thing["@iot.selfLink"]
    assert sta.get(f"{base}/name") == {"name": thing["name"]}
    raw = sta.response(f"{base}/name/$value")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.text == thing["name"]
    location = sta.get(f"{base}/Locations")["value"][0]["@iot.selfLink"]
    geometry = sta.response(f"{location}/location/$value")
    assert geometry.json()["type"] == "Point"
    observation = sta.get("Observations?$top=1")["value"][0]["@iot.selfLink"]
    assert (
        float(sta.response(f"{observation}/result/$value").text) == sta.get(observation)["result"]
    )


def test_navigation_paths_go_two_levels_deep(sta: Sta) -> None:
    stream = sta.get("Datastreams?$top=1")["value"][0]
    thing = sta.get(f"Datastreams({stream['@iot.id']})/Thing")
    deep = sta.get(f"Datastreams({stream['@iot.id']})/Thing/Locations")
    assert deep == sta.get(f"Things({thing['@iot.id']})/Locations")
    observation = sta.get(
        f"Things({thing['@iot.id']})/Datastreams({stream['@iot.id']})/Observations?$top=1"
    )
    assert observation["value"]
    assert sta.get(f"Observations({observation['value'][0]['@iot.id']})/Datastream/Sensor")["name"]


def test_refs_list_self_links_only(sta: Sta) -> None:
    refs = sta.get("Things/$ref")
    assert all(set(item) == {"@iot.selfLink"} for item in refs["value"])
    assert len(refs["value"]) == len(sta.get("Things")["value"])
    one = refs["value"][0]["@iot.selfLink"]
    assert sta.get(f"{one}/$ref") == {"@iot.selfLink": one}


@pytest.mark.parametrize(
    "url",
    [
        "Things(9223372036854775807)", "Things(0)", "Things(99999999999999999999)", "Things('x')",
        "Thingz", "Things(1)/Nothing", "Things(1)/Datastreams(999999)", "Datastreams(1)/Thing(1)",
        "Things(1)/name/oops", "Observations(-5)", "Things/Datastreams",
    ],
)  # fmt: skip
def test_what_does_not_exist_answers_404(sta: Sta, url: str) -> None:
    assert sta.status(url) == 404


def test_anonymous_callers_see_public_sensors_only_and_tokens_follow_the_policy(sta: Sta) -> None:
    everything = {t["properties"]["sensor"] for t in sta.get("Things")["value"]}
    public = {t["properties"]["sensor"] for t in sta.get("Things", role=None)["value"]}
    assert everything == {"air-dam", "noise-leidseplein", "bike-pm", "ets-results"}
    assert public == {"air-dam", "bike-pm", "ets-results"}
    hidden = next(
        t for t in sta.get("Things")["value"] if t["properties"]["sensor"] == "noise-leidseplein"
    )
    assert sta.status(hidden["@iot.selfLink"], role=None) == 404
    assert sta.status(f"{hidden['@iot.selfLink']}/Datastreams", role=None) == 404
    kinds = {p["name"] for p in sta.get("ObservedProperties", role=None)["value"]}
    assert "laeq" not in kinds
    anonymous_results = sta.get("Observations?$count=true&$top=0", role=None)["@iot.count"]
    everyone = sta.get("Observations?$count=true&$top=0")["@iot.count"]
    assert anonymous_results == everyone - 7  # the noise sensor: 5 raw readings, 2 hours
    assert sta.status("Things", role="ingest") == 403
    assert sta.status("/sta/v1.1", role="resident") == 403
