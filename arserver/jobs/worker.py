"""The worker loop: recover stale jobs, claim the next one, run it; ``arserver worker`` and the
server's embedded worker thread both use it."""

from __future__ import annotations

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
from arserver.store.tilestore import TileStore


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
        self.assets = AssetService(
            engine, settings.data_dir, TileStore(settings.data_dir / "tiles"), bus
        )
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.limits = JobLimits(settings.job_timeout_s, settings.job_memory_mib)

    def run_once(self) -> bool:
        """Run one job if there is one; True if a job ran."""
        queue.requeue_stale(self.engine, timedelta(seconds=self.settings.stale_job_s))
        job = queue.claim(self.engine, self.name)
        if job is None:
            return False
        run_job(self.assets, self.engine, job, self.name, self.limits)
        return True

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Work until ``stop`` is set (a running job finishes first)."""
        while not stop.is_set():
            if not self.run_once():
                stop.wait(poll_s)
