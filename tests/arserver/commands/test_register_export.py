"""``arserver register export``: the register from the database to stdout or a file, in the
format of the file's extension or ``--format``, all sensors or the public ones only."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from arserver.config import Settings
from arserver.services.sensors import SensorService
from arserver.store.database import open_database

BACKENDS = ("sqlite",)


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment of a command on the database of ``settings``, with two sensors."""
    engine = open_database(settings)
    try:
        service = SensorService(engine)
        service.register(
            {"id": "noise-1", "name": "Noise, Leidseplein", "owner": "Gemeente", "public": True,
             "sensor_type": "sound", "themes": ["noise"], "personal_data": False},
            [("laeq", "dB")], [4.8826, 52.3641], None,
        )  # fmt: skip
        service.register(
            {"id": "wifi-2", "name": "Wi-Fi counter", "owner": "Gemeente", "public": False,
             "personal_data": True, "privacy_statement": "https://example.nl/privacy",
             "legal_ground": "public_task"},
            [("devices", "{count}")], [4.8900, 52.3700], None,
        )  # fmt: skip
    finally:
        engine.dispose()
    return {"ARSERVER_DATA_DIR": str(settings.data_dir)}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_register_goes_to_stdout_as_json(env: dict[str, str]) -> None:
    code, stdout, _ = run(env, "register", "export")
    assert code == 0
    sensors = json.loads(stdout)["sensors"]
    assert [s["id"] for s in sensors] == ["noise-1", "wifi-2"]
    assert sensors[1]["legal_ground"] == "public_task"
    assert sensors[1]["measures"] == [{"kind": "devices", "unit": "{count}"}]
    code, stdout, _ = run(env, "register", "export", "--public-only")
    assert [s["id"] for s in json.loads(stdout)["sensors"]] == ["noise-1"]


def test_the_format_follows_the_file_extension(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "register.csv"
    code, _, stderr = run(env, "register", "export", "--out", str(out))
    assert code == 0
    assert stderr.strip() == f"wrote {out} (csv): 2 sensors"
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["personal_data"] for r in rows] == ["no", "yes"]
    mapped = tmp_path / "register.geojson"
    assert run(env, "register", "export", "--out", str(mapped))[0] == 0
    features = json.loads(mapped.read_text(encoding="utf-8"))["features"]
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [4.8826, 52.3641]}
    code, _, stderr = run(env, "register", "export", "--out", str(tmp_path / "register.txt"))
    assert code == 2
    assert "--format" in stderr
    assert not (tmp_path / "register.txt").exists()
