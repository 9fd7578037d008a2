"""Personal data of field work and participation: the export and erasure of a person cover
their inspections, inspection history, photos and comments, and retention removes photos of
closed inspections and the residents' links to their comments. Rows are written directly, so
these tests hold whatever the routes above them do. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.services.audit import AuditService
from arserver.store.audit import count_of
from arserver.store.retention import apply_personal_retention
from arserver.store.schema import (
    audit_entries,
    comments,
    inspection_events,
    inspection_photos,
    inspections,
    rounds,
)
from tests.arserver.support import engine_of

INSPECTOR = "Inspecteur J. Jansen"
NOW = datetime.now(UTC)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def inspection(engine: Engine, inspection_id: str, by: str, closed: datetime | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(inspections).values(
                id=inspection_id, category="damage", severity="normal",
                description="kabel ligt bloot", status="resolved" if closed else "open",
                lon=4.9, lat=52.37, h=43.0, sensor_ids=[], alert_ids=[], assignee=by,
                created_by=by, created_at=NOW - timedelta(days=500), updated_at=NOW,
                closed_at=closed,
            )
        )  # fmt: skip
        connection.execute(
            insert(inspection_events).values(
                inspection_id=inspection_id, at=NOW, actor=by, change="created",
                to_status="open", note="gezien bij de bushalte",
            )
        )  # fmt: skip
        connection.execute(
            insert(inspection_photos).values(
                id=f"p-{inspection_id}", inspection_id=inspection_id, content_type="image/jpeg",
                width=1, height=1, data=b"\xff\xd8", thumbnail=b"\xff\xd8", created_by=by,
                created_at=NOW,
            )
        )  # fmt: skip


def round_row(engine: Engine, round_id: str, ends: datetime) -> None:
    area = {"type": "Polygon", "coordinates": [[[4, 52], [5, 52], [5, 53], [4, 52]]]}
    with engine.begin() as connection:
        connection.execute(
            insert(rounds).values(
                id=round_id, title="Plein", description="", privacy_notice="-", mode="public",
                area=area, west=4, south=52, east=5, north=53, asset_ids=[],
                starts_at=ends - timedelta(days=30), ends_at=ends, pseudonym_salt="0" * 32,
                created_by="planner", created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip


def comment(
    engine: Engine, comment_id: str, round_id: str | None, author: str, kind: str,
    lon: float = 4.5, lat: float = 52.5,
) -> None:  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            insert(comments).values(
                id=comment_id, round_id=round_id, thread_id=comment_id, lon=lon, lat=lat,
                text=f"reactie {comment_id}", author=author, author_name="Bewoner ABCDEF",
                author_kind=kind, status="visible", created_at=NOW,
            )
        )  # fmt: skip


def column(engine: Engine, table: Any, name: str, key: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(table.c[name]).where(table.c.id == key)).scalar_one()


def test_export_and_erasure_cover_inspections_history_photos_and_comments(
    client: TestClient,
) -> None:
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    create_token(engine, "inspector", INSPECTOR)
    inspection(engine, "i1", INSPECTOR, None)
    inspection(engine, "i2", "someone else", None)
    comment(engine, "c1", None, INSPECTOR, "staff", lon=4.5004321, lat=52.4996789)
    subject = f"/api/v1/privacy/subjects/name:{INSPECTOR}"

    exported = client.get(subject, headers=bearer(admin)).json()
    assert [row["id"] for row in exported["data"]["inspections"]] == ["i1"]
    assert [row["note"] for row in exported["data"]["inspection_history"]] == [
        "gezien bij de bushalte"
    ]
    assert [row["id"] for row in exported["data"]["inspection_photos"]] == ["p-i1"]
    assert [row["text"] for row in exported["data"]["comments"]] == ["reactie c1"]
    assert "data" not in exported["data"]["inspection_photos"][0]  # no image bytes

    erased = client.delete(subject, headers=bearer(admin)).json()["erased"]
    assert (erased["inspections"], erased["inspection_assignments"]) == (1, 1)
    assert erased["comments"] == 1
    assert column(engine, inspections, "created_by", "i1") is None
    assert column(engine, inspections, "assignee", "i1") is None
    assert column(engine, inspections, "description", "i1") == "kabel ligt bloot"
    assert column(engine, inspections, "created_by", "i2") == "someone else"
    assert column(engine, inspection_photos, "created_by", "p-i1") is None
    with engine.connect() as connection:
        history = connection.execute(
            select(inspection_events.c.actor, inspection_events.c.note).where(
                inspection_events.c.inspection_id == "i1"
            )
        ).one()
    assert tuple(history) == (None, None)
    assert column(engine, comments, "text", "c1") == ""
    assert column(engine, comments, "status", "c1") == "erased"
    assert column(engine, comments, "author", "c1") is None
    assert column(engine, comments, "lon", "c1") == pytest.approx(4.5, abs=1e-9)
    assert column(engine, comments, "lat", "c1") == pytest.approx(52.5, abs=1e-9)
    again = client.get(subject, headers=bearer(admin)).json()
    assert again["totals"]["inspections"] == again["totals"]["comments"] == 0


def test_a_resident_is_found_by_their_token_id(client: TestClient) -> None:
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    round_row(engine, "r1", NOW + timedelta(days=5))
    _, resident = create_token(engine, "resident", "resident", scope="round:r1")
    _, other = create_token(engine, "resident", "resident", scope="round:r1")
    comment(engine, "c1", "r1", f"token:{resident.id}", "resident")
    comment(engine, "c2", "r1", f"token:{other.id}", "resident")

    exported = client.get(
        f"/api/v1/privacy/subjects/token:{resident.id}", headers=bearer(admin)
    ).json()
    assert [row["id"] for row in exported["data"]["comments"]] == ["c1"]
    assert "author" not in exported["data"]["comments"][0]


def test_retention_deletes_photos_of_long_closed_inspections_only(
    engine: Engine, settings: Settings
) -> None:
    inspection(engine, "old", INSPECTOR, NOW - timedelta(days=400))
    inspection(engine, "recent", INSPECTOR, NOW - timedelta(days=10))
    inspection(engine, "open", INSPECTOR, None)

    purged = apply_personal_retention(engine, settings)
    assert purged["photos of closed inspections"] == 1
    with engine.connect() as connection:
        left = set(connection.execute(select(inspection_photos.c.inspection_id)).scalars())
        kept = connection.execute(select(inspections.c.id)).scalars().all()
    assert left == {"recent", "open"}
    assert sorted(kept) == ["old", "open", "recent"]
    assert apply_personal_retention(engine, settings)["photos of closed inspections"] == 0


def test_retention_unlinks_residents_of_long_ended_rounds_and_keeps_their_words(
    engine: Engine, settings: Settings
) -> None:
    round_row(engine, "ended", NOW - timedelta(days=100))
    round_row(engine, "recent", NOW - timedelta(days=10))
    comment(engine, "r-old", "ended", "token:abc", "resident")
    comment(engine, "staff-old", "ended", "planner Piet", "staff")
    comment(engine, "r-new", "recent", "token:def", "resident")
    audit = AuditService(engine)
    audit.record("abc", "POST /api/v1/comments", "r-old", "201", None)
    audit.record("def", "POST /api/v1/comments", "r-new", "201", None)

    purged = apply_personal_retention(engine, settings)
    assert purged["residents' links to their comments"] == 1
    assert column(engine, comments, "author", "r-old") is None
    assert column(engine, comments, "text", "r-old") == "reactie r-old"
    assert column(engine, comments, "author_name", "r-old") == "Bewoner ABCDEF"
    assert column(engine, comments, "author", "staff-old") == "planner Piet"
    assert column(engine, comments, "author", "r-new") == "token:def"
    with engine.connect() as connection:
        assert (count_of(connection, ["abc"]), count_of(connection, ["def"])) == (0, 1)
    assert audit.verify().intact


def test_a_resident_s_writes_are_audited_without_their_network(client: TestClient) -> None:
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    now = datetime.now(UTC)
    ring = [[4.89, 52.36], [4.91, 52.36], [4.91, 52.38], [4.89, 52.36]]
    made = client.post(
        "/api/v1/rounds",
        json={
            "title": "Plein", "privacy_notice": "geen adressen", "mode": "public",
            "area": {"type": "Polygon", "coordinates": [ring]}, "assets": [],
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
        headers=bearer(admin),
    ).json()  # fmt: skip
    joined = client.post(
        f"/api/v1/rounds/{made['id']}/participants", headers=bearer(made["link_token"])
    ).json()
    said = client.post(
        "/api/v1/comments",
        json={"round": made["id"], "location": [4.9, 52.37], "text": "Mooi plan"},
        headers=bearer(joined["token"]),
    )
    assert said.status_code == 201, said.text
    with engine.connect() as connection:
        origins = dict(
            connection.execute(
                select(audit_entries.c.action, audit_entries.c.origin).where(
                    audit_entries.c.action.in_(["POST /api/v1/comments", "POST /api/v1/rounds"])
                )
            ).all()
        )
    assert origins["POST /api/v1/comments"] is None  # the resident's
    assert origins["POST /api/v1/rounds"] is not None  # the admin's


def test_an_export_holds_the_subject_s_part_of_what_others_wrote(client: TestClient) -> None:
    """A moderator's or assignee's export holds their own acts, not the words of the people
    whose comments they moderated or whose findings they were given."""
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    inspection(engine, "i1", "inspector A", None)
    with engine.begin() as connection:
        connection.execute(
            update(inspections).where(inspections.c.id == "i1").values(assignee=INSPECTOR)
        )
    comment(engine, "c1", None, "resident B", "resident")
    with engine.begin() as connection:
        connection.execute(
            update(comments)
            .where(comments.c.id == "c1")
            .values(status="hidden", moderation_reason="off topic", moderated_by=INSPECTOR)
        )
    exported = client.get(
        f"/api/v1/privacy/subjects/name:{INSPECTOR}", headers=bearer(admin)
    ).json()["data"]
    assert exported["inspections"] == []
    assert [row["id"] for row in exported["inspection_assignments"]] == ["i1"]
    assert "description" not in exported["inspection_assignments"][0]
    assert exported["comments"] == []
    assert exported["comment_moderation"][0]["moderation_reason"] == "off topic"
    assert "text" not in exported["comment_moderation"][0]


def test_an_erasure_reaches_the_live_overlay(client: TestClient) -> None:
    """The removal reaches a subscriber close around the comment's own place (not only its
    rounded one), and a reply that took its place from the erased comment is rounded too."""
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    inspector, _ = create_token(engine, "inspector", INSPECTOR)
    viewer, _ = create_token(engine, "viewer", "reader")
    finding = {
        "location": [4.9, 52.37, 43.0], "category": "damage", "description": "tegel los",
        "assignee": INSPECTOR,
    }  # fmt: skip
    made = client.post("/api/v1/inspections", json=finding, headers=bearer(inspector))
    assert made.status_code == 201, made.text
    home = [4.90046, 52.37046]  # rounds to 4.900, 52.370: about 55 m away
    said = client.post(
        "/api/v1/comments", json={"location": home, "text": "Ik woon op nummer 12"},
        headers=bearer(inspector),
    )  # fmt: skip
    assert said.status_code == 201, said.text
    reply = client.post(
        "/api/v1/comments", json={"reply_to": said.json()["id"], "text": "Ik ook"},
        headers=bearer(viewer),
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    near = {"center": home, "radius_m": 15}
    said_key, finding_key = f"comment:{said.json()['id']}", f"inspection:{made.json()['id']}"
    with client.websocket_connect(f"/api/v1/live?access_token={viewer}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json({"type": "subscribe", "id": "s1", "area": {"bbox": [4.8, 52.3, 5.0, 52.4]},
                      "layers": ["inspections"]})  # fmt: skip
        ws.send_json({"type": "subscribe", "id": "s2", "area": near, "layers": ["annotations"]})
        held: dict[str, Any] = {}
        while len([m for m in held.values() if m == "snapshot"]) < 2:
            message = ws.receive_json()
            if message["type"] == "snapshot":
                held[message["id"]] = "snapshot"
                held.update({item["key"]: item for item in message["items"]})
        assert held[finding_key]["data"]["assignee"] == INSPECTOR
        assert held[said_key]["data"]["text"] == "Ik woon op nummer 12"
        erased = client.delete(f"/api/v1/privacy/subjects/name:{INSPECTOR}", headers=bearer(admin))
        assert erased.status_code == 200, erased.text
        seen: dict[str, Any] = {}
        while said_key not in seen or finding_key not in seen:
            message = ws.receive_json()
            seen.update({item["key"]: item for item in message.get("items", [])})
    assert seen[finding_key]["data"]["assignee"] is None
    assert seen[said_key].get("removed") is True
    assert "text" not in seen[said_key]["data"]
    assert column(engine, comments, "lon", reply.json()["id"]) == pytest.approx(4.9, abs=1e-9)
    assert column(engine, comments, "lat", reply.json()["id"]) == pytest.approx(52.37, abs=1e-9)
    assert column(engine, comments, "text", reply.json()["id"]) == "Ik ook"
