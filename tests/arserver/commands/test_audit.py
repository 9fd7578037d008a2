"""``arserver audit verify|list``, the token commands' entries and ``arserver privacy
export|erase``; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from arserver.cli import cli
from arserver.config import Settings
from arserver.store.database import open_database
from arserver.store.schema import audit_entries
from tests.arserver.support import database_text

NAME = "Pietje Headset-7"


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    values = {"ARSERVER_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        values["ARSERVER_DATABASE_URL"] = settings.database_url
    return values


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_token_commands_are_recorded_and_an_intact_log_verifies(
    env: dict[str, str], settings: Settings
) -> None:
    code, secret, _ = run(env, "token", "create", "--role", "viewer", "--name", NAME)
    assert code == 0
    _, listed, _ = run(env, "token", "list")
    token_id = listed.splitlines()[1].split("\t")[0]
    assert run(env, "token", "revoke", token_id)[0] == 0
    assert run(env, "token", "revoke", token_id)[0] == 1

    code, out, _ = run(env, "audit", "verify")
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    assert "3 entries" in out

    code, out, _ = run(env, "audit", "list", "--limit", "2")
    assert code == 0
    header, *lines = out.strip().splitlines()
    assert header.split("\t")[:4] == ["seq", "time", "actor", "action"]
    rows = [line.split("\t") for line in lines]
    assert [(r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("2", "cli", "token revoke", token_id, "ok", "local"),
        ("3", "cli", "token revoke", token_id, "refused", "local"),
    ]
    engine = open_database(settings)
    try:
        assert secret.strip() not in database_text(engine)
    finally:
        engine.dispose()


def test_verify_fails_naming_the_first_changed_entry(
    env: dict[str, str], settings: Settings
) -> None:
    for _ in range(3):
        assert run(env, "token", "create", "--role", "viewer")[0] == 0
    engine = open_database(settings)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(audit_entries).where(audit_entries.c.seq == 2).values(object="other")
            )
            at = connection.execute(
                select(audit_entries.c.at).where(audit_entries.c.seq == 2)
            ).scalar_one()
    finally:
        engine.dispose()
    code, out, err = run(env, "audit", "verify")
    assert code == 1
    assert out == ""
    assert "entry 2 " in err
    assert at.isoformat() in err
    assert "changed" in err


def test_the_privacy_commands_export_and_erase_a_person(
    env: dict[str, str], settings: Settings
) -> None:
    assert run(env, "token", "create", "--role", "gis", "--name", NAME)[0] == 0
    code, out, _ = run(env, "privacy", "export", f"name:{NAME}")
    assert code == 0
    document = json.loads(out)
    assert [t["name"] for t in document["data"]["tokens"]] == [NAME]

    code, out, _ = run(env, "privacy", "erase", f"name:{NAME}")
    assert code == 0
    assert json.loads(out)["revoked_tokens"] == 1
    assert run(env, "audit", "verify")[0] == 0
    engine = open_database(settings)
    try:
        assert NAME not in database_text(engine)
    finally:
        engine.dispose()
    _, listed, _ = run(env, "audit", "list")
    assert [line.split("\t")[3] for line in listed.strip().splitlines()[1:]] == [
        "token create", "privacy export", "privacy erase",
    ]  # fmt: skip

    code, _, err = run(env, "privacy", "erase", "somebody")
    assert code == 1
    assert "token:ID" in err


def test_verify_prints_the_head_and_checks_an_expected_entry(env: dict[str, str]) -> None:
    for _ in range(2):
        assert run(env, "token", "create", "--role", "viewer")[0] == 0
    code, out, _ = run(env, "audit", "verify")
    assert code == 0
    head = out.strip().rsplit(" ", 1)[-1]
    seq, _, digest = head.partition(":")
    assert (seq, len(digest)) == ("2", 64)
    assert run(env, "token", "create", "--role", "viewer")[0] == 0
    assert run(env, "audit", "verify", "--expect", head)[0] == 0
    code, _, err = run(env, "audit", "verify", "--expect", f"2:{'0' * 64}")
    assert code == 1
    assert "entry 2" in err
    assert run(env, "audit", "verify", "--expect", "two")[0] == 2


def test_the_privacy_commands_record_the_subject_s_digest_only(env: dict[str, str]) -> None:
    assert run(env, "token", "create", "--role", "gis", "--name", NAME)[0] == 0
    assert run(env, "privacy", "export", f"name:{NAME}")[0] == 0
    code, digest, _ = run(env, "audit", "subject", f"name:{NAME}")
    assert code == 0
    _, listed, _ = run(env, "audit", "list")
    newest = listed.strip().splitlines()[-1].split("\t")
    assert (newest[3], newest[4]) == ("privacy export", digest.strip())
    assert NAME not in listed


def test_sealing_needs_the_key_and_keys_the_log(env: dict[str, str]) -> None:
    assert run(env, "token", "create", "--role", "viewer")[0] == 0
    code, _, err = run(env, "audit", "seal")
    assert code == 1
    assert "audit_key" in err
    keyed = {**env, "ARSERVER_AUDIT_KEY": "s" * 43}
    assert run(keyed, "audit", "verify")[0] == 1  # not sealed yet
    code, out, _ = run(keyed, "audit", "seal")
    assert code == 0, out
    assert run(keyed, "token", "create", "--role", "viewer")[0] == 0
    code, out, _ = run(keyed, "audit", "verify")
    assert (code, "(keyed): 2 entries" in out) == (0, True)
    assert run(env, "audit", "verify")[0] == 1  # without the key it cannot be checked
