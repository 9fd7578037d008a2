"""``arserver parking import-spdp`` and ``import-datex2`` on the sample feeds: the summary
line, the database afterwards, and one clear line with exit status 1 for unusable input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from arserver.config import Settings
from arserver.services.parking import ParkingService
from arserver.store.database import open_database

#: The command runs the same code on both engines (the importer's tests cover both).
BACKENDS = ("sqlite",)

DATA = Path(__file__).resolve().parents[2] / "data" / "parking"
SPDP_INDEX = str(DATA / "spdp" / "index.json")
DATEX2 = DATA / "datex2"


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The test's database; raw observations kept forever, since the samples are from 2025."""
    return {"ARSERVER_DATA_DIR": str(settings.data_dir), "ARSERVER_RAW_RETENTION_DAYS": "none"}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["parking", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_import_spdp_prints_a_summary_and_imports_once(
    env: dict[str, str], settings: Settings
) -> None:
    code, out, err = run(env, "import-spdp", SPDP_INDEX)
    assert code == 0, err
    assert out.splitlines() == [
        "spdp: 3 car parks (3 new, 0 updated, 0 unchanged, 0 refused); counts: 3 stored, "
        "0 duplicates, 0 rejected, 0 of unknown car parks skipped; 0 problems"
    ]
    code, out, _ = run(env, "import-spdp", SPDP_INDEX)
    assert code == 0
    assert "3 unchanged" in out
    assert "0 stored, 3 duplicates" in out

    engine = open_database(settings)
    try:
        places = ParkingService(engine).places(kind="car_park")
    finally:
        engine.dispose()
    assert sorted(p.place["capacity"] or 0 for p in places) == [525, 640, 860]


def test_import_datex2_reads_a_separate_status_publication(env: dict[str, str]) -> None:
    code, out, err = run(
        env,
        "import-datex2",
        str(DATEX2 / "v2_table.xml"),
        "--status",
        str(DATEX2 / "v2_status.xml"),
    )
    assert code == 0, err
    assert "3 new" in out
    assert "2 stored" in out  # Papendorp (from occupied and capacity) and Science Park
    assert "1 statuses without a count" in out  # Jaarbeurs: only closed


def test_counts_older_than_the_raw_retention_are_rejected_with_a_note(
    env: dict[str, str],
) -> None:
    code, out, err = run({**env, "ARSERVER_RAW_RETENTION_DAYS": "90"}, "import-spdp", SPDP_INDEX)
    assert code == 0
    assert "3 new" in out
    assert "0 stored, 0 duplicates, 3 rejected" in out
    assert err.count("note: ") == 3
    assert "too_old" in err


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        ("import-spdp", b"{not json", "is not valid JSON"),
        ("import-spdp", b'{"hello": []}', "is not an SPDP document"),
        ("import-spdp", b'{"ParkingFacilities": [{"name": "no id"}]}', "no usable car park"),
        ("import-datex2", b"<d2LogicalModel><unclosed>", "not well-formed XML"),
        ("import-datex2", b"<feed/>", "not a DATEX II parking publication"),
        (
            "import-datex2",
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            "DTD",
        ),
    ],
)
def test_a_broken_document_fails_with_one_line(
    env: dict[str, str], tmp_path: Path, command: str, content: bytes, message: str
) -> None:
    path = tmp_path / "feed"
    path.write_bytes(content)
    code, out, err = run(env, command, str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"arserver parking {command}: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_missing_file_or_status_fails_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.json")
    code, _, err = run(env, "import-spdp", missing)
    assert code == 1
    assert err.strip() == f"arserver parking import-spdp: error: feed file not found: {missing}"

    code, _, err = run(env, "import-datex2", str(DATEX2 / "v3_table.xml"), "--status", missing)
    assert code == 1
    assert "status publication: feed file not found" in err
    assert "Traceback" not in err
