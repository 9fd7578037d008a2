"""Comments over HTTP: who may write where and when, threads, moderation and answers, what
each reader sees, hostile text, the audit log, and live delivery on the annotations layer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from arserver.security.tokens import authenticate
from arserver.store.schema import asset_features, assets, comment_events
from tests.arserver.api.test_rounds import (
    OUTSIDE_AREA,
    OUTSIDE_EXTENT,
    POINT,
    at,
    bearer,
    close,
    join,
    make_round,
)
from tests.arserver.support import auth, engine_of, insert_asset

BACKENDS = ("sqlite",)


def post(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/comments", json=body, headers=headers)


def comment(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("location", POINT)
    body.setdefault("text", "Graag meer bomen")
    made = post(client, headers, **body)
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    return answer


def listed(client: TestClient, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/comments", params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["comments"])


def test_a_resident_comments_in_their_round_under_a_pseudonym(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, name = join(client, made)
    first = comment(client, resident, round=made["id"], text="Meer bankjes")
    assert first["author_name"] == name
    assert first["author_kind"] == "resident"
    assert first["round"] == made["id"]
    assert first["thread"] == first["id"]
    assert first["location"] == POINT
    assert first["status"] == "visible"
    assert "author" not in first
    assert "moderation" not in first
    second = comment(client, resident, round=made["id"], text="En een fontein")
    assert second["author_name"] == name  # stable within the round
    record = authenticate(engine_of(client), resident["Authorization"].removeprefix("Bearer "))
    assert record is not None
    rounds = client.app.state.rounds  # type: ignore[attr-defined]
    own, other_round = rounds.get(made["id"]), rounds.get(make_round(client, planner)["id"])
    assert rounds.pseudonym_of(own, record) == name
    assert rounds.pseudonym_of(other_round, record) != name  # the same person elsewhere
    for reader in (resident, planner, auth(client, "viewer")):
        for item in listed(client, reader, round=made["id"]):
            assert "author" not in item
            assert item["author_name"] == name
    shown = client.get(f"/api/v1/rounds/{made['id']}").json()
    assert shown["comment_count"] == 2


def test_the_round_s_shared_link_cannot_comment(client: TestClient) -> None:
    made = make_round(client, auth(client, "planner"))
    refused = post(client, bearer(made["link_token"]), location=POINT, text="hoi", round=made["id"])
    assert refused.status_code == 403
    assert "join the round first" in refused.json()["detail"]
    assert f"/api/v1/rounds/{made['id']}/participants" in refused.json()["detail"]


def test_the_round_s_link_reads_its_visible_comments_before_joining(client: TestClient) -> None:
    """Whoever has the public link sees what was said before reacting: the round's visible
    comments, not hidden ones, not another round's."""
    planner = auth(client, "planner")
    made, other = make_round(client, planner), make_round(client, planner)
    resident, _ = join(client, made)
    said = comment(client, resident, round=made["id"], text="Meer bankjes")
    rude = comment(client, resident, round=made["id"], text="Iets grofs")
    comment(client, join(client, other)[0], round=other["id"], text="Elders")
    url = f"/api/v1/comments/{rude['id']}"
    assert (
        client.post(f"{url}/hide", json={"reason": "schelden"}, headers=planner).status_code == 200
    )
    link = bearer(made["link_token"])
    assert [c["id"] for c in listed(client, link, round=made["id"])] == [said["id"]]
    assert [c["id"] for c in listed(client, link)] == [said["id"]]  # its own round by default
    assert client.get(f"/api/v1/comments/{said['id']}", headers=link).status_code == 200
    assert client.get(url, headers=link).status_code == 404
    elsewhere = client.get("/api/v1/comments", params={"round": other["id"]}, headers=link)
    assert elsewhere.status_code == 403


def test_a_round_admits_comments_only_within_its_window(client: TestClient) -> None:
    planner = auth(client, "planner")
    upcoming = make_round(
        client, planner, starts_at=at(timedelta(hours=2)), ends_at=at(timedelta(days=3))
    )
    resident, _ = join(client, upcoming)
    early = post(client, resident, location=POINT, text="te vroeg", round=upcoming["id"])
    assert early.status_code == 409
    assert "opens at" in early.json()["detail"]
    assert post(client, planner, location=POINT, text="x", round=upcoming["id"]).status_code == 409
    ended = make_round(client, planner)
    late_resident, _ = join(client, ended)
    comment(client, late_resident, round=ended["id"])
    close(client, planner, ended["id"])
    late = post(client, late_resident, location=POINT, text="te laat", round=ended["id"])
    assert late.status_code == 409
    assert "closed at" in late.json()["detail"]


def test_comments_outside_the_round_s_area_or_the_extent_are_refused(
    client: TestClient, nsgi_inside: np.ndarray
) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    outside = post(client, resident, location=OUTSIDE_AREA, text="x", round=made["id"])
    assert outside.status_code == 422
    assert f"outside the area of round {made['id']!r}" in outside.json()["detail"]
    abroad = post(client, planner, location=OUTSIDE_EXTENT, text="x")
    assert abroad.status_code == 422
    assert "outside the municipality's extent" in abroad.json()["detail"]
    (point,) = nsgi_inside[nsgi_inside["point_id"] == 30010679]  # NSGI, east of Amsterdam
    rd = post(
        client, planner, location=[float(point["rd_x"]), float(point["rd_y"]),
                                   float(point["nap_h"])], crs="EPSG:7415", text="Diemen",
    )  # fmt: skip
    assert rd.status_code == 201, rd.text
    lon, lat, h = rd.json()["location"]
    assert abs(lon - point["etrs89_lon"]) < 1e-7
    assert abs(lat - point["etrs89_lat"]) < 1e-7
    assert abs(h - point["etrs89_h"]) < 0.001


def test_residents_comment_only_in_their_own_public_round(client: TestClient) -> None:
    planner = auth(client, "planner")
    mine, theirs = make_round(client, planner), make_round(client, planner)
    staff = make_round(client, planner, mode="staff")
    resident, _ = join(client, mine)
    elsewhere = post(client, resident, location=POINT, text="x", round=theirs["id"])
    assert elsewhere.status_code == 403
    assert mine["id"] in elsewhere.json()["detail"]
    in_staff = post(client, resident, location=POINT, text="x", round=staff["id"])
    in_none = post(client, resident, location=POINT, text="x", round="f" * 32)
    assert in_staff.status_code == in_none.status_code == 422  # a staff round: as if missing
    assert in_staff.json()["detail"].replace(staff["id"], "f" * 32) == in_none.json()["detail"]
    nowhere = post(client, resident, location=POINT, text="x")
    assert nowhere.status_code == 403
    assert "round" in nowhere.json()["detail"]
    missing = post(client, planner, location=POINT, text="x", round="f" * 32)
    assert missing.status_code == 422
    staff_comment = comment(client, auth(client, "viewer"), round=staff["id"])
    assert staff_comment["author_kind"] == "staff"
    assert staff_comment["author_name"] == "viewer token"  # the token's name
    assert comment(client, planner)["round"] is None  # staff comment outside any round
    assert post(client, auth(client, "ingest"), location=POINT, text="x").status_code == 403


def test_replies_form_threads_in_their_round(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, name = join(client, made)
    neighbour, _ = join(client, made)
    opening = comment(client, resident, round=made["id"], text="Waar komen de fietsen?")
    reply = comment(client, neighbour, reply_to=opening["id"], location=None, text="Achter")
    assert reply["thread"] == opening["id"]
    assert reply["reply_to"] == opening["id"]
    assert reply["round"] == made["id"]
    assert reply["location"] == opening["location"]
    deeper = comment(client, resident, reply_to=reply["id"], text="Dank", round=made["id"])
    assert deeper["thread"] == opening["id"]
    assert deeper["author_name"] == name
    comment(client, resident, round=made["id"], text="Ander onderwerp")
    thread = listed(client, planner, thread=opening["id"])
    assert [c["id"] for c in thread] == [deeper["id"], reply["id"], opening["id"]]
    other = make_round(client, planner)
    crossed = post(client, planner, reply_to=opening["id"], text="x", round=other["id"])
    assert crossed.status_code == 422
    assert "round" in crossed.json()["detail"]
    assert post(client, planner, reply_to="f" * 32, text="x").status_code == 422


def test_moderators_hide_and_restore_and_only_they_see_hidden_comments(
    client: TestClient,
) -> None:
    planner, viewer = auth(client, "planner"), auth(client, "viewer")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    rude = comment(client, resident, round=made["id"], text="Iets grofs")
    url = f"/api/v1/comments/{rude['id']}"
    assert client.post(f"{url}/hide", json={"reason": "x"}, headers=viewer).status_code == 403
    assert client.post(f"{url}/hide", json={"reason": "x"}, headers=resident).status_code == 403
    hidden = client.post(f"{url}/hide", json={"reason": "schelden"}, headers=planner)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["status"] == "hidden"
    assert hidden.json()["moderation"]["reason"] == "schelden"
    assert client.post(f"{url}/hide", json={"reason": "x"}, headers=planner).status_code == 409
    for reader in (viewer, resident):
        assert listed(client, reader, round=made["id"]) == []
        assert client.get(url, headers=reader).status_code == 404
    seen = listed(client, planner, round=made["id"])
    assert [(c["status"], c["moderation"]["reason"], c["text"]) for c in seen] == [
        ("hidden", "schelden", "Iets grofs")
    ]
    answer = post(client, resident, reply_to=rude["id"], text="x")
    missing = post(client, resident, reply_to="0" * 32, text="x")
    assert answer.status_code == missing.status_code == 422  # as if it were not there
    assert answer.json()["detail"].replace(rude["id"], "0" * 32) == missing.json()["detail"]
    assert "hidden" not in answer.text
    by_moderator = post(client, planner, reply_to=rude["id"], text="x")
    assert by_moderator.status_code == 409
    assert "hidden" in by_moderator.json()["detail"]
    responded = client.post(f"{url}/response", json={"text": "Bedankt"}, headers=planner)
    assert responded.status_code == 409  # restore it first
    assert client.get("/api/v1/rounds/" + made["id"]).json()["comment_count"] == 0
    restored = client.post(f"{url}/restore", headers=planner)
    assert restored.status_code == 200
    assert restored.json()["status"] == "visible"
    assert restored.json()["moderation"]["reason"] == "schelden"  # kept on record
    assert "moderation_history" not in restored.json()
    history = client.get(url, headers=planner).json()["moderation_history"]
    assert [(h["action"], h["text"], h["by"]) for h in history] == [
        ("hidden", "schelden", "planner token"), ("restored", None, "planner token")
    ]  # fmt: skip
    assert history[0]["at"] <= history[1]["at"]
    for reader in (viewer, resident):
        shown = client.get(url, headers=reader).json()
        assert "moderation_history" not in shown
        assert "moderation" not in shown
    assert client.post(f"{url}/restore", headers=planner).status_code == 409
    assert client.get(url, headers=resident).json()["text"] == "Iets grofs"
    assert client.post("/api/v1/comments/nope/restore", headers=planner).status_code == 404


def test_planners_answer_comments_and_everyone_sees_the_answer(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    question = comment(client, resident, round=made["id"], text="Komt er een zebrapad?")
    url = f"/api/v1/comments/{question['id']}/response"
    assert client.post(url, json={"text": "x"}, headers=resident).status_code == 403
    answered = client.post(url, json={"text": "Ja, in 2027."}, headers=planner)
    assert answered.status_code == 200, answered.text
    assert answered.json()["response"]["text"] == "Ja, in 2027."
    assert answered.json()["response"]["by"] == "planner token"
    (seen,) = listed(client, resident, round=made["id"])
    assert seen["response"]["text"] == "Ja, in 2027."
    assert "by" not in seen["response"]
    client.post(url, json={"text": "Ja, in het voorjaar van 2027."}, headers=planner)
    (seen,) = listed(client, resident)  # a round's token reads its own round by default
    assert seen["response"]["text"] == "Ja, in het voorjaar van 2027."


def test_a_comment_s_moderation_stops_at_a_hundred_steps(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = comment(client, planner)
    url = f"/api/v1/comments/{made['id']}"
    with engine_of(client).begin() as connection:  # 99 steps so far
        connection.execute(
            insert(comment_events),
            [
                {"comment_id": made["id"], "at": datetime.now(UTC), "actor": "x",
                 "action": "answered", "text": "a" * 5000}
                for _ in range(99)
            ],
        )  # fmt: skip
    hundredth = client.post(f"{url}/response", json={"text": "Laatste"}, headers=planner)
    assert hundredth.status_code == 200, hundredth.text
    for path, body in [("hide", {"reason": "x"}), ("response", {"text": "Nog een"})]:
        refused = client.post(f"{url}/{path}", json=body, headers=planner)
        assert refused.status_code == 409
        assert "moderated 100 times" in refused.json()["detail"]
    shown = client.get(url, headers=planner).json()
    assert len(shown["moderation_history"]) == 100
    assert (shown["status"], shown["response"]["text"]) == ("visible", "Laatste")


def test_a_resident_token_of_a_staff_round_reads_no_comment_of_it(client: TestClient) -> None:
    planner, admin = auth(client, "planner"), auth(client, "admin")
    internal = make_round(client, planner, mode="staff")
    written = comment(client, planner, round=internal["id"], text="Intern overleg")
    issued = client.post(
        "/api/v1/tokens",
        json={"role": "resident", "scope": f"round:{internal['id']}"},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    resident = bearer(issued.json()["secret"])
    for query in ({}, {"round": internal["id"]}):
        refused = client.get("/api/v1/comments", params=query, headers=resident)
        assert refused.status_code == 404, refused.text
    assert client.get(f"/api/v1/comments/{written['id']}", headers=resident).status_code == 404
    in_staff = post(client, resident, round=internal["id"], location=POINT, text="x")
    in_none = post(client, resident, round="f" * 32, location=POINT, text="x")
    assert in_staff.status_code == in_none.status_code == 422
    assert in_staff.json()["detail"].replace(internal["id"], "f" * 32) == in_none.json()["detail"]
    reply = post(client, resident, reply_to=written["id"], text="x")
    assert reply.status_code == 422
    assert "Intern overleg" not in reply.text


def test_hide_and_restore_are_in_the_audit_log_with_the_comment_as_object(
    client: TestClient,
) -> None:
    planner = auth(client, "planner")
    made = comment(client, planner)
    url = f"/api/v1/comments/{made['id']}"
    client.post(f"{url}/hide", json={"reason": "dubbel"}, headers=planner)
    client.post(f"{url}/restore", headers=planner)
    entries = client.get("/api/v1/audit", headers=auth(client, "admin")).json()["entries"]
    done = [(e["action"], e["object"], e["result"]) for e in entries]
    assert ("POST /api/v1/comments/{comment_id}/hide", made["id"], "200") in done
    assert ("POST /api/v1/comments/{comment_id}/restore", made["id"], "200") in done
    assert ("POST /api/v1/comments", made["id"], "201") in done


def test_hostile_text_is_stored_and_returned_verbatim(client: TestClient) -> None:
    planner = auth(client, "planner")
    texts = [
        "<script>alert('x')</script>",
        "'; DROP TABLE comments; --",
        "\u202egnp.exe \U0001f333 \u00e9\u0301 \r\n\ttab",
        "x" * 5000,
    ]
    for text in texts:
        made = comment(client, planner, text=text)
        assert client.get(f"/api/v1/comments/{made['id']}", headers=planner).json()["text"] == text
    raw = [
        '{"location": [4.9, 52.37], "text": "\\ud800"}',  # a lone surrogate
        '{"location": [4.9, 52.37], "text": "a\\u0000b"}',  # a NUL character
        '{"location": [1e400, 52.37], "text": "x"}',  # no double holds it
        '{"location": [1%s, 52.37], "text": "x"}' % ("0" * 400),
    ]
    for content in raw:
        refused = client.post(
            "/api/v1/comments",
            content=content,
            headers={**planner, "Content-Type": "application/json"},
        )
        assert refused.status_code == 422, refused.text
    assert post(client, planner, location=POINT, text="x" * 5001).status_code == 422
    assert post(client, planner, location=POINT, text="").status_code == 422
    assert post(client, planner, location=[True, 52.0], text="x").status_code == 422
    assert post(client, planner, location=[4.9], text="x").status_code == 422
    assert post(client, planner, text="no place").status_code == 422
    huge = client.post(
        "/api/v1/comments",
        content=b'{"text": "' + b"x" * (20 << 20) + b'"}',
        headers={**planner, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert (
        client.get("/api/v1/comments", params={"round": "a\x00"}, headers=planner).status_code
        == 422
    )
    assert client.get("/api/v1/comments/a%00b", headers=planner).status_code == 404
    assert client.get("/api/v1/comments/" + "x" * 40, headers=planner).status_code == 404
    assert listed(client, planner, limit=1000)[-1]["text"] == texts[0]  # nothing half-written


def test_comments_are_listed_by_place_and_asset_page_by_page(client: TestClient) -> None:
    planner = auth(client, "planner")
    insert_asset(engine_of(client), "bridge", public=True, extent=(4.89, 52.36, 4.91, 52.38))
    made = [comment(client, planner, text=f"n{k}") for k in range(5)]
    on_bridge = comment(client, planner, asset="bridge", text="brug")
    assert on_bridge["asset"] == "bridge"
    far = comment(client, planner, location=[5.12, 52.09], text="Utrecht")
    near = listed(client, planner, bbox="4.8,52.3,5.0,52.4")
    assert far["id"] not in {c["id"] for c in near}
    assert len(near) == 6
    assert [c["id"] for c in listed(client, planner, asset="bridge")] == [on_bridge["id"]]
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/comments", params=query, headers=planner).json()
        seen += [c["id"] for c in page["comments"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [far["id"], on_bridge["id"], *[m["id"] for m in reversed(made)]]
    bad = client.get("/api/v1/comments", params={"cursor": "nonsense"}, headers=planner)
    assert bad.status_code == 422
    for hostile in ("0001-01-01T00:00:00+05:00|x", "9999-12-31T23:00:00-05:00|x",
                    "2026-01-01T00:00:00|x", "2026-01-01T00:00:00+00:00|a\x00b",
                    "2026-13-01T00:00:00+00:00|x", "2026-01-01T00:00:00+00:00|"):  # fmt: skip
        forged = base64.urlsafe_b64encode(hostile.encode()).decode().rstrip("=")
        refused = client.get("/api/v1/comments", params={"cursor": forged}, headers=planner)
        assert refused.status_code == 422, (hostile, refused.text)
        assert "cursor" in refused.json()["detail"]
    assert (
        client.get("/api/v1/comments", params={"bbox": "1,2"}, headers=planner).status_code == 422
    )
    assert client.get("/api/v1/comments").status_code == 401


def test_a_live_subscriber_receives_comments_and_sees_hidden_ones_leave(
    client: TestClient,
) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, name = join(client, made)
    viewer = auth(client, "viewer")["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/v1/live?access_token={viewer}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json(
            {"type": "subscribe", "id": "plein", "area": {"bbox": [4.85, 52.35, 4.95, 52.4]},
             "layers": ["annotations"]}
        )  # fmt: skip
        assert ws.receive_json()["type"] == "snapshot"
        written = comment(client, resident, round=made["id"], text="Live!")
        update = receive_update(ws)
        (item,) = update["items"]
        assert item["key"] == f"comment:{written['id']}"
        assert item["layer"] == "annotations"
        assert item["data"]["text"] == "Live!"
        assert item["data"]["author"] == name
        assert item["data"]["round"] == made["id"]
        assert item["position"] == POINT
        client.post(
            f"/api/v1/comments/{written['id']}/hide", json={"reason": "test"}, headers=planner
        )
        (gone,) = receive_update(ws)["items"]
        assert gone["key"] == item["key"]
        assert gone.get("removed") is True
        assert "text" not in gone["data"]


def test_staff_comments_in_a_public_round_appear_under_their_role_s_label(
    client: TestClient,
) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    by_planner = comment(client, planner, round=made["id"])
    by_viewer = comment(client, auth(client, "viewer"), round=made["id"])
    reply = comment(client, planner, reply_to=by_viewer["id"], location=None, text="Klopt")
    names = {c["id"]: c["author_name"] for c in listed(client, resident)}
    assert names == {
        by_planner["id"]: "Gemeente", by_viewer["id"]: "Genodigde",
        reply["id"]: "Gemeente",
    }  # fmt: skip
    assert "planner token" not in client.get("/api/v1/comments", headers=resident).text
    assert comment(client, planner)["author_name"] == "planner token"  # outside any round


def test_residents_never_learn_of_private_assets_through_comments(client: TestClient) -> None:
    planner = auth(client, "planner")
    engine = engine_of(client)
    insert_asset(engine, "secret-plan", public=False)
    insert_asset(engine, "open-plan", public=True)
    with engine.begin() as connection:
        for asset_id in ("secret-plan", "open-plan"):
            connection.execute(
                insert(asset_features).values(
                    asset_id=asset_id, feature_id="cable-7", lon=4.9, lat=52.37, h=1.0
                )
            )
    public, internal = make_round(client, planner), make_round(client, planner, mode="staff")
    resident, _ = join(client, public)
    on_secret = {"asset": "secret-plan", "feature": "cable-7", "text": "x"}
    refused = post(client, planner, round=public["id"], **on_secret)
    assert refused.status_code == 422
    assert "not public" in refused.json()["detail"]
    assert post(client, resident, round=public["id"], **on_secret).json()["detail"] == (
        "there is no asset 'secret-plan'"
    )
    assert comment(client, planner, round=internal["id"], **on_secret)["asset"] == "secret-plan"
    opened = comment(client, planner, round=public["id"], asset="open-plan", feature="cable-7")
    reply = comment(client, resident, reply_to=opened["id"], location=None, text="Waar?")
    assert (reply["asset"], reply["feature"]) == ("open-plan", "cable-7")
    with engine.begin() as connection:  # the plan is withdrawn from the public
        connection.execute(update(assets).where(assets.c.id == "open-plan").values(public=False))
    for item in listed(client, resident):
        assert (item["asset"], item["feature"]) == (None, None)
        assert item["location"][:2] == [4.9, 52.37]
    shown = client.get(f"/api/v1/comments/{opened['id']}", headers=resident).json()
    assert (shown["asset"], shown["feature"]) == (None, None)
    assert "open-plan" not in client.get("/api/v1/comments", headers=resident).text
    late = comment(client, resident, reply_to=opened["id"], location=None, text="En nu?")
    assert (late["asset"], late["feature"]) == (None, None)
    staff_view = {c["id"]: c for c in listed(client, planner, round=public["id"])}
    assert staff_view[opened["id"]]["asset"] == "open-plan"  # staff still see it
    assert staff_view[late["id"]]["asset"] is None  # the reply never stored it


def test_replies_answer_as_if_unreadable_comments_did_not_exist(client: TestClient) -> None:
    planner = auth(client, "planner")
    public, other = make_round(client, planner), make_round(client, planner)
    internal = make_round(client, planner, mode="staff")
    resident, _ = join(client, public)
    missing = post(client, resident, reply_to="0" * 32, text="x")
    assert missing.status_code == 422
    targets = [
        comment(client, planner, round=internal["id"]),  # a staff round's
        comment(client, planner),  # outside any round
        comment(client, planner, round=other["id"]),  # another public round's
    ]
    for target in targets:
        probed = post(client, resident, reply_to=target["id"], text="x")
        assert probed.status_code == missing.status_code
        assert probed.json()["detail"].replace(target["id"], "0" * 32) == missing.json()["detail"]
        assert internal["id"] not in probed.text
        assert other["id"] not in probed.text


def test_the_openapi_schema_documents_every_comment_answer_and_example(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    paths, models = schema["paths"], schema["components"]["schemas"]
    for path, method, code, model in [
        ("/api/v1/comments", "post", "201", "CommentOut"),
        ("/api/v1/comments", "get", "200", "CommentPage"),
        ("/api/v1/comments/{comment_id}", "get", "200", "CommentOut"),
        ("/api/v1/comments/{comment_id}/hide", "post", "200", "CommentOut"),
        ("/api/v1/comments/{comment_id}/restore", "post", "200", "CommentOut"),
        ("/api/v1/comments/{comment_id}/response", "post", "200", "CommentOut"),
    ]:
        content = paths[path][method]["responses"][code]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/" + model), (path, method)
    assert "moderation_history" in models["CommentOut"]["properties"]
    for body in ("HideIn", "ResponseIn", "CommentIn"):
        assert models[body]["examples"], body


def receive_update(ws: Any) -> dict[str, Any]:
    """The next update (the test client's receive blocks until one comes)."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == "update":
            return message
