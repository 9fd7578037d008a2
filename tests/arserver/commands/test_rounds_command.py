"""``arserver rounds report ROUND --out FILE [--format]``: the format from the extension or the
option, the file written whole, one line and exit 1 for an unknown round."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from arserver.config import Settings
from arserver.store.database import open_database
from tests.arserver.services.test_round_report import ORDER, ROUND, SECRETS, insert_report_round

BACKENDS = ("sqlite",)


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment of a command on the database of ``settings``, with round r1 in it."""
    engine = open_database(settings)
    try:
        insert_report_round(engine)
    finally:
        engine.dispose()
    values = {"ARSERVER_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        values["ARSERVER_DATABASE_URL"] = settings.database_url
    return values


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for the reports (the data directory is elsewhere)."""
    made = tmp_path / "out"
    made.mkdir()
    return made


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_format_follows_the_extension(env: dict[str, str], folder: Path) -> None:
    for name in ("report.json", "report.csv", "report.HTML"):
        out = folder / name
        code, stdout, stderr = run(env, "rounds", "report", ROUND, "--out", str(out))
        assert (code, stderr) == (0, ""), stderr
        fmt = out.suffix[1:].lower()
        assert stdout.strip() == f"wrote {out} ({fmt}): 8 comments, 3 residents, 3 unanswered"
        text = out.read_text(encoding="utf-8")
        assert all(secret not in text for secret in SECRETS)
    document = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in document["comments"]] == ORDER
    raw = (folder / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1 + len(ORDER)
    assert (folder / "report.HTML").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in folder.iterdir()) == ["report.HTML", "report.csv", "report.json"]


def test_format_overrides_the_extension_and_replaces_the_file(
    env: dict[str, str], folder: Path
) -> None:
    out = folder / "verslag.txt"
    out.write_text("old")
    code, _, stderr = run(env, "rounds", "report", ROUND, "--out", str(out), "--format", "html")
    assert code == 0, stderr
    assert '<html lang="nl">' in out.read_text(encoding="utf-8")


def test_an_unknown_round_exits_1_with_one_line_and_writes_nothing(
    env: dict[str, str], folder: Path
) -> None:
    out = folder / "report.json"
    out.write_text("earlier report")
    code, stdout, stderr = run(env, "rounds", "report", "no-such-round", "--out", str(out))
    assert code == 1
    assert stdout == ""
    assert stderr.splitlines() == ["arserver rounds report: error: no round 'no-such-round'"]
    assert [p.name for p in folder.iterdir()] == ["report.json"]
    assert out.read_text() == "earlier report"


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary_one(
    env: dict[str, str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = folder / "report.csv"
    out.write_text("earlier report")

    def refuse(_source: object, _target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("arserver.commands.files.os.replace", refuse)
    code, _, stderr = run(env, "rounds", "report", ROUND, "--out", str(out))
    assert code == 1
    assert stderr.splitlines() == [
        f"arserver rounds report: error: cannot write {out}: No space left on device"
    ]
    assert [p.name for p in folder.iterdir()] == ["report.csv"]
    assert out.read_text() == "earlier report"


def test_an_extension_without_a_format_is_a_usage_error(env: dict[str, str], folder: Path) -> None:
    code, _, stderr = run(env, "rounds", "report", ROUND, "--out", str(folder / "report.pdf"))
    assert code == 2
    assert "--format" in stderr
    assert list(folder.iterdir()) == []


def test_a_folder_that_does_not_exist_exits_1_with_one_line(
    env: dict[str, str], folder: Path
) -> None:
    out = folder / "missing" / "report.json"
    code, _, stderr = run(env, "rounds", "report", ROUND, "--out", str(out))
    assert code == 1
    assert len(stderr.splitlines()) == 1
    assert stderr.startswith("arserver rounds report: error: cannot write to ")
