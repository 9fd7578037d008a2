"""Not entitled to a non-public thing: 404, as if it did not exist. The answer for a private
asset to a caller who may not see it is compared byte for byte (status, headers, body) with the
answer for the same asset once it no longer exists; on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from arserver.config import Settings
from arserver.security.tokens import create_token
from tests.arserver.support import ASSETS, auth, engine_of, run_jobs, upload

#: SQLite only: the answers are made above the database, whose lookups other tests cover on both.
BACKENDS = ("sqlite",)

#: The ways of asking for one asset or its tiles; ``{id}`` is the asset, ``{uri}`` a content file.
REQUESTS = (
    ("GET", "/api/v1/assets/{id}"),
    ("GET", "/tiles/{id}/tileset.json"),
    ("HEAD", "/tiles/{id}/tileset.json"),
    ("GET", "/tiles/{id}/{uri}"),
    ("HEAD", "/tiles/{id}/{uri}"),
    ("GET", "/tiles/{id}/no/such/file.glb"),
    ("GET", "/tiles/{id}/%2e%2e/%2e%2e/arserver.db"),
)


def answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Everything a client can observe of an answer (headers in order, date aside)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
    return response.status_code, headers, response.content


def answers(
    client: TestClient, asset_id: str, uri: str, headers: dict[str, str], query: str = ""
) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    return [
        answer(client.request(method, path.format(id=asset_id, uri=uri) + query, headers=headers))
        for method, path in REQUESTS
    ]


def private_asset(client: TestClient, settings: Settings, layer: str = "utilities") -> str:
    asset_id = str(upload(client, ASSETS / "cables_pipes.geojson", layer=layer).json()["id"])
    run_jobs(client, settings)
    return asset_id


def content_uri(client: TestClient, asset_id: str) -> str:
    tileset = client.get(f"/tiles/{asset_id}/tileset.json", headers=auth(client, "viewer"))
    assert tileset.status_code == 200
    return str(tileset.json()["root"]["content"]["uri"])


def test_a_private_asset_answers_anonymous_callers_exactly_as_a_missing_one(
    client: TestClient, settings: Settings
) -> None:
    asset_id = private_asset(client, settings)
    uri = content_uri(client, asset_id)
    hidden = answers(client, asset_id, uri, {})
    assert {status for status, _, _ in hidden} == {404}
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=auth(client)).status_code == 204
    assert answers(client, asset_id, uri, {}) == hidden


def test_a_narrowed_token_outside_its_scope_sees_nothing_of_the_asset(
    client: TestClient, settings: Settings
) -> None:
    asset_id = private_asset(client, settings, layer="utilities")
    uri = content_uri(client, asset_id)
    engine = engine_of(client)
    elsewhere, _ = create_token(engine, "viewer", scope="layer:parking")
    other_asset, _ = create_token(engine, "viewer", scope="asset:someotherasset")
    mine, _ = create_token(engine, "viewer", scope=f"asset:{asset_id}")
    by_header = {"Authorization": f"Bearer {elsewhere}"}
    hidden = answers(client, asset_id, uri, by_header)
    hidden_by_query = answers(client, asset_id, uri, {}, f"?access_token={other_asset}")
    assert {status for status, _, _ in hidden + hidden_by_query} == {404}
    seen = client.get(f"/api/v1/assets/{asset_id}", headers={"Authorization": f"Bearer {mine}"})
    assert seen.status_code == 200
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=auth(client)).status_code == 204
    assert answers(client, asset_id, uri, by_header) == hidden
    assert answers(client, asset_id, uri, {}, f"?access_token={other_asset}") == hidden_by_query


def test_a_layer_of_private_assets_answers_anonymous_callers_as_a_layer_that_does_not_exist(
    client: TestClient, settings: Settings
) -> None:
    private_asset(client, settings, layer="utilities")
    hidden = answer(client.get("/tiles/scene/utilities/tileset.json"))
    missing = answer(client.get("/tiles/scene/nothing/tileset.json"))
    assert hidden[0] == 200
    assert (hidden[1], hidden[2]) == (missing[1], missing[2])


def test_roles_that_may_not_read_assets_are_refused_before_any_lookup(
    client: TestClient, settings: Settings
) -> None:
    asset_id = private_asset(client, settings)
    ingest = auth(client, "ingest")
    for method, path in REQUESTS:
        real = client.request(method, path.format(id=asset_id, uri="x.glb"), headers=ingest)
        absent = client.request(method, path.format(id=asset_id[::-1], uri="x.glb"), headers=ingest)
        assert (real.status_code, absent.status_code) == (403, 403), (method, path)
    viewer = auth(client, "viewer")
    assert (
        client.patch(f"/api/v1/assets/{asset_id}", json={"name": "x"}, headers=viewer).status_code
        == 403
    )
    assert (
        client.patch("/api/v1/assets/nothing", json={"name": "x"}, headers=viewer).status_code
        == 403
    )


def test_an_invalid_token_is_still_refused_as_invalid(
    client: TestClient, settings: Settings
) -> None:
    asset_id = private_asset(client, settings)
    forged = {"Authorization": "Bearer ars_" + "x" * 43}
    assert client.get(f"/api/v1/assets/{asset_id}", headers=forged).status_code == 401
    assert client.get(f"/tiles/{asset_id}/tileset.json", headers=forged).status_code == 401
    assert client.get("/api/v1/assets/nothing", headers=forged).status_code == 401
