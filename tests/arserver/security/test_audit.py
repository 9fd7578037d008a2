"""The audit log: entries for writes, refusals and admin actions with who, what, result and
origin and never a secret; the hash chain's verification and the tampering it finds; purges
and concurrent appends that keep it valid; admins only. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, insert, select, update
from starlette.websockets import WebSocketDisconnect

from arserver.app import create_app
from arserver.config import Settings
from arserver.security.policy import ROLES
from arserver.security.tokens import create_token
from arserver.services.audit import AuditService
from arserver.store.audit import GENESIS, actor_digest, entry_hash, purge_before
from arserver.store.retention import apply_personal_retention
from arserver.store.schema import audit_chain, audit_entries
from tests.arserver.support import database_text, engine_of, role_token

CLIENT = ("203.0.113.7", 50123)
CLIENT_NETWORK = "203.0.113.0/24"
SENSOR = {"id": "s1", "name": "kerb", "kind": "no2", "unit": "ug/m3"}


@pytest.fixture
def audited(settings: Settings) -> Iterator[TestClient]:
    """The application, called from a client at 203.0.113.7."""
    with TestClient(create_app(settings), client=CLIENT) as test_client:
        yield test_client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def entries(client: TestClient) -> list[dict[str, Any]]:
    with engine_of(client).connect() as connection:
        rows = connection.execute(select(audit_entries).order_by(audit_entries.c.seq))
        return [dict(row._mapping) for row in rows]


def service(client: TestClient) -> AuditService:
    audit: AuditService = client.app.state.audit  # type: ignore[attr-defined]
    return audit


def test_writes_and_refusals_are_recorded_with_who_what_result_and_origin(
    audited: TestClient,
) -> None:
    engine = engine_of(audited)
    gis, gis_record = create_token(engine, "gis")
    viewer, viewer_record = create_token(engine, "viewer")
    assert audited.post("/api/v1/sensors", json=SENSOR, headers=bearer(gis)).status_code == 201
    assert audited.get("/api/v1/sensors/s1", headers=bearer(viewer)).status_code == 200
    assert audited.post("/api/v1/sensors", json=SENSOR).status_code == 401
    denied = audited.post("/api/v1/sensors", json=SENSOR, headers=bearer(viewer))
    assert denied.status_code == 403
    assert audited.get("/api/v1/audit", headers=bearer(viewer)).status_code == 403
    invalid = "ars_" + "x" * 43
    assert audited.get("/api/v1/sensors/s1", headers=bearer(invalid)).status_code == 401
    assert audited.delete("/api/v1/assets/nope", headers=bearer(gis)).status_code == 404

    seen = [(e["actor"], e["action"], e["object"], e["result"]) for e in entries(audited)]
    assert seen == [
        (gis_record.id, "POST /api/v1/sensors", "s1", "201"),
        ("anonymous", "POST /api/v1/sensors", "1 refused without a credential", "401"),
        (viewer_record.id, "POST /api/v1/sensors", None, "403"),
        (viewer_record.id, "GET /api/v1/audit", None, "403"),
        ("invalid token", "GET /api/v1/sensors/{sensor_id}", "s1", "401"),
        (gis_record.id, "DELETE /api/v1/assets/{asset_id}", "nope", "404"),
    ]  # the successful read is not recorded
    for entry in entries(audited):
        assert entry["origin"] == CLIENT_NETWORK
        assert abs(entry["at"] - datetime.now(UTC)) < timedelta(minutes=5)
        assert entry["at"].tzinfo is not None


def test_token_creation_and_revocation_are_recorded_and_no_secret_is_stored(
    audited: TestClient,
) -> None:
    engine = engine_of(audited)
    admin, admin_record = create_token(engine, "admin")
    made = audited.post("/api/v1/tokens", json={"role": "viewer"}, headers=bearer(admin))
    assert made.status_code == 201
    new_id, new_secret = made.json()["id"], made.json()["secret"]
    # An admin who pastes a secret where the id belongs.
    assert audited.delete(f"/api/v1/tokens/{new_secret}", headers=bearer(admin)).status_code == 404
    assert audited.get(f"/api/v1/assets?access_token={new_secret}x").status_code == 401
    assert audited.delete(f"/api/v1/tokens/{new_id}", headers=bearer(admin)).status_code == 204

    seen = [(e["actor"], e["action"], e["object"], e["result"]) for e in entries(audited)]
    assert seen[0] == (admin_record.id, "POST /api/v1/tokens", new_id, "201")
    assert seen[1][1:] == ("DELETE /api/v1/tokens/{token_id}", "[redacted]", "404")
    assert seen[2] == ("invalid token", "GET /api/v1/assets", None, "401")
    assert seen[3] == (admin_record.id, "DELETE /api/v1/tokens/{token_id}", new_id, "204")
    text = database_text(engine)
    assert "audit_entries" in text
    for secret in (admin, new_secret):
        assert secret not in text
        assert secret[4:] not in text


def test_reading_tokens_and_the_audit_log_is_recorded_as_an_admin_action(
    audited: TestClient,
) -> None:
    admin, admin_record = create_token(engine_of(audited), "admin")
    assert audited.get("/api/v1/tokens", headers=bearer(admin)).status_code == 200
    assert audited.get("/api/v1/audit", headers=bearer(admin)).status_code == 200
    seen = [(e["actor"], e["action"], e["result"]) for e in entries(audited)]
    assert seen == [
        (admin_record.id, "GET /api/v1/tokens", "200"),
        (admin_record.id, "GET /api/v1/audit", "200"),
    ]


def test_a_refused_live_handshake_is_recorded(audited: TestClient) -> None:
    ingest, ingest_record = create_token(engine_of(audited), "ingest")
    for secret in ("ars_" + "y" * 43, ingest):
        with (
            pytest.raises(WebSocketDisconnect),
            audited.websocket_connect(f"/api/v1/live?access_token={secret}") as ws,
        ):
            ws.receive_json()
    seen = [(e["actor"], e["action"], e["result"], e["origin"]) for e in entries(audited)]
    assert seen == [
        ("invalid token", "WEBSOCKET /api/v1/live", "refused", CLIENT_NETWORK),
        (ingest_record.id, "WEBSOCKET /api/v1/live", "refused", CLIENT_NETWORK),
    ]


def test_the_audit_log_is_for_admins_only_and_comes_in_pages(audited: TestClient) -> None:
    engine = engine_of(audited)
    secrets = {role: role_token(engine, role) for role in ROLES}
    for role, secret in secrets.items():
        status = audited.get("/api/v1/audit", headers=bearer(secret)).status_code
        assert status == (200 if role == "admin" else 403), role
    assert audited.get("/api/v1/audit").status_code == 401
    first = audited.get("/api/v1/audit?limit=2", headers=bearer(secrets["admin"])).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2]
    assert first["next"] == 2
    rest = audited.get("/api/v1/audit?after=2&limit=1000", headers=bearer(secrets["admin"]))
    assert [e["seq"] for e in rest.json()["entries"]][:1] == [3]
    assert rest.json()["next"] is None
    assert (
        audited.get("/api/v1/audit?limit=1001", headers=bearer(secrets["admin"])).status_code == 422
    )


def fill(audit: AuditService, count: int) -> None:
    for n in range(count):
        assert audit.record(f"actor-{n % 3}", "POST /api/v1/sensors", f"s{n}", "201", "local")


def problem_of(audit: AuditService) -> tuple[int, str]:
    result = audit.verify()
    assert result.problem is not None, "the tampering was not found"
    return result.problem.seq, result.problem.reason


def test_an_untouched_log_verifies(engine: Engine) -> None:
    audit = AuditService(engine)
    empty = audit.verify()
    assert empty.intact
    assert empty.count == 0
    assert empty.head_hash == GENESIS
    fill(audit, 5)
    result = audit.verify()
    assert result.intact
    assert result.count == 5


def test_the_hash_covers_every_field_and_the_previous_hash() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    base = (7, at, "d" * 64, "POST /x", "o", "201", "203.0.113.0/24", "p" * 64)
    reference = entry_hash(*base)
    for index in range(len(base)):
        changed = list(base)
        changed[index] = (
            at + timedelta(microseconds=1) if isinstance(base[index], datetime)
            else 8 if isinstance(base[index], int) else None
        )  # fmt: skip
        assert entry_hash(*changed) != reference, index


def tamper_field(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(audit_entries).where(audit_entries.c.seq == 3).values(result="403")
        )


def tamper_actor(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(audit_entries).where(audit_entries.c.seq == 3).values(actor="someone else")
        )


def delete_middle(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(audit_entries).where(audit_entries.c.seq == 3))


def delete_newest(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(audit_entries).where(audit_entries.c.seq == 5))


def delete_oldest(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(audit_entries).where(audit_entries.c.seq == 1))


def insert_forged(engine: Engine) -> None:
    """A sixth entry that follows the fifth correctly: only the chain's head can tell."""
    with engine.begin() as connection:
        last = connection.execute(select(audit_entries).where(audit_entries.c.seq == 5)).one()
        at, salt = datetime.now(UTC), "ab" * 16
        digest = actor_digest(salt, "intruder")
        hashed = entry_hash(6, at, digest, "DELETE /x", None, "204", None, last.hash)
        connection.execute(
            insert(audit_entries).values(
                seq=6, at=at, actor="intruder", actor_salt=salt, actor_digest=digest,
                action="DELETE /x", object=None, result="204", origin=None,
                prev_hash=last.hash, hash=hashed,
            )
        )  # fmt: skip


def reorder(engine: Engine) -> None:
    """Entries 2 and 3 swap places (their sequence numbers)."""
    with engine.begin() as connection:
        for old, new in ((2, 1000), (3, 2), (1000, 3)):
            connection.execute(
                update(audit_entries).where(audit_entries.c.seq == old).values(seq=new)
            )


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [(tamper_field, 3), (tamper_actor, 3), (delete_middle, 4), (delete_newest, 5),
     (delete_oldest, 2), (insert_forged, 6), (reorder, 2)],
)  # fmt: skip
def test_tampering_is_found_at_the_first_bad_entry(
    engine: Engine, tamper: Any, first_bad: int
) -> None:
    audit = AuditService(engine)
    fill(audit, 5)
    tamper(engine)
    seq, _reason = problem_of(audit)
    assert seq == first_bad


def test_erasing_an_actor_keeps_the_chain_valid(engine: Engine) -> None:
    from arserver.store.audit import erase_actors

    audit = AuditService(engine)
    fill(audit, 6)
    with engine.begin() as connection:
        assert erase_actors(connection, ["actor-1"]) == 2
    assert audit.verify().intact
    assert "actor-1" not in database_text(engine)


def test_a_purge_keeps_the_chain_verifiable_and_is_itself_recorded(engine: Engine) -> None:
    audit = AuditService(engine)
    fill(audit, 6)
    with engine.connect() as connection:
        fourth = connection.execute(
            select(audit_entries.c.at).where(audit_entries.c.seq == 4)
        ).scalar_one()
    with engine.begin() as connection:
        assert purge_before(connection, fourth) == 3
    with engine.begin() as connection:
        assert purge_before(connection, fourth) == 0  # twice: nothing more
    result = audit.verify()
    assert result.intact
    assert result.count == 4
    newest = audit.newest(1)[0]
    assert (newest.seq, newest.actor, newest.action) == (7, "system", "audit purge")
    delete_oldest_kept = delete(audit_entries).where(audit_entries.c.seq == 4)
    with engine.begin() as connection:
        connection.execute(delete_oldest_kept)
    assert problem_of(audit)[0] == 5


def test_the_retention_loop_purges_by_the_audit_setting(settings: Settings, engine: Engine) -> None:
    audit = AuditService(engine)
    fill(audit, 3)
    kept = settings.model_copy(update={"audit_retention_days": None})
    assert "audit log entries" not in apply_personal_retention(engine, kept)
    later = datetime.now(UTC) + timedelta(days=366)
    assert apply_personal_retention(engine, settings, now=later)["audit log entries"] == 3
    result = audit.verify()
    assert result.intact
    assert result.count == 1
    fill(audit, 2)
    assert audit.verify().intact


def test_a_log_without_its_chain_head_is_not_purged_and_retention_goes_on(
    settings: Settings, engine: Engine
) -> None:
    fill(AuditService(engine), 2)
    with engine.begin() as connection:
        connection.execute(delete(audit_chain))
    later = datetime.now(UTC) + timedelta(days=366)
    assert apply_personal_retention(engine, settings, now=later)["audit log entries"] == 0
    with engine.connect() as connection:
        assert len(connection.execute(select(audit_entries)).all()) == 2


def test_concurrent_appends_keep_one_valid_chain(engine: Engine) -> None:
    audit = AuditService(engine)
    threads, each = 6, 20
    start = threading.Barrier(threads)

    def append(n: int) -> None:
        start.wait()
        for k in range(each):
            assert audit.record(f"thread-{n}", "POST /api/v1/observations", str(k), "200")

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert audit.failures == 0
    result = audit.verify()
    assert result.intact
    assert result.count == threads * each
    with engine.connect() as connection:
        seqs = list(connection.execute(select(audit_entries.c.seq).order_by("seq")).scalars())
    assert seqs == list(range(1, threads * each + 1))


def test_concurrent_appends_from_two_engines_keep_one_valid_chain(settings: Settings) -> None:
    """Two engines stand for two server processes (their own connection pools)."""
    from arserver.store.database import open_database

    engines = [open_database(settings) for _ in range(2)]
    try:
        audits = [AuditService(e) for e in engines]
        start = threading.Barrier(4)

        def append(audit: AuditService) -> None:
            start.wait()
            for k in range(15):
                assert audit.record("cli", "token create", str(k))

        workers = [threading.Thread(target=append, args=(audits[n % 2],)) for n in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        result = audits[0].verify()
        assert result.intact
        assert result.count == 60
    finally:
        for opened in engines:
            opened.dispose()


def test_a_failed_audit_write_is_counted_and_the_write_still_succeeds(
    audited: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_of(audited)
    gis, _ = create_token(engine, "gis")
    with engine.begin() as connection:
        connection.execute(delete(audit_chain))  # the log can no longer be appended to
    with caplog.at_level("ERROR", logger="arserver.services.audit"):
        response = audited.post("/api/v1/sensors", json=SENSOR, headers=bearer(gis))
    assert response.status_code == 201
    assert service(audited).failures == 1
    assert "AUDIT LOG WRITE FAILED" in caplog.text
    assert gis not in caplog.text
    assert not service(audited).verify().intact


def test_refusals_without_a_credential_are_summarised_per_network_not_written_one_by_one(
    audited: TestClient,
) -> None:
    for _ in range(30):
        assert audited.post("/api/v1/sensors", json=SENSOR).status_code == 401
        with (
            pytest.raises(WebSocketDisconnect),
            audited.websocket_connect("/api/v1/live") as ws,
        ):
            ws.receive_json()
    seen = [(e["actor"], e["object"], e["origin"]) for e in entries(audited)]
    assert seen == [("anonymous", "1 refused without a credential", CLIENT_NETWORK)]
    assert service(audited).anonymous_refusals.total == 60


def test_refused_credentials_are_still_recorded_one_by_one(audited: TestClient) -> None:
    invalid = "ars_" + "z" * 43
    for _ in range(3):
        assert audited.post("/api/v1/sensors", json=SENSOR, headers=bearer(invalid)).status_code
    assert [e["actor"] for e in entries(audited)] == ["invalid token"] * 3


def test_the_summary_reports_what_was_counted_since_the_network_s_last_entry() -> None:
    from arserver.services.audit import RefusalSummary

    now = [0.0]
    summary = RefusalSummary(interval_s=60, max_entries=2, max_networks=3, clock=lambda: now[0])
    assert summary.note("a") == 1
    assert [summary.note("a") for _ in range(4)] == [None] * 4
    assert summary.note("b") == 1
    assert summary.note("c") is None  # two entries this minute already
    now[0] = 61.0
    assert summary.note("a") == 5
    assert summary.note("c") == 2
    assert summary.total == 9


def test_the_summary_holds_a_bounded_number_of_networks() -> None:
    from arserver.services.audit import RefusalSummary

    now = [0.0]
    summary = RefusalSummary(interval_s=60, max_entries=100, max_networks=2, clock=lambda: now[0])
    for network in ("a", "a", "b", "c"):  # c makes room by forgetting a
        summary.note(network)
    now[0] = 61.0
    assert summary.note("a") == 1
    assert summary.total == 5


def test_successful_observation_batches_are_not_recorded_but_refusals_are(
    audited: TestClient,
) -> None:
    engine = engine_of(audited)
    gis, gis_record = create_token(engine, "gis")
    ingest, ingest_record = create_token(engine, "ingest")
    viewer, viewer_record = create_token(engine, "viewer")
    assert audited.post("/api/v1/sensors", json=SENSOR, headers=bearer(gis)).status_code == 201
    batch = {"observations": [{"sensor": "s1", "time": "2025-01-01T00:00:00Z", "value": 1.0}]}
    for secret in (ingest, gis):
        assert (
            audited.post("/api/v1/observations", json=batch, headers=bearer(secret)).status_code
            == 200
        )
    refused = audited.post("/api/v1/observations", json=batch, headers=bearer(viewer))
    assert refused.status_code == 403
    seen = [(e["actor"], e["action"], e["result"]) for e in entries(audited)]
    assert seen == [
        (gis_record.id, "POST /api/v1/sensors", "201"),
        (viewer_record.id, "POST /api/v1/observations", "403"),
    ]
    assert ingest_record.id not in {e["actor"] for e in entries(audited)}


def test_verify_sees_one_snapshot_while_entries_are_appended_and_purged(engine: Engine) -> None:
    audit = AuditService(engine)
    fill(audit, 30)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                audit.record("writer", "POST /api/v1/sensors", None, "201", "local")
                with engine.begin() as connection:
                    newest = connection.execute(
                        select(audit_entries.c.at).order_by(audit_entries.c.seq.desc()).limit(1)
                    ).scalar_one()
                    purge_before(connection, newest - timedelta(microseconds=1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        results = [repository_verify(engine) for _ in range(25)]
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors
    assert all(r.intact for r in results), [str(r.problem) for r in results if not r.intact]
    tamper_field_newest(engine)
    assert not audit.verify().intact


def repository_verify(engine: Engine) -> Any:
    """A verification that reads two entries a page, so that it takes many statements."""
    from arserver.store.audit import verify

    return verify(engine, page=2)


def tamper_field_newest(engine: Engine) -> None:
    with engine.begin() as connection:
        newest = connection.execute(
            select(audit_entries.c.seq).order_by(audit_entries.c.seq.desc()).limit(1)
        ).scalar_one()
        connection.execute(
            update(audit_entries).where(audit_entries.c.seq == newest - 1).values(result="999")
        )


KEY = "k3y-" + "x" * 40


@pytest.fixture
def keyed(settings: Settings) -> Iterator[Engine]:
    """The database opened with an audit key."""
    from pydantic import SecretStr

    from arserver.store.database import open_database

    opened = open_database(settings.model_copy(update={"audit_key": SecretStr(KEY)}))
    yield opened
    opened.dispose()


def cut_newest_and_rewrite_head(engine: Engine) -> None:
    with engine.begin() as connection:
        fourth = connection.execute(select(audit_entries).where(audit_entries.c.seq == 4)).one()
        connection.execute(delete(audit_entries).where(audit_entries.c.seq == 5))
        connection.execute(update(audit_chain).values(last_seq=4, last_hash=fourth.hash))


def cut_oldest_and_move_anchor(engine: Engine) -> None:
    with engine.begin() as connection:
        second = connection.execute(select(audit_entries).where(audit_entries.c.seq == 2)).one()
        connection.execute(delete(audit_entries).where(audit_entries.c.seq == 1))
        connection.execute(update(audit_chain).values(anchor_seq=2, anchor_hash=second.prev_hash))


def null_an_actor(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(audit_entries)
            .where(audit_entries.c.seq == 3)
            .values(actor=None, actor_salt=None)
        )


@pytest.mark.parametrize(
    "tamper", [cut_newest_and_rewrite_head, cut_oldest_and_move_anchor, null_an_actor]
)
def test_with_a_key_manipulations_without_recomputed_hashes_are_found(
    keyed: Engine, tamper: Any
) -> None:
    audit = AuditService(keyed)
    fill(audit, 5)
    assert audit.verify().intact
    assert audit.verify().keyed
    tamper(keyed)
    result = audit.verify()
    assert result.problem is not None, "the manipulation was not found"


def test_without_a_key_an_anchor_moved_without_a_purge_entry_is_found(engine: Engine) -> None:
    audit = AuditService(engine)
    fill(audit, 5)
    cut_oldest_and_move_anchor(engine)
    seq, reason = problem_of(audit)
    assert (seq, "without a purge entry" in reason) == (2, True)


def test_with_a_key_hashes_are_hmacs_that_plain_sha256_cannot_forge(keyed: Engine) -> None:
    audit = AuditService(keyed)
    fill(audit, 3)
    with keyed.connect() as connection:
        entry = connection.execute(select(audit_entries).where(audit_entries.c.seq == 2)).one()
    plain = entry_hash(
        entry.seq, entry.at, entry.actor_digest, entry.action, entry.object, entry.result,
        entry.origin, entry.prev_hash,
    )  # fmt: skip
    assert plain != entry.hash
    with keyed.begin() as connection:
        connection.execute(
            update(audit_entries).where(audit_entries.c.seq == 3).values(result="403")
        )
    assert problem_of(audit)[0] == 3


def test_with_a_key_erasures_purges_and_retention_keep_the_chain_valid(
    keyed: Engine, settings: Settings
) -> None:
    from arserver.store.audit import erase_actors

    audit = AuditService(keyed)
    fill(audit, 6)
    with keyed.begin() as connection:
        assert erase_actors(connection, ["actor-1"]) == 2
    assert audit.verify().intact
    later = datetime.now(UTC) + timedelta(days=366)
    assert apply_personal_retention(keyed, settings, now=later)["audit log entries"] == 6
    fill(audit, 2)
    result = audit.verify()
    assert result.intact, str(result.problem)
    assert result.count == 3


def test_a_keyed_log_refuses_appends_and_fails_verification_without_the_key(
    keyed: Engine, engine: Engine
) -> None:
    fill(AuditService(keyed), 2)
    plain = AuditService(engine)
    assert plain.record("cli", "token create") is None
    assert plain.failures == 1
    result = plain.verify()
    assert result.problem is not None
    assert "audit_key" in result.problem.reason
    assert AuditService(keyed).verify().intact


def test_a_log_written_without_a_key_is_keyed_by_sealing_it(engine: Engine, keyed: Engine) -> None:
    fill(AuditService(engine), 3)
    audit = AuditService(keyed)
    assert audit.record("cli", "token create") is None  # not sealed yet: refused
    assert not audit.verify().intact
    sealed = audit.seal()
    assert sealed.intact
    fill(audit, 2)
    result = audit.verify()
    assert (result.intact, result.keyed, result.count) == (True, True, 5)
    with keyed.begin() as connection:  # a downgrade: the seal removed
        connection.execute(update(audit_chain).values(keyed_from=None, mac=None))
    assert not audit.verify().intact


def test_verify_checks_an_expected_entry_noted_earlier(engine: Engine) -> None:
    audit = AuditService(engine)
    fill(audit, 4)
    noted = audit.verify()
    assert (noted.head_seq, noted.intact) == (4, True)
    fill(audit, 2)
    assert audit.verify(expect=(noted.head_seq, noted.head_hash)).intact
    assert not audit.verify(expect=(noted.head_seq, "0" * 64)).intact
    assert not audit.verify(expect=(99, noted.head_hash)).intact
    with engine.begin() as connection:  # the log rewritten from entry 4 on, consistently
        connection.execute(delete(audit_entries).where(audit_entries.c.seq >= 4))
        third = connection.execute(select(audit_entries).where(audit_entries.c.seq == 3)).one()
        connection.execute(update(audit_chain).values(last_seq=3, last_hash=third.hash))
    assert audit.verify().intact  # without a key, only the noted head tells
    assert not audit.verify(expect=(noted.head_seq, noted.head_hash)).intact
