"""A worker killed with SIGKILL in the middle of a conversion: another worker picks the job up
and the asset ends ready, with no half-published tileset ever served. On both databases and
with tiles in S3 object storage."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

from sqlalchemy import Engine, Row, select

from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from arserver.store.schema import assets, jobs
from arserver.store.uploads import store_upload
from tests.arserver.conftest import TILE_BACKENDS
from tests.arserver.support import (
    ASSETS,
    arserver_command,
    settings_env,
    stored_entry_point,
    stored_files,
)
from tests.support import wait_until

BACKENDS = TILE_BACKENDS


def first_content_uri(tile: dict[str, object]) -> str:
    content = tile.get("content")
    if isinstance(content, dict):
        return str(content["uri"])
    children = tile.get("children")
    assert isinstance(children, list)
    return first_content_uri(children[0])


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**settings_env(settings), "ARSERVER_STALE_JOB_S": "2"}
    return subprocess.Popen(
        [arserver_command(), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def status_of(engine: Engine, asset_id: str) -> Row[Any]:
    with engine.connect() as connection:
        return connection.execute(
            select(assets.c.status, assets.c.error).where(assets.c.id == asset_id)
        ).one()


def test_a_killed_worker_s_job_is_finished_by_another(settings: Settings) -> None:
    engine = open_database(settings)
    try:
        create_token(engine, "gis")
        with (ASSETS / "tree_scan.laz").open("rb") as source:
            values = {
                "name": "scan",
                "layer": "default",
                "heading": 0.0,
                "lifecycle": "existing",
                "public": True,
            }
            asset_id = store_upload(
                engine, settings.data_dir, "tree_scan.laz", source, values, 1 << 30
            )
        first = start_worker(settings)
        try:
            # poll often: the conversion must still be running when the worker is killed
            wait_until(
                lambda: status_of(engine, asset_id).status == "processing",
                60,
                "the first worker starting the job",
                max_interval_s=0.05,
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert stored_entry_point(settings, asset_id) is None
        second = start_worker(settings)
        try:

            def finished() -> Row[Any] | None:
                row = status_of(engine, asset_id)
                return row if row.status in ("ready", "failed") else None

            row = wait_until(finished, 120, "the job being taken up again")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
        assert row.status == "ready", row.error
        with engine.connect() as connection:
            job = connection.execute(select(jobs.c.status, jobs.c.attempts)).one()
        assert (job.status, job.attempts) == ("done", 2)
        entry = stored_entry_point(settings, asset_id)
        assert entry is not None
        revision = first_content_uri(entry["root"]).split("/")[0]
        assert f"{revision}/tileset.json" in stored_files(settings, asset_id)
    finally:
        engine.dispose()
