"""The converter's processes: a point cloud converts through the service with py3dtiles'
workers, and however a conversion ends, no process it started is left behind (the child leads
a process group of its own, killed as a whole)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arserver.config import Settings
from arserver.jobs import runner
from tests.arserver.conftest import TILE_BACKENDS
from tests.arserver.support import auth, run_jobs, upload
from tests.support import wait_until
from tests.tiles.support import amersfoort_laz

BACKENDS = TILE_BACKENDS

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").is_file(), reason="lists processes through /proc (Linux)"
)


def _group(pgid: int) -> dict[int, str]:
    """The live processes of process group ``pgid`` (a zombie has ended: it only waits to be
    reaped by init): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue  # ended meanwhile
        state, _parent, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            found[int(entry.name)] = command
    return found


def _workers(pgid: int) -> list[int]:
    """The group's worker processes started by multiprocessing (py3dtiles' and ours)."""
    return [pid for pid, command in _group(pgid).items() if "spawn_main" in command]


def _asset(client: TestClient, asset_id: str) -> Any:
    return client.get(f"/api/v1/assets/{asset_id}", headers=auth(client, "viewer")).json()


def test_a_laz_of_many_chunks_converts_through_the_service(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    response = upload(client, amersfoort_laz(tmp_path / "scan.laz", 200_000))
    assert response.status_code == 202, response.text
    run_jobs(client, settings.model_copy(update={"job_timeout_s": 120}))  # a hang fails
    asset = _asset(client, response.json()["id"])
    assert asset["status"] == "ready", asset
    west, south, east, north = asset["bbox"]
    assert 5.38 < west < east < 5.40
    assert 52.15 < south < north < 52.16


def test_a_conversion_stopped_by_its_time_limit_leaves_no_process_of_its_group(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    follow = runner._follow

    def follow_once_the_workers_run(*args: Any) -> Any:
        process = args[5]
        assert os.getpgid(process.pid) == process.pid, "the child shares a process group"
        wait_until(lambda: _workers(process.pid), 60, "py3dtiles' workers starting")
        outcome = follow(*args)  # the time limit counts from here, while the workers run
        seen["workers_at_the_limit"] = _workers(process.pid)
        seen["pgid"] = process.pid
        return outcome

    monkeypatch.setattr(runner, "_follow", follow_once_the_workers_run)
    response = upload(client, amersfoort_laz(tmp_path / "scan.laz", 200_000))
    run_jobs(client, settings.model_copy(update={"job_timeout_s": 0.2}))
    asset = _asset(client, response.json()["id"])
    assert asset["status"] == "failed", asset
    assert "took longer than 0.2 s" in asset["error"]
    assert seen["workers_at_the_limit"], "the limit was meant to stop running workers"
    wait_until(lambda: not _group(seen["pgid"]), 30, "every process of the converter ending")


_CRASHING_CHILD = """
import os, subprocess, sys
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {helper.pid}")
sys.exit("the converter fell over")
"""


def test_a_crashed_converter_ends_its_job_at_once_and_leaves_no_helper(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The helper inherits the child's stdout and stderr and holds them open: the job must end
    # at the child's exit, not at the end of its output (nor at its time limit).
    pids = tmp_path / "pids"
    monkeypatch.setattr(
        runner, "_child_command", lambda _: [sys.executable, "-c", _CRASHING_CHILD, str(pids)]
    )
    response = upload(client, amersfoort_laz(tmp_path / "scan.laz", 1_000))
    run_jobs(client, settings.model_copy(update={"job_timeout_s": 120}))
    asset = _asset(client, response.json()["id"])
    assert asset["status"] == "failed", asset
    assert asset["error"] == "the converter crashed: the converter fell over"
    child, helper = (int(pid) for pid in pids.read_text().split())
    wait_until(lambda: not _group(child), 30, "the helper ending")
    assert helper not in _group(child)
