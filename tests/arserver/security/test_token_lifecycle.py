"""Tokens that expire, tokens narrowed to one asset or layer, and the admin's token routes and
commands; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from starlette.websockets import WebSocketDisconnect

from arserver.cli import cli
from arserver.security.tokens import (
    TokenError,
    authenticate,
    create_token,
    list_tokens,
    parse_lifetime,
    revoke_token,
)
from arserver.store.schema import tokens
from arserver.store.tilestore.local import LocalTileStore
from tests.arserver.support import auth, engine_of, insert_asset


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
     ("2w", timedelta(weeks=2)), (" 7 d ", timedelta(days=7))],
)  # fmt: skip
def test_lifetimes_are_read_in_minutes_hours_days_and_weeks(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "1y", "99999w", "1.5d", "30 days"])
def test_other_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(TokenError):
        parse_lifetime(text)


@pytest.mark.parametrize(
    "scope", ["asset:", "asset:../x", "layer:", "room:1", "asset", "layer:a\x00b", "x" * 200]
)
def test_malformed_scopes_are_refused(engine: Engine, scope: str) -> None:
    with pytest.raises(TokenError, match="scope"):
        create_token(engine, "viewer", scope=scope)


@pytest.mark.parametrize(
    ("role", "scope"),
    [("resident", None), ("resident", "asset:a1"), ("viewer", "round:r1"),
     ("planner", "round-link:r1"), ("resident", "round:"), ("resident", "round:../r")],
)  # fmt: skip
def test_resident_tokens_and_only_they_are_limited_to_one_round(
    engine: Engine, role: str, scope: str | None
) -> None:
    with pytest.raises(TokenError):
        create_token(engine, role, scope=scope)


@pytest.mark.parametrize("scope", ["round:r1", "round-link:r1"])
def test_a_resident_token_names_its_round(engine: Engine, scope: str) -> None:
    secret, _record = create_token(engine, "resident", scope=scope)
    found = authenticate(engine, secret)
    assert found is not None
    assert found.scope is not None
    assert (str(found.scope), found.scope.round_id) == (scope, "r1")


def test_an_expired_token_no_longer_authenticates(engine: Engine) -> None:
    secret, record = create_token(engine, "viewer", expires_in=timedelta(days=1))
    assert record.expires_at is not None
    assert authenticate(engine, secret) == record
    with engine.begin() as connection:
        connection.execute(
            update(tokens)
            .where(tokens.c.id == record.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert authenticate(engine, secret) is None


def publish_stub(client: TestClient, asset_id: str, layer: str) -> None:
    """A private ready asset in ``layer`` with a one-file tileset."""
    insert_asset(engine_of(client), asset_id, layer=layer, extent=(4.7, 52.3, 4.8, 52.4))
    store: LocalTileStore = client.app.state.store  # type: ignore[attr-defined]
    folder = store.asset_dir(asset_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tileset.json").write_text(json.dumps({"asset": {"version": "1.1"}}))


def test_an_asset_scoped_token_reads_that_asset_only(client: TestClient) -> None:
    publish_stub(client, "lamp", "street")
    publish_stub(client, "pipe", "cables")
    secret, _ = create_token(engine_of(client), "viewer", scope="asset:lamp")
    assert client.get("/tiles/lamp/tileset.json", headers=bearer(secret)).status_code == 200
    assert client.get(f"/tiles/lamp/tileset.json?access_token={secret}").status_code == 200
    # Another asset is, for this token, as if it did not exist.
    assert client.get("/tiles/pipe/tileset.json", headers=bearer(secret)).status_code == 404
    # Everything that is not reading assets is refused, with the reason.
    sensors = client.get("/api/v1/observations/latest?bbox=4,52,5,53", headers=bearer(secret))
    assert sensors.status_code == 403
    assert "limited to asset:lamp" in sensors.json()["detail"]


def test_a_layer_scoped_token_reads_the_layer_and_its_scene_only(client: TestClient) -> None:
    publish_stub(client, "pipe", "cables")
    publish_stub(client, "cable", "cables")
    publish_stub(client, "lamp", "street")
    secret, _ = create_token(engine_of(client), "viewer", scope="layer:cables")
    headers = bearer(secret)
    assert client.get("/tiles/pipe/tileset.json", headers=headers).status_code == 200
    assert client.get("/tiles/lamp/tileset.json", headers=headers).status_code == 404
    street = client.get("/tiles/scene/street/tileset.json", headers=headers).json()
    assert street["root"]["children"] == []


def test_admins_create_list_and_revoke_tokens_over_http(client: TestClient) -> None:
    admin = auth(client, "admin")
    created = client.post(
        "/api/v1/tokens",
        json={"role": "viewer", "name": "headset 4", "expires": "30d", "scope": "layer:cables"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("ars_")
    assert (body["role"], body["scope"], body["name"]) == ("viewer", "layer:cables", "headset 4")
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    listed = client.get("/api/v1/tokens", headers=admin).json()["tokens"]
    assert body["id"] in {t["id"] for t in listed}
    assert all("secret" not in t and "token_hash" not in t for t in listed)
    assert (
        client.get("/tiles/scene/cables/tileset.json", headers=bearer(body["secret"])).status_code
        == 200
    )
    assert client.delete(f"/api/v1/tokens/{body['id']}", headers=admin).status_code == 204
    assert (
        client.get("/tiles/scene/cables/tileset.json", headers=bearer(body["secret"])).status_code
        == 401
    )
    assert client.delete(f"/api/v1/tokens/{body['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize("role", ["gis", "inspector", "planner", "viewer", "ingest"])
def test_only_admins_manage_tokens(client: TestClient, role: str) -> None:
    headers = auth(client, role)
    assert client.get("/api/v1/tokens", headers=headers).status_code == 403
    refused = client.post("/api/v1/tokens", json={"role": "admin"}, headers=headers)
    assert refused.status_code == 403
    assert client.get("/api/v1/tokens").status_code == 401


def test_bad_token_requests_are_refused_clearly(client: TestClient) -> None:
    admin = auth(client, "admin")
    for body, fragment in (
        ({"role": "root"}, "unknown role"),
        ({"role": "viewer", "expires": "forever"}, "lifetime"),
        ({"role": "viewer", "scope": "room:3"}, "scope"),
    ):
        response = client.post("/api/v1/tokens", json=body, headers=admin)
        assert response.status_code == 422
        assert fragment in response.text


def test_the_commands_create_list_and_revoke(tmp_path: Path) -> None:
    env = {"ARSERVER_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(
        cli, ["token", "create", "--role", "viewer", "--expires", "2w", "--scope", "asset:lamp"],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.output.strip()
    listed = runner.invoke(cli, ["token", "list"], env=env)
    assert listed.exit_code == 0
    header, row = listed.output.strip().splitlines()
    assert header.split("\t")[:3] == ["id", "role", "scope"]
    fields = row.split("\t")
    assert fields[1:3] == ["viewer", "asset:lamp"]
    assert fields[5] == "-"  # not revoked
    assert secret not in listed.output
    revoked = runner.invoke(cli, ["token", "revoke", fields[0]], env=env)
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(cli, ["token", "revoke", fields[0]], env=env)
    assert again.exit_code == 1
    assert "no token" in again.output
    bad = runner.invoke(cli, ["token", "create", "--role", "viewer", "--expires", "soon"], env=env)
    assert bad.exit_code == 1
    assert "lifetime" in bad.output


def test_the_list_shows_revoked_and_expired_tokens_without_secrets(engine: Engine) -> None:
    secret, record = create_token(engine, "gis", "laptop")
    infos = {info.id: info for info in list_tokens(engine)}
    assert infos[record.id].revoked_at is None
    assert infos[record.id].name == "laptop"
    assert secret not in repr(infos)


def live_welcome(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    assert message["type"] == "welcome", message
    return message


def test_revoking_over_http_closes_the_token_s_live_connection(client: TestClient) -> None:
    admin = auth(client, "admin")
    made = client.post("/api/v1/tokens", json={"role": "viewer"}, headers=admin).json()
    with client.websocket_connect(f"/api/v1/live?access_token={made['secret']}") as ws:
        live_welcome(ws)
        assert client.delete(f"/api/v1/tokens/{made['id']}", headers=admin).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4003
    stats = client.get("/api/v1/live/stats", headers=admin).json()
    assert stats["revoked_closed"] == 1


def test_the_periodic_check_closes_connections_of_tokens_revoked_elsewhere(
    client: TestClient,
) -> None:
    engine = engine_of(client)
    secret, record = create_token(engine, "viewer")
    other, _ = create_token(engine, "viewer")
    with (
        client.websocket_connect(f"/api/v1/live?access_token={secret}") as revoked,
        client.websocket_connect(f"/api/v1/live?access_token={other}") as kept,
    ):
        live_welcome(revoked)
        live_welcome(kept)
        assert revoke_token(engine, record.id)  # as `arserver token revoke` without Redis does
        app = client.app
        assert app.state.tokens.close_invalid(app.state.hub) == 1  # type: ignore[attr-defined]
        with pytest.raises(WebSocketDisconnect) as closed:
            revoked.receive_json()
        assert closed.value.code == 4003
        kept.send_json({"type": "subscribe", "id": "s1", "area": {"bbox": [4, 52, 5, 53]}})
        assert kept.receive_json()["type"] == "snapshot"


def test_the_hub_forgets_an_expired_token_once_authentication_refuses_it_anyway(
    client: TestClient,
) -> None:
    engine = engine_of(client)
    secret, record = create_token(engine, "viewer", expires_in=timedelta(days=1))
    app: Any = client.app
    hub = app.state.hub
    with client.websocket_connect(f"/api/v1/live?access_token={secret}") as ws:
        live_welcome(ws)
        with engine.begin() as connection:
            connection.execute(
                update(tokens)
                .where(tokens.c.id == record.id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert app.state.tokens.close_invalid(hub) == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4003
    assert hub.remembered_revocations == 1
    started = hub.clock()
    hub.clock = lambda: started + hub.revocation_memory_s
    assert hub.remembered_revocations == 0
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/api/v1/live?access_token={secret}") as again,
    ):
        again.receive_json()
    assert refused.value.code == 4001  # refused by authentication, before the hub


def test_a_scoped_token_lists_and_reads_only_the_assets_in_its_scope(client: TestClient) -> None:
    publish_stub(client, "pipe", "cables")
    publish_stub(client, "lamp", "street")
    secret, _ = create_token(engine_of(client), "viewer", scope="layer:cables")
    listed = client.get("/api/v1/assets", headers=bearer(secret))
    assert [a["id"] for a in listed.json()["assets"]] == ["pipe"]
    assert client.get("/api/v1/assets/pipe", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/assets/lamp", headers=bearer(secret)).status_code == 404
    refused = client.patch("/api/v1/assets/pipe", json={"name": "x"}, headers=bearer(secret))
    assert refused.status_code == 403


def test_a_token_says_who_it_is_and_what_it_may_do(client: TestClient) -> None:
    engine = engine_of(client)
    planner, _ = create_token(engine, "planner", "meeting room", expires_in=timedelta(days=1))
    me = client.get("/api/v1/tokens/current", headers=bearer(planner))
    assert me.status_code == 200
    body = me.json()
    assert (body["role"], body["name"], body["scope"]) == ("planner", "meeting room", None)
    assert body["expires_at"] is not None
    assert {"read_assets", "acknowledge_alerts", "manage_rounds"} <= set(body["actions"])
    assert "change_assets" not in body["actions"]
    narrowed, _ = create_token(engine, "viewer", scope="layer:demo")
    limited = client.get("/api/v1/tokens/current", headers=bearer(narrowed)).json()
    assert (limited["scope"], limited["actions"]) == ("layer:demo", ["read_assets", "introspect"])
    assert client.get("/api/v1/tokens/current").status_code == 401
