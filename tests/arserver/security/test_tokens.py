"""Tokens: shown once, stored hashed, one role each; `arserver token create` prints it alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from arserver.cli import cli
from arserver.config import Settings
from arserver.security.policy import ROLES
from arserver.security.tokens import TokenError, authenticate, create_token, revoke_token
from arserver.store.database import open_database
from arserver.store.schema import tokens


def test_a_token_authenticates_with_its_role_and_is_stored_only_hashed(engine: Engine) -> None:
    secret, record = create_token(engine, "inspector", "tablet 3")
    found = authenticate(engine, secret)
    assert found is not None
    assert (found.id, found.role, found.name) == (record.id, "inspector", "tablet 3")
    assert found.created_at.tzinfo is not None
    with engine.connect() as connection:
        stored = connection.execute(select(tokens.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in str(stored)


def test_wrong_and_revoked_tokens_do_not_authenticate(engine: Engine) -> None:
    secret, record = create_token(engine, "viewer")
    assert authenticate(engine, secret + "x") is None
    assert authenticate(engine, "not-a-token") is None
    assert revoke_token(engine, record.id)
    assert authenticate(engine, secret) is None
    assert not revoke_token(engine, record.id)


def test_unknown_role_is_refused(engine: Engine) -> None:
    with pytest.raises(TokenError, match="unknown role 'root'"):
        create_token(engine, "root")


@pytest.mark.parametrize("role", ROLES)
def test_cli_prints_one_new_token_alone_and_creates_the_database(tmp_path: Path, role: str) -> None:
    scope = ["--scope", "round:r1"] if role == "resident" else []  # residents need one
    result = CliRunner().invoke(
        cli,
        ["token", "create", "--role", role, "--name", "field test", *scope],
        env={"ARSERVER_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.stderr
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n"
    engine = open_database(Settings(data_dir=tmp_path))
    record = authenticate(engine, secret)
    engine.dispose()
    assert record is not None
    assert record.role == role


def test_cli_refuses_an_unknown_role_with_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["token", "create", "--role", "root"], env={"ARSERVER_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert result.stdout == ""
