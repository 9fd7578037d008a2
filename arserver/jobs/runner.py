"""Running one conversion job: a child process with time and memory limits, progress written to
the asset, the result published atomically; every change of the asset goes through
:class:`~arserver.services.assets.AssetService`.

What a failed conversion says is shown to API clients: it names the upload by its original file
name, never by a server path (:func:`public_message`)."""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine

from arserver.services.assets import AssetService
from arserver.store import jobs as queue

if TYPE_CHECKING:  # a type only; the converter runs in the child process
    from tiles.convert import ConversionSummary

log = logging.getLogger(__name__)

#: How often progress is written to the database at most (seconds).
PROGRESS_INTERVAL = 0.5
#: Absolute POSIX paths left in a message after the known ones were replaced.
_ANY_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)")


@dataclass(frozen=True)
class JobLimits:
    """Per-job limits: wall-clock seconds and address space (MiB) of the converter."""

    seconds: float = 3600.0
    memory_mib: int = 8192


def public_message(message: str, names: dict[Path, str]) -> str:
    """``message`` with every server path replaced: the paths in ``names`` (in any spelling:
    as given, or absolute) by their public names, any other absolute path by its last part."""
    for path, name in sorted(names.items(), key=lambda item: -len(str(item[0]))):
        for spelling in sorted({str(path.absolute()), str(path)}, key=len, reverse=True):
            message = message.replace(spelling, name)
    return _ANY_PATH.sub(lambda match: match.group(1), message)


def run_job(
    assets: AssetService,
    engine: Engine,
    job: queue.Job,
    worker: str,
    limits: JobLimits,
) -> None:
    """Convert the job's asset and publish it; every failure ends as a failed asset with a
    reason for clients, never as an exception out of here."""
    asset = assets.get(job.asset_id)
    if asset is None:
        queue.finish(engine, job.id, worker, error="the asset was deleted")
        return
    source = assets.source_path(asset)
    work = assets.data_dir / "work" / job.id
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "tileset"
    names = {source: str(asset["source_name"]), out: "the tileset", work: "the work folder"}
    assets.start(asset["id"])
    request = {
        "source": str(source),
        "out": str(out),
        "crs": asset["crs"],
        "origin": asset["origin"],
        "heading": asset["heading"],
        "memory_mib": limits.memory_mib,
    }
    error, summary = _run_child(assets, engine, asset["id"], job, worker, request, limits)
    if error is None and summary is not None:
        try:
            assets.publish_tiles(asset, out, job.id, summary)
        except OSError:
            log.exception("publishing the tiles of asset %s failed", asset["id"])
            error = "publishing the tiles failed on the server"
    shutil.rmtree(work, ignore_errors=True)
    if error is None:
        queue.finish(engine, job.id, worker)
        return
    error = public_message(error, names)
    assets.fail(asset["id"], error)
    queue.finish(engine, job.id, worker, error=error)


def _run_child(
    assets: AssetService,
    engine: Engine,
    asset_id: str,
    job: queue.Job,
    worker: str,
    request: dict[str, Any],
    limits: JobLimits,
) -> tuple[str | None, ConversionSummary | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "arserver.jobs.child", json.dumps(request)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        return _follow(assets, engine, asset_id, job, worker, process, limits)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def _follow(
    assets: AssetService,
    engine: Engine,
    asset_id: str,
    job: queue.Job,
    worker: str,
    process: subprocess.Popen[bytes],
    limits: JobLimits,
) -> tuple[str | None, ConversionSummary | None]:
    """Read the child's reports until it ends: progress to the asset, heartbeats to the job."""
    assert process.stdout is not None
    assert process.stderr is not None
    deadline = time.monotonic() + limits.seconds
    last_write = 0.0
    error: str | None = None
    summary: ConversionSummary | None = None
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
                        summary = cast("ConversionSummary", message["summary"])
                    elif time.monotonic() - last_write > PROGRESS_INTERVAL:
                        last_write = time.monotonic()
                        assets.progress(asset_id, float(message["progress"]), str(message["stage"]))
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
