"""``arserver worker``: a conversion worker taking jobs from the shared queue."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings


@click.command("worker")
def worker() -> None:
    """Run a conversion worker until SIGTERM or Ctrl-C (several may share a PostgreSQL queue)."""
    import signal
    import threading

    from arserver.jobs.worker import Worker
    from arserver.live.bus import RedisBus
    from arserver.store.database import open_database

    settings = current_settings()
    engine = open_database(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Published assets reach the servers' live hubs through Redis; without it there is no
    # hub in this process to tell.
    bus = RedisBus(settings.redis_url) if settings.redis_url else None
    runner = Worker(engine, settings, bus=bus)
    click.echo(f"arserver worker {runner.name}: waiting for jobs", err=True)
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
