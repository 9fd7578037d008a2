"""Seeded sensor data for the SensorThings API tests: what the registry and the observation
write path hold after a gis user registered four sensors and sent their readings over HTTP.

- ``air-dam`` (public, fixed at the Dam, Amsterdam): no2 and pm25, ten hourly readings each.
- ``noise-leidseplein`` (not public, fixed, registered in RD New + NAP): laeq, five readings,
  and four from October that retention rolled up into two hourly aggregates.
- ``bike-pm`` (public, mobile, moving in an area): pm25, four readings with positions.
- ``ets-results`` (public, fixed): the OGC test suite's ``result`` values 1..8 (for the
  priority-of-options test).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from arserver.store.retention import apply_retention
from tests.arserver.support import auth, engine_of

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
AREA = {
    "type": "Polygon",
    "coordinates": [[[4.86, 52.35], [4.93, 52.35], [4.93, 52.39], [4.86, 52.39], [4.86, 52.35]]],
}
SENSORS: list[dict[str, Any]] = [
    {
        "id": "air-dam", "name": "Air quality, Dam",
        "datastreams": [{"kind": "no2", "unit": "ug/m3"}, {"kind": "pm25", "unit": "ug/m3"}],
        "location": [4.8930, 52.3731, 45.0], "public": True, "owner": "Gemeente Amsterdam",
        "sensor_type": "chemical", "purpose": "air quality monitoring",
    },
    {
        "id": "noise-leidseplein", "name": "Noise, Leidseplein", "kind": "laeq",
        "unit": "dB(A)", "location": [120700.0, 486500.0, 1.5], "crs": "EPSG:7415",
        "owner": "Gemeente Amsterdam",
    },
    {
        "id": "bike-pm", "name": "Bike courier PM", "kind": "pm25", "unit": "ug/m3",
        "area": AREA, "public": True, "owner": "RIVM Samen Meten",
    },
    {
        "id": "ets-results", "name": "Test suite results", "kind": "count",
        "unit": "{count}", "location": [4.9, 52.36], "public": True,
    },
]  # fmt: skip


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def observations() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for hour in range(10):
        items.append({"sensor": "air-dam", "kind": "no2", "time": at(hour), "value": 20.0 + hour})
        items.append({"sensor": "air-dam", "kind": "pm25", "time": at(hour), "value": 5.0 + hour})
    for hour in range(5):
        items.append({"sensor": "noise-leidseplein", "time": at(hour), "value": 60.0 + hour})
    for old, value in (("10:05", 70.0), ("10:20", 73.0), ("10:35", 76.0), ("11:10", 80.0)):
        items.append(
            {"sensor": "noise-leidseplein", "time": f"2026-10-01T{old}:00Z", "value": value}
        )
    route = [(4.88, 52.36), (4.89, 52.365), (4.90, 52.37), (4.91, 52.375)]
    for index, (lon, lat) in enumerate(route):
        items.append(
            {"sensor": "bike-pm", "time": at(index + 0.5), "value": 8.0 + index,
             "position": [lon, lat]}
        )  # fmt: skip
    for index, value in enumerate([1, 2, 3, 4, 5, 6, 7, 8]):
        items.append({"sensor": "ets-results", "time": at(index), "value": float(value)})
    return items


def seed(client: TestClient) -> None:
    """Register the sensors and store their observations through the API."""
    headers = auth(client, "gis")
    for body in SENSORS:
        created = client.post("/api/v1/sensors", json=body, headers=headers)
        assert created.status_code == 201, created.text
    stored = client.post("/api/v1/observations", json={"observations": observations()},
                         headers=headers)  # fmt: skip
    assert stored.json()["rejected"] == 0, stored.text
    # Thirty days of raw readings before T0: October's are rolled up into hours.
    apply_retention(engine_of(client), timedelta(days=30), None, now=T0)


class Sta:
    """GETs under the service root as a role (tokens made once per role)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, role: str | None) -> dict[str, str]:
        if role is None:
            return {}
        if role not in self._headers:
            self._headers[role] = auth(self.client, role)
        return self._headers[role]

    def response(self, url: str, role: str | None = "viewer") -> Any:
        path = url if url.startswith(("/", "http")) else f"/sta/v1.1/{url}"
        return self.client.get(path, headers=self.headers(role))

    def get(self, url: str, role: str | None = "viewer") -> Any:
        """The JSON of ``url`` (a path under the service root, or absolute) as ``role``
        (None: no token); asserts 200."""
        response = self.response(url, role)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        return response.json()

    def status(self, url: str, role: str | None = "viewer") -> int:
        code: int = self.response(url, role).status_code
        return code


def ids(document: dict[str, Any]) -> list[int]:
    return [entity["@iot.id"] for entity in document["value"]]
