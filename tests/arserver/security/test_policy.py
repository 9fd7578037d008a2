"""The one policy table, asserted: every route of the OpenAPI schema (and the live WebSocket)
called with every role, without a token and with an invalid one, answers as
``arserver.security.policy`` says; a route missing from the table fails here."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from arserver.security.policy import OPEN_ROUTES, POLICY, ROLES, ROUTES, Action, RouteRule
from arserver.security.tokens import create_token
from arserver.store.sensors import create_sensor
from arserver.store.tilestore.local import LocalTileStore
from tests.arserver.support import engine_of, insert_asset

INVALID = "ars_" + "x" * 43
PRIVATE = {"asset_id": "a1", "layer": "closed", "path": "tileset.json"}
PUBLIC = {"asset_id": "p1", "layer": "open", "path": "tileset.json"}
OTHER = {
    "sensor_id": "s1",
    "alert_id": "no-such-alert",
    "token_id": "no-such-token",
    "subject": "token:no-such-token",
    "inspection_id": "no-such-inspection",
    "photo_id": "no-such-photo",
    "comment_id": "no-such-comment",
    "round_id": "r1",  # the round of the resident tokens; there is no such round
    "place_id": "no-such-place",
}
AREA = {"type": "Polygon", "coordinates": [[[4.7, 52.3], [4.8, 52.3], [4.8, 52.4], [4.7, 52.3]]]}
ZONES = {
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "properties": {"capacity": 5}, "geometry": AREA}],
}
_ids = itertools.count()


def body_for(route: str) -> dict[str, Any]:
    """Keyword arguments of a request that passes validation, so that only the policy decides."""
    if route == "POST /api/v1/assets":
        geojson = json.dumps({"type": "FeatureCollection", "features": []}).encode()
        return {"files": {"file": ("zones.geojson", geojson)}}
    if route == "POST /api/v1/inspections/{inspection_id}/photos":
        return {"files": {"file": ("photo.jpg", b"not an image")}}
    bodies: dict[str, Any] = {
        "PATCH /api/v1/assets/{asset_id}": {"name": "renamed"},
        "PATCH /api/v1/sensors/{sensor_id}": {"project": "renamed"},
        "POST /api/v1/sensors": {
            "id": f"new-{next(_ids)}", "name": "n", "kind": "no2", "unit": "ug/m3",
        },
        "POST /api/v1/observations": {"observations": []},
        "POST /api/v1/rules": {"name": "r", "kind": "no2", "threshold": 40, "reset": 35},
        "POST /api/v1/tokens": {"role": "viewer"},
        "POST /api/v1/inspections": {
            "location": [4.75, 52.35, 43.0], "category": "damage", "description": "loose tile",
        },
        "PATCH /api/v1/inspections/{inspection_id}": {"note": "seen"},
        "POST /api/v1/comments": {"location": [4.75, 52.35], "text": "t", "round": "r1"},
        "POST /api/v1/comments/{comment_id}/hide": {"reason": "off topic"},
        "POST /api/v1/comments/{comment_id}/restore": {},
        "POST /api/v1/comments/{comment_id}/response": {"text": "thank you"},
        "POST /api/v1/rounds": {
            "title": "t", "description": "d", "privacy_notice": "p", "mode": "staff",
            "area": AREA, "assets": [], "starts_at": datetime.now(UTC).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        "PATCH /api/v1/rounds/{round_id}": {"title": "renamed"},
        "POST /api/v1/rounds/{round_id}/link": {},
        "POST /api/v1/rounds/{round_id}/participants": {},
        "POST /api/v1/parking/places": {
            "kind": "car_park", "name": "P", "capacity": 10, "location": [4.75, 52.35],
        },
        "POST /api/v1/parking/zones/import": ZONES,
        "POST /api/v1/align": {
            "pairs": [
                {"client": [0, 0, 0], "world": [4.75, 52.35, 43.0]},
                {"client": [10, 0, 0], "world": [4.75015, 52.35, 43.0]},
                {"client": [0, 0, -10], "world": [4.75, 52.35009, 43.0]},
            ]
        },
    }  # fmt: skip
    return {"json": bodies[route]} if route in bodies else {}


def url_for(route: str, ids: dict[str, str]) -> str:
    path = route.split(" ", 1)[1].format(**ids, **OTHER)
    return path + ("?bbox=4,52,5,53" if path.endswith("/latest") else "")


def call(client: TestClient, route: str, ids: dict[str, str], secret: str | None) -> int:
    method = route.split(" ", 1)[0]
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    response = client.request(method, url_for(route, ids), headers=headers, **body_for(route))
    assert response.status_code < 500, (route, response.status_code, response.text[:300])
    return response.status_code


def prepare(client: TestClient) -> dict[str, str]:
    """A private and a public asset with a tileset, a sensor, and a token per role."""
    engine = engine_of(client)
    store: LocalTileStore = client.app.state.store  # type: ignore[attr-defined]
    for ids, public in ((PRIVATE, False), (PUBLIC, True)):
        insert_asset(
            engine, ids["asset_id"], public=public, layer=ids["layer"],
            extent=(4.7, 52.3, 4.8, 52.4),
        )  # fmt: skip
        folder = store.asset_dir(ids["asset_id"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tileset.json").write_text('{"asset": {"version": "1.1"}}')
    create_sensor(engine, {"id": "s1", "name": "s1"}, [("no2", "ug/m3")])
    secrets = {role: create_token(engine, role)[0] for role in ROLES if role != "resident"}
    secrets["resident"] = create_token(engine, "resident", scope="round:r1")[0]
    secrets[RESIDENT_LINK] = create_token(engine, "resident", scope="round-link:r1")[0]
    return secrets


#: A round's link token (role resident): it only joins; the other resident token commented.
RESIDENT_LINK = "resident link"


def identities(secrets: dict[str, str], rule: RouteRule) -> dict[str, str]:
    """A token per role; the resident's is the one its scope allows the action with, if any
    (a round's link token joins, a resident's own token does the rest)."""
    chosen = {role: secret for role, secret in secrets.items() if role != RESIDENT_LINK}
    if rule.action is Action.JOIN_ROUNDS:
        chosen["resident"] = secrets[RESIDENT_LINK]
    return chosen


def test_every_route_is_in_the_policy_table(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    served = {f"{m.upper()} {path}" for path, ops in schema["paths"].items() for m in ops}
    assert served - set(ROUTES) - OPEN_ROUTES == set(), "routes without a policy entry"
    http_rules = {r for r in ROUTES if not r.startswith("WEBSOCKET ")}
    assert http_rules - served == set(), "policy entries without a route"


def ordered() -> list[tuple[str, RouteRule]]:
    """Reads and writes first, deletions last (they remove what the others use)."""
    return sorted(ROUTES.items(), key=lambda item: item[0].startswith("DELETE "))


def test_every_route_answers_every_identity_as_the_table_says(client: TestClient) -> None:
    secrets = prepare(client)
    for route, rule in ordered():
        if route.startswith("WEBSOCKET "):
            continue
        for role, secret in identities(secrets, rule).items():
            status = call(client, route, PRIVATE, secret)
            if role in POLICY[rule.action]:
                assert status not in (401, 403), (route, role, status)
            else:
                assert status == 403, (route, role, status)
        anonymous = call(client, route, PUBLIC, None)
        if rule.anonymous:
            assert anonymous not in (401, 403), (route, "anonymous", anonymous)
        else:
            assert anonymous == 401, (route, "anonymous", anonymous)
        hidden = call(client, route, PRIVATE, None)  # a private asset, as if it did not exist
        if rule.anonymous and "{asset_id}" in route:
            assert hidden == 404, (route, "anonymous on a private asset", hidden)
        elif not rule.anonymous:
            assert hidden == 401, (route, "anonymous", hidden)
        assert call(client, route, PUBLIC, INVALID) == 401, (route, "invalid token")


def test_the_live_endpoint_admits_exactly_the_roles_of_the_table(client: TestClient) -> None:
    secrets = prepare(client)
    allowed = POLICY[ROUTES["WEBSOCKET /api/v1/live"].action]
    for identity, secret in [*secrets.items(), ("anonymous", ""), ("invalid", INVALID)]:
        identity = "resident" if identity == RESIDENT_LINK else identity
        url = f"/api/v1/live?access_token={secret}" if secret else "/api/v1/live"
        if identity in allowed:
            with client.websocket_connect(url) as ws:
                assert ws.receive_json()["type"] == "welcome", identity
        else:
            with pytest.raises(WebSocketDisconnect), client.websocket_connect(url) as ws:
                ws.receive_json()


def test_resident_tokens_do_only_what_their_round_scope_allows(client: TestClient) -> None:
    """A round's link token reads the round and joins, nothing else; a resident's own token
    comments but cannot join again, and neither reads non-public data."""
    secrets = prepare(client)
    own, link = bearer_of(secrets["resident"]), bearer_of(secrets[RESIDENT_LINK])
    comment = {"location": [4.75, 52.35], "text": "t", "round": "r1"}
    assert client.post("/api/v1/comments", json=comment, headers=link).status_code == 403
    assert client.post("/api/v1/rounds/r1/participants", json={}, headers=own).status_code == 403
    for headers in (own, link):
        assert client.get("/api/v1/inspections", headers=headers).status_code == 403
        assert client.get("/api/v1/sensors/s1", headers=headers).status_code == 403
        assert client.get("/api/v1/assets/a1", headers=headers).status_code == 404  # private
        assert client.get("/api/v1/assets/p1", headers=headers).status_code == 200  # public


def bearer_of(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_resident_without_a_round_scope_still_reads_public_assets_only() -> None:
    """A resident signed in through OpenID Connect has no scope; it must not read what staff
    read."""
    from arserver.security.policy import admits, permits
    from arserver.security.tokens import TokenRecord

    signed_in = TokenRecord("oidc:ab:resident-7:1", "resident", "resident", datetime.now(UTC))
    assert permits(signed_in, Action.READ_ASSETS)
    assert permits(signed_in, Action.COMMENT)
    assert not admits(signed_in, "a1", "closed")
    assert not permits(signed_in, Action.READ)
    assert not permits(signed_in, Action.SUBSCRIBE_LIVE)
