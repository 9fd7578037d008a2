"""Export and erasure of one person's data (``/api/v1/privacy/subjects/{subject}``), for
admins: what is exported, that erasure removes the person's name everywhere while the audit
chain still verifies, and that the erasure's own entry does not name them. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from arserver.security.policy import ROLES
from arserver.security.tokens import authenticate, create_token
from arserver.services.audit import AuditService
from arserver.store.schema import alerts, alignments, rules
from tests.arserver.support import database_text, engine_of, role_token

NAME = "Jantje Tablet-3 Kerkstraat"
SENSOR = {"id": "s1", "name": "kerb", "kind": "no2", "unit": "ug/m3"}
#: A headset aligned at three points (its frame is ENU at the first one, z up).
ALIGNMENT = {
    "up": "z",
    "pairs": [
        {"client": [0, 0, 0], "world": [121400.0, 487400.0, 0.5], "crs": "EPSG:7415"},
        {"client": [10, 0, 0], "world": [121410.0, 487400.0, 0.5], "crs": "EPSG:7415"},
        {"client": [0, 8, 1.5], "world": [121400.0, 487408.0, 2.0], "crs": "EPSG:7415"},
    ],
}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def audit_of(client: TestClient) -> AuditService:
    audit: AuditService = client.app.state.audit  # type: ignore[attr-defined]
    return audit


def acknowledged_alert(client: TestClient, by: str) -> None:
    """An alert acknowledged under the token name ``by``."""
    now = datetime.now(UTC)
    with engine_of(client).begin() as connection:
        connection.execute(
            insert(rules).values(
                id="r1", name="r", kind="no2", sensor_id=None, above=True, threshold=40,
                reset=35, window_s=0, open_after_s=0, resolve_after_s=0, created_at=now,
            )
        )  # fmt: skip
        connection.execute(
            insert(alerts).values(
                id="a1", rule_id="r1", sensor_id="s1", kind="no2", status="acknowledged",
                value=50.0, opened_at=now, acknowledged_at=now, acknowledged_by=by,
            )
        )  # fmt: skip


def test_the_export_holds_the_tokens_audit_entries_and_acknowledgements_of_a_name(
    client: TestClient,
) -> None:
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    secret, person = create_token(engine, "gis", NAME)
    create_token(engine, "gis", "someone else")
    assert client.post("/api/v1/sensors", json=SENSOR, headers=bearer(secret)).status_code == 201
    acknowledged_alert(client, NAME)

    for subject in (f"name:{NAME}", f"token:{person.id}"):
        answer = client.get(f"/api/v1/privacy/subjects/{subject}", headers=bearer(admin))
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["subject"] == subject
        data = document["data"]
        assert [(t["id"], t["name"], t["role"]) for t in data["tokens"]] == [
            (person.id, NAME, "gis")
        ]
        assert [(e["action"], e["object"], e["result"]) for e in data["audit_entries"]] == [
            ("POST /api/v1/sensors", "s1", "201")
        ]
        assert [a["id"] for a in data["alert_acknowledgements"]] == ["a1"]
        assert "token_hash" not in answer.text
        assert secret not in answer.text
    exports = [e for e in audit_of(client).newest(10) if e.action.startswith("GET /api/v1/pri")]
    digests = [audit_of(client).subject_digest(s) for s in (f"name:{NAME}", f"token:{person.id}")]
    assert [(e.object, e.result) for e in exports] == [
        (f"subject:{digests[0]}", "200"), (f"subject:{digests[1]}", "200"),
    ]  # fmt: skip
    assert digests[0] != digests[1]
    assert all(NAME not in f"{e.action} {e.object}" for e in audit_of(client).newest(100))


def test_an_oidc_subject_is_found_by_its_audit_actor(client: TestClient) -> None:
    admin, _ = create_token(engine_of(client), "admin")
    audit_of(client).record("oidc:idp:4711", "POST /api/v1/assets", "x1", "202", "local")
    audit_of(client).record("oidc:idp:4712", "POST /api/v1/assets", "x2", "202", "local")
    answer = client.get("/api/v1/privacy/subjects/oidc:idp:4711", headers=bearer(admin))
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["tokens"] == []
    assert [e["object"] for e in data["audit_entries"]] == ["x1"]


def test_erasure_revokes_blanks_and_unlinks_and_the_chain_still_verifies(
    client: TestClient,
) -> None:
    engine = engine_of(client)
    admin, admin_record = create_token(engine, "admin")
    secret, person = create_token(engine, "gis", NAME)
    other, other_record = create_token(engine, "gis", "someone else")
    assert client.post("/api/v1/sensors", json=SENSOR, headers=bearer(secret)).status_code == 201
    assert client.get("/api/v1/audit", headers=bearer(secret)).status_code == 403
    aligned = client.post("/api/v1/align", json=ALIGNMENT, headers=bearer(secret))
    assert aligned.status_code == 200, aligned.text
    assert client.post("/api/v1/align", json=ALIGNMENT, headers=bearer(other)).status_code == 200
    acknowledged_alert(client, NAME)
    held = client.get(f"/api/v1/privacy/subjects/name:{NAME}", headers=bearer(admin)).json()
    assert [a["id"] for a in held["data"]["alignments"]] == [aligned.json()["id"]]

    erased = client.delete(f"/api/v1/privacy/subjects/name:{NAME}", headers=bearer(admin))
    assert erased.status_code == 200, erased.text
    summary = erased.json()
    assert summary["revoked_tokens"] == 1
    assert summary["erased"] == {
        "tokens": 1, "audit_entries": 3, "alert_acknowledgements": 1, "alignments": 1,
        **{kind: 0 for kind in summary["erased"] if kind.startswith(("inspection", "comment"))},
    }  # fmt: skip

    assert authenticate(engine, secret) is None
    assert authenticate(engine, other) == other_record
    text = database_text(engine)
    assert NAME not in text
    assert person.id not in {line.split("\t")[2] for line in text.splitlines() if
                             line.startswith("audit_entries:")}  # fmt: skip
    assert "someone else" in text
    assert aligned.json()["id"] not in text
    with engine.connect() as connection:  # the other caller's alignment stays
        assert list(connection.execute(select(alignments.c.owner)).scalars()) == [other_record.id]
    assert audit_of(client).verify().intact

    newest = audit_of(client).newest(1)[0]
    assert (newest.actor, newest.action, newest.result) == (
        admin_record.id, "DELETE /api/v1/privacy/subjects/{subject}", "200",
    )  # fmt: skip
    assert newest.object == f"subject:{audit_of(client).subject_digest(f'name:{NAME}')}"

    again = client.delete(f"/api/v1/privacy/subjects/token:{person.id}", headers=bearer(admin))
    assert set(again.json()["erased"].values()) == {0}
    exported = client.get(f"/api/v1/privacy/subjects/token:{person.id}", headers=bearer(admin))
    data = exported.json()["data"]
    assert [(t["name"], t["revoked_at"] is not None) for t in data["tokens"]] == [("", True)]
    assert data["audit_entries"] == []


def test_a_person_s_live_connection_closes_when_they_are_erased(client: TestClient) -> None:
    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    secret, person = create_token(engine, "viewer", NAME)
    with client.websocket_connect(f"/api/v1/live?access_token={secret}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        erased = client.delete(f"/api/v1/privacy/subjects/token:{person.id}", headers=bearer(admin))
        assert erased.status_code == 200
        closed = ws.receive()
        assert closed["type"] == "websocket.close"
        assert closed["code"] == 4003


def test_the_privacy_routes_are_for_admins_only(client: TestClient) -> None:
    engine = engine_of(client)
    secrets = {role: role_token(engine, role) for role in ROLES}
    _, person = create_token(engine, "viewer", NAME)
    path = f"/api/v1/privacy/subjects/token:{person.id}"
    for role, secret in secrets.items():
        for method in ("GET", "DELETE"):
            status = client.request(method, path, headers=bearer(secret)).status_code
            assert status == (200 if role == "admin" else 403), (role, method)
    for method in ("GET", "DELETE"):
        assert client.request(method, path).status_code == 401
    assert authenticate(engine, secrets["viewer"]) is not None


@pytest.mark.parametrize(
    "subject", ["tablet", "token:", "token:a%20b", "name:", "oidc:", "user:1", "name:a%00b"]
)
def test_a_malformed_subject_is_a_clear_422(client: TestClient, subject: str) -> None:
    admin, _ = create_token(engine_of(client), "admin")
    answer = client.get(f"/api/v1/privacy/subjects/{subject}", headers=bearer(admin))
    assert answer.status_code == 422
    assert "token:ID" in answer.text


def test_an_oidc_subject_covers_every_jwt_of_that_person(client: TestClient) -> None:
    from arserver.security.oidc import subject_of
    from arserver.security.tokens import TokenRecord

    admin, _ = create_token(engine_of(client), "admin")
    now = datetime.now(UTC)
    first = TokenRecord("oidc:ab12cd34:j.devries:1700000000", "Jan de Vries", "gis", now, now)
    second = TokenRecord("oidc:ab12cd34:j.devries:1700003600", "Jan de Vries", "gis", now, now)
    assert subject_of(first) == subject_of(second) == "oidc:ab12cd34:j.devries"
    audit_of(client).record(subject_of(first), "POST /api/v1/assets", "x1", "202", "local")
    audit_of(client).record(first.id, "POST /api/v1/assets", "x0", "202", "local")  # older form
    audit_of(client).record(subject_of(second), "POST /api/v1/assets", "x2", "202", "local")
    acknowledged_alert(client, subject_of(second))
    for subject in ("oidc:ab12cd34:j.devries", second.id):
        answer = client.get(f"/api/v1/privacy/subjects/{subject}", headers=bearer(admin))
        assert answer.status_code == 200
        data = answer.json()["data"]
        assert [e["object"] for e in data["audit_entries"]] == ["x1", "x0", "x2"]
        assert [a["id"] for a in data["alert_acknowledgements"]] == ["a1"]
    erased = client.delete(
        "/api/v1/privacy/subjects/oidc:ab12cd34:j.devries", headers=bearer(admin)
    )
    assert erased.json()["erased"]["audit_entries"] == 3
    assert erased.json()["erased"]["alert_acknowledgements"] == 1
    assert "j.devries" not in database_text(engine_of(client)).replace(
        f"subject:{audit_of(client).subject_digest('oidc:ab12cd34:j.devries')}", ""
    )
    assert audit_of(client).verify().intact


def test_records_name_people_by_stable_subject_token_name_or_resident_token() -> None:
    from arserver.security.actors import person_of
    from arserver.security.policy import Scope
    from arserver.security.tokens import TokenRecord

    now = datetime.now(UTC)
    jwt_caller = TokenRecord("oidc:ab12cd34:j.devries:1700000000", "Jan de Vries", "inspector", now)
    own = TokenRecord("3f2a9c", "tablet 3", "inspector", now)
    resident = TokenRecord("9e8d", "resident", "resident", now, scope=Scope("round", "r1"))
    assert person_of(jwt_caller) == "oidc:ab12cd34:j.devries"
    assert person_of(own) == "tablet 3"
    assert person_of(resident) == "token:9e8d"


def test_the_export_is_bounded_and_says_how_much_more_there_is(client: TestClient) -> None:
    from arserver.services.privacy import MAX_RECORDS
    from arserver.store.audit import GENESIS
    from arserver.store.schema import audit_entries

    engine = engine_of(client)
    admin, _ = create_token(engine, "admin")
    _, device = create_token(engine, "ingest", "gateway 9")
    total = MAX_RECORDS * 5
    now = datetime.now(UTC)
    with engine.begin() as connection:  # rows straight in: the chain does not matter here
        connection.execute(
            insert(audit_entries),
            [
                {
                    "seq": 10_000 + n, "at": now, "actor": device.id, "actor_salt": None,
                    "actor_digest": GENESIS, "action": "POST /api/v1/observations",
                    "object": None, "result": "422", "origin": "local",
                    "prev_hash": GENESIS, "hash": GENESIS,
                }
                for n in range(total)
            ],
        )  # fmt: skip
    answer = client.get(f"/api/v1/privacy/subjects/token:{device.id}", headers=bearer(admin))
    assert answer.status_code == 200
    document = answer.json()
    seqs = [e["seq"] for e in document["data"]["audit_entries"]]
    assert seqs == list(range(10_000 + total - MAX_RECORDS, 10_000 + total))
    assert document["totals"]["audit_entries"] == total
    assert document["more"] == {"audit_entries": [f"/api/v1/audit?actor={device.id}"]}
    page = client.get(document["more"]["audit_entries"][0] + "&limit=10", headers=bearer(admin))
    assert [e["seq"] for e in page.json()["entries"]] == list(range(10_000, 10_010))
