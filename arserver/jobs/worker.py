"""The worker loop: recover stale jobs, claim the next one, run it; ``arserver worker`` and the
server's embedded worker thread both use it.

The loop outlives errors (the database away for a while, a job that trips a bug): it logs them,
waits longer each time, and goes on. It says where it stands in :attr:`Worker.state`, which the
server's ``/readyz`` reports, so that a loop that ended anyway is not silent."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy import Engine

from arserver.config import Settings
from arserver.jobs.runner import JobLimits, run_job
from arserver.live.bus import Bus
from arserver.services.assets import AssetService
from arserver.store import jobs as queue
from arserver.store.tilestore import open_tile_store

log = logging.getLogger(__name__)

#: The longest wait between attempts while every attempt fails.
MAX_ERROR_PAUSE_S = 30.0


class Worker:
    """Runs conversion jobs one at a time; many workers may share one PostgreSQL queue."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        name: str | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.assets = AssetService(engine, settings.data_dir, open_tile_store(settings), bus)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.limits = JobLimits(settings.job_timeout_s, settings.job_memory_mib)
        #: Attempts that raised since the worker was made (logged; the loop went on).
        self.errors = 0
        self._state = "starting"

    @property
    def state(self) -> str:
        """``starting`` until :meth:`run` begins, ``running`` while it loops, ``stopped`` once
        it has returned (asked to, or ended by an exception that is not an error, such as
        ``SystemExit``)."""
        return self._state

    def run_once(self) -> bool:
        """Run one job if there is one; True if a job ran."""
        queue.requeue_stale(self.engine, timedelta(seconds=self.settings.stale_job_s))
        job = queue.claim(self.engine, self.name)
        if job is None:
            return False
        run_job(self.assets, self.engine, job, self.name, self.limits)
        return True

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Work until ``stop`` is set (a running job finishes first). An attempt that raises
        is logged and tried again after a pause that doubles with each failure in a row."""
        self._state = "running"
        failures = 0
        try:
            while not stop.is_set():
                try:
                    ran = self.run_once()
                except Exception:
                    self.errors += 1
                    failures = min(failures + 1, 16)  # bounded: 2**failures stays small
                    pause = min(poll_s * 2**failures, MAX_ERROR_PAUSE_S)
                    log.exception(
                        "worker %s: an attempt failed; trying again in %g s", self.name, pause
                    )
                    stop.wait(pause)
                    continue
                failures = 0
                if not ran:
                    stop.wait(poll_s)
        finally:
            self._state = "stopped"
