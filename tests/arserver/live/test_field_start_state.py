"""A server that starts again shows what was live before: open inspections and visible
comments are in the first snapshot of a new subscriber; closed and hidden ones are not."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.support import auth

#: Above the database: SQLite is enough.
BACKENDS = ("sqlite",)
HERE = [4.9, 52.37, 43.0]


def snapshot_keys(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    secret = headers["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/v1/live?access_token={secret}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json(
            {"type": "subscribe", "id": "s", "area": {"bbox": [4.8, 52.3, 5.0, 52.4]},
             "layers": ["inspections", "annotations"]}
        )  # fmt: skip
        snapshot = ws.receive_json()
    assert snapshot["type"] == "snapshot"
    return {item["key"]: item for item in snapshot["items"]}


def test_open_inspections_and_visible_comments_are_live_after_a_restart(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as first:
        inspector, planner = auth(first, "inspector"), auth(first, "planner")
        finding = {"location": HERE, "category": "damage", "description": "tegel los"}
        kept = first.post("/api/v1/inspections", json=finding, headers=inspector).json()
        closed = first.post("/api/v1/inspections", json=finding, headers=inspector).json()
        first.patch(
            f"/api/v1/inspections/{closed['id']}",
            json={"status": "resolved", "note": "vastgezet"},
            headers=inspector,
        ).raise_for_status()
        said = first.post(
            "/api/v1/comments", json={"location": HERE[:2], "text": "hier"}, headers=planner
        ).json()
        hidden = first.post(
            "/api/v1/comments", json={"location": HERE[:2], "text": "weg"}, headers=planner
        ).json()
        first.post(
            f"/api/v1/comments/{hidden['id']}/hide", json={"reason": "dubbel"}, headers=planner
        ).raise_for_status()
    with TestClient(create_app(settings)) as second:
        held = snapshot_keys(second, auth(second, "viewer"))
    assert f"inspection:{kept['id']}" in held
    assert f"comment:{said['id']}" in held
    assert held[f"comment:{said['id']}"]["data"]["text"] == "hier"
    assert f"inspection:{closed['id']}" not in held
    assert f"comment:{hidden['id']}" not in held
