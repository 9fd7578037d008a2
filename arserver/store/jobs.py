"""The job queue in the database. One write path per change of a job's state.

Claiming is safe with many workers: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` hands
each queued job to exactly one claimer; on SQLite the conditional ``UPDATE`` runs under the single
writer lock, and only the claimer whose update changed the row gets the job. A worker refreshes
``heartbeat_at`` while it runs a job; jobs whose heartbeat is older than the stale limit (the
worker died or was killed) go back to the queue, or fail after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select, update

from arserver.store.schema import jobs

MAX_ATTEMPTS = 3
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Job:
    id: str
    asset_id: str
    kind: str
    attempts: int


def now() -> datetime:
    return datetime.now(UTC)


def enqueue(connection: Connection, asset_id: str, kind: str = "convert") -> str:
    """Add a job inside the caller's transaction (so the asset and its job appear together)."""
    job_id = uuid.uuid4().hex
    connection.execute(
        insert(jobs).values(
            id=job_id, asset_id=asset_id, kind=kind, status=QUEUED, attempts=0, created_at=now()
        )
    )
    return job_id


def claim(engine: Engine, worker: str) -> Job | None:
    """The oldest queued job, now running for ``worker``; None when the queue is empty."""
    with engine.begin() as connection:
        query = (
            select(jobs.c.id).where(jobs.c.status == QUEUED).order_by(jobs.c.created_at).limit(1)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job_id = connection.execute(query).scalar()
        if job_id is None:
            return None
        claimed = connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
            .values(
                status=RUNNING,
                worker=worker,
                attempts=jobs.c.attempts + 1,
                started_at=now(),
                heartbeat_at=now(),
            )
        )
        if claimed.rowcount != 1:
            return None
        row = connection.execute(
            select(jobs.c.id, jobs.c.asset_id, jobs.c.kind, jobs.c.attempts).where(
                jobs.c.id == job_id
            )
        ).one()
    return Job(row.id, row.asset_id, row.kind, row.attempts)


def heartbeat(engine: Engine, job_id: str, worker: str) -> bool:
    """Refresh a running job's heartbeat; False if the job is no longer this worker's."""
    with engine.begin() as connection:
        result = connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.worker == worker, jobs.c.status == RUNNING)
            .values(heartbeat_at=now())
        )
    return bool(result.rowcount)


def finish(engine: Engine, job_id: str, worker: str, error: str | None = None) -> bool:
    """Mark a job done (or failed with ``error``); False if it was no longer this worker's."""
    with engine.begin() as connection:
        result = connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.worker == worker, jobs.c.status == RUNNING)
            .values(status=FAILED if error else DONE, finished_at=now(), error=error)
        )
    return bool(result.rowcount)


def queue_figures(engine: Engine) -> tuple[dict[str, int], list[float]]:
    """Jobs by status, and the seconds from start to end of every finished job (for metrics)."""
    with engine.connect() as connection:
        counts = connection.execute(
            select(jobs.c.status, func.count()).group_by(jobs.c.status)
        ).all()
        finished = connection.execute(
            select(jobs.c.started_at, jobs.c.finished_at).where(
                jobs.c.finished_at.is_not(None), jobs.c.started_at.is_not(None)
            )
        ).all()
    spent = [(row.finished_at - row.started_at).total_seconds() for row in finished]
    return {str(status): int(n) for status, n in counts}, spent


def requeue_stale(engine: Engine, stale_after: timedelta) -> list[tuple[str, str]]:
    """Jobs whose worker stopped sending heartbeats: back to the queue, or failed after
    ``MAX_ATTEMPTS``. Returns (job id, new status) for each."""
    limit = now() - stale_after
    changed: list[tuple[str, str]] = []
    with engine.begin() as connection:
        stale = connection.execute(
            select(jobs.c.id, jobs.c.attempts).where(
                jobs.c.status == RUNNING, jobs.c.heartbeat_at < limit
            )
        ).all()
        for row in stale:
            status = FAILED if row.attempts >= MAX_ATTEMPTS else QUEUED
            values: dict[str, object] = {"status": status, "worker": None}
            if status == FAILED:
                values.update(finished_at=now(), error="the worker stopped, too many times")
            result = connection.execute(
                update(jobs).where(jobs.c.id == row.id, jobs.c.status == RUNNING).values(**values)
            )
            if result.rowcount:
                changed.append((row.id, status))
    return changed
