"""The job queue on SQLite and PostgreSQL: one claimer per job, heartbeats, stale recovery."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from arserver.store import jobs as queue
from arserver.store.schema import jobs
from tests.arserver.support import insert_asset


def enqueue(engine: Engine, asset_id: str) -> str:
    insert_asset(engine, asset_id, status="queued")
    with engine.begin() as connection:
        return queue.enqueue(connection, asset_id)


def test_a_job_is_claimed_once_then_finished(engine: Engine) -> None:
    job_id = enqueue(engine, "a1")
    job = queue.claim(engine, "worker-1")
    assert job is not None
    assert (job.id, job.asset_id, job.attempts) == (job_id, "a1", 1)
    assert queue.claim(engine, "worker-2") is None
    assert queue.heartbeat(engine, job_id, "worker-1")
    assert not queue.heartbeat(engine, job_id, "worker-2")
    assert queue.finish(engine, job_id, "worker-1")
    assert not queue.finish(engine, job_id, "worker-1")  # already finished
    with engine.connect() as connection:
        assert (
            connection.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar() == "done"
        )


def test_jobs_are_claimed_oldest_first(engine: Engine) -> None:
    first = enqueue(engine, "a1")
    second = enqueue(engine, "a2")
    claimed = [queue.claim(engine, "w"), queue.claim(engine, "w")]
    assert [j.id for j in claimed if j] == [first, second]


def test_concurrent_workers_never_take_the_same_job(engine: Engine) -> None:
    expected = {enqueue(engine, f"asset{k}") for k in range(40)}
    taken: dict[str, list[str]] = {f"worker-{w}": [] for w in range(4)}

    def work(name: str) -> None:
        while (job := queue.claim(engine, name)) is not None:
            taken[name].append(job.id)
            time.sleep(0.005)  # the scenario: a little work, so that the others get their turn

    threads = [threading.Thread(target=work, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(claimed) == sorted(expected)  # every job once, none twice
    if engine.dialect.name == "postgresql":
        # SKIP LOCKED lets claimers pass each other; SQLite's single writer lock may let one
        # worker win every race (its busy handler backs off), which is slow but still correct.
        assert sum(1 for ids in taken.values() if ids) >= 2


def test_a_job_whose_worker_died_is_requeued_then_failed_after_max_attempts(engine: Engine) -> None:
    job_id = enqueue(engine, "a1")
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        job = queue.claim(engine, f"worker-{attempt}")
        assert job is not None
        assert job.attempts == attempt
        with engine.begin() as connection:
            past = datetime.now(UTC) - timedelta(minutes=10)
            connection.execute(update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=past))
        expected = "failed" if attempt == queue.MAX_ATTEMPTS else "queued"
        assert queue.requeue_stale(engine, timedelta(minutes=1)) == [(job_id, expected)]
    assert queue.claim(engine, "worker-late") is None


def test_fresh_heartbeats_are_not_requeued(engine: Engine) -> None:
    enqueue(engine, "a1")
    assert queue.claim(engine, "w") is not None
    assert queue.requeue_stale(engine, timedelta(minutes=1)) == []
