"""``arserver serve``: the HTTP server (API, tiles, live WebSocket) in the foreground until
SIGTERM or Ctrl-C; with ``--workers N``, N such processes on one port
(:mod:`arserver.commands.workers`)."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Server processes on the port (more than 1 needs PostgreSQL and Redis).",
)  # fmt: skip
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP server (OpenAPI docs at /docs)."""
    from arserver.store.database import open_database

    settings = current_settings()
    if workers > 1:
        from arserver.commands.workers import check_scalable, serve_workers

        check_scalable(settings)
    # Fail here, with one clear line, if the database is not usable (and migrate it once,
    # before any worker starts).
    open_database(settings).dispose()
    if workers > 1:
        serve_workers(workers, host, port)
        return
    import uvicorn

    from arserver.app import create_app
    from arserver.commands.server import tune_gc, uvicorn_config

    tune_gc()
    uvicorn.Server(uvicorn_config(create_app(settings), host, port)).run()
