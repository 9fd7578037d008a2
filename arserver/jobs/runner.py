"""Running one conversion job: a child process with time and memory limits, progress written to
the asset, the result published atomically, the outcome recorded through one write path."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from arserver.domain import asset_change
from arserver.live.bus import Bus
from arserver.store import jobs as queue
from arserver.store.schema import assets
from arserver.store.tilestore import TileStore
from arserver.store.uploads import uploads_dir

#: How often progress is written to the database at most (seconds).
PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True)
class JobLimits:
    """Per-job limits: wall-clock seconds and address space (MiB) of the converter."""

    seconds: float = 3600.0
    memory_mib: int = 8192


def set_asset(engine: Engine, asset_id: str, **values: Any) -> None:
    """The one write path for an asset's state (status, progress, stage, error, result)."""
    with engine.begin() as connection:
        connection.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(updated_at=datetime.now(UTC), **values)
        )


def run_job(
    engine: Engine,
    store: TileStore,
    data_dir: Path,
    job: queue.Job,
    worker: str,
    limits: JobLimits,
    bus: Bus | None = None,
) -> None:
    """Convert the job's asset and publish it; every failure ends as a failed asset with a
    reason, never as an exception out of here. A published asset is announced on ``bus``
    (after it is stored and marked ready)."""
    with engine.connect() as connection:
        asset = connection.execute(select(assets).where(assets.c.id == job.asset_id)).first()
    if asset is None:
        queue.finish(engine, job.id, worker, error="the asset was deleted")
        return
    source = uploads_dir(data_dir, asset.id) / str(asset.source_name)
    work = data_dir / "work" / job.id
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "tileset"
    set_asset(engine, asset.id, status="processing", progress=0.0, stage="starting", error=None)
    request = {
        "source": str(source),
        "out": str(out),
        "crs": asset.crs,
        "origin": asset.origin,
        "heading": asset.heading,
        "memory_mib": limits.memory_mib,
    }
    error, summary = _run_child(engine, asset.id, job, worker, request, limits)
    if error is None and summary is not None:
        try:
            store.publish(asset.id, out, job.id)
        except OSError as exc:
            error = f"publishing failed: {exc}"
    shutil.rmtree(work, ignore_errors=True)
    if error is None and summary is not None:
        west, south, east, north = summary["wgs84_bbox"]
        set_asset(
            engine, asset.id, status="ready", progress=1.0, stage="done", summary=summary,
            west=west, south=south, east=east, north=north,
        )  # fmt: skip
        queue.finish(engine, job.id, worker)
        if bus is not None:
            bus.publish(
                [
                    asset_change(
                        asset.id, asset.name, asset.layer, (west, south, east, north),
                        datetime.now(UTC), public=bool(asset.public),
                    )
                ]
            )  # fmt: skip
    else:
        set_asset(engine, asset.id, status="failed", stage="failed", error=error)
        queue.finish(engine, job.id, worker, error=error)


def _run_child(
    engine: Engine,
    asset_id: str,
    job: queue.Job,
    worker: str,
    request: dict[str, Any],
    limits: JobLimits,
) -> tuple[str | None, dict[str, Any] | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "arserver.jobs.child", json.dumps(request)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        return _follow(engine, asset_id, job, worker, process, limits)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def _follow(
    engine: Engine,
    asset_id: str,
    job: queue.Job,
    worker: str,
    process: subprocess.Popen[bytes],
    limits: JobLimits,
) -> tuple[str | None, dict[str, Any] | None]:
    """Read the child's reports until it ends: progress to the asset, heartbeats to the job."""
    assert process.stdout is not None
    assert process.stderr is not None
    deadline = time.monotonic() + limits.seconds
    last_write = 0.0
    error: str | None = None
    summary: dict[str, Any] | None = None
    buffer = b""
    stderr_tail = b""  # read as it comes, so that a chatty child never blocks on a full pipe
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while True:
            if time.monotonic() > deadline:
                return f"the conversion took longer than {limits.seconds:g} s and was stopped", None
            ready = {key.fileobj for key, _ in selector.select(timeout=0.5)}
            if process.stderr in ready:
                stderr_tail = (stderr_tail + os.read(process.stderr.fileno(), 65536))[-65536:]
            if process.stdout in ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    if "error" in message:
                        error = str(message["error"])
                    elif "summary" in message:
                        summary = message["summary"]
                    elif time.monotonic() - last_write > PROGRESS_INTERVAL:
                        last_write = time.monotonic()
                        set_asset(
                            engine,
                            asset_id,
                            progress=float(message["progress"]),
                            stage=str(message["stage"]),
                        )
            queue.heartbeat(engine, job.id, worker)
    code = process.wait()
    stderr_tail += process.stderr.read()
    stderr = stderr_tail.decode("utf-8", errors="replace").strip()
    if error is None and summary is None:
        detail = stderr.splitlines()[-1] if stderr else f"exit status {code}"
        if "MemoryError" in stderr or code == -9:
            detail = f"ran out of its {limits.memory_mib} MiB memory limit ({detail})"
        return f"the converter crashed: {detail}", None
    return error, summary
