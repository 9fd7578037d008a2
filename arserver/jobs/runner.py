"""Running one conversion job: a child process with time and memory limits, progress written to
the asset, the result published atomically; every change of the asset goes through
:class:`~arserver.services.assets.AssetService`.

The child runs in a process group of its own, and however it ends (done, crashed, over its time
limit, or the worker interrupted) the whole group is killed before the child is reaped: the
helper processes the converter starts (py3dtiles' workers) never outlive the job.

What a failed conversion says is shown to API clients: it names the upload by its original file
name, never by a server path (:func:`public_message`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

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
            assets.publish_tiles(asset, out, summary)
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


def _child_command(request: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "arserver.jobs.child", json.dumps(request)]


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
        _child_command(request),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # a group of its own, to be killed with its helpers
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        return _follow(assets, engine, asset_id, job, worker, process, limits)
    finally:
        if process.returncode is None:  # stopped (time limit, or the worker interrupted)
            _kill_group(process)
            process.wait()
        process.stdout.close()
        process.stderr.close()


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the child has ended, left unreaped (see :func:`_kill_group`) where the system
    tells without reaping (``os.waitid``: not on macOS before Python 3.13)."""
    if hasattr(os, "waitid"):
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    return process.poll() is not None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the child's process group: the child and every helper it started. Called
    before the child is reaped: until then no other process or group can have its id."""
    with contextlib.suppress(ProcessLookupError):  # the group has ended already
        os.killpg(process.pid, signal.SIGKILL)


def _drain(stream: IO[bytes]) -> bytes:
    """What ``stream`` holds now, without waiting for more: helpers of a crashed child may
    hold the pipe open, so its end is not waited for."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while selector.select(timeout=0):
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            data += chunk
    return data


def _follow(
    assets: AssetService,
    engine: Engine,
    asset_id: str,
    job: queue.Job,
    worker: str,
    process: subprocess.Popen[bytes],
    limits: JobLimits,
) -> tuple[str | None, ConversionSummary | None]:
    """Read the child's reports until it ends: progress to the asset, heartbeats to the job.
    The child's end is its exit, not the end of its output, which helpers left by a crashed
    child may hold open."""
    assert process.stdout is not None
    assert process.stderr is not None
    deadline = time.monotonic() + limits.seconds
    last_write = 0.0
    error: str | None = None
    summary: ConversionSummary | None = None
    buffer = b""
    stderr_tail = b""  # read as it comes, so that a chatty child never blocks on a full pipe

    def take(chunk: bytes) -> None:
        nonlocal buffer, error, summary, last_write
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

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while not _exited(process):
            if time.monotonic() > deadline:
                return f"the conversion took longer than {limits.seconds:g} s and was stopped", None
            for key, _ in selector.select(timeout=0.5):
                stream = cast("IO[bytes]", key.fileobj)
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:  # every writer closed it; the child's exit is to come
                    selector.unregister(stream)
                elif stream is process.stderr:
                    stderr_tail = (stderr_tail + chunk)[-65536:]
                else:
                    take(chunk)
            queue.heartbeat(engine, job.id, worker)
    _kill_group(process)  # whatever the child left behind, before its reports are read
    code = process.wait()
    take(_drain(process.stdout))
    stderr_tail += _drain(process.stderr)
    stderr = stderr_tail.decode("utf-8", errors="replace").strip()
    if error is None and summary is None:
        detail = stderr.splitlines()[-1] if stderr else f"exit status {code}"
        if "MemoryError" in stderr or code == -9:
            detail = f"ran out of its {limits.memory_mib} MiB memory limit ({detail})"
        return f"the converter crashed: {detail}", None
    return error, summary
