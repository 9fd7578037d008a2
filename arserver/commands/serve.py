"""``arserver serve``: the HTTP server (API, tiles, live WebSocket) in the foreground until
SIGTERM or Ctrl-C."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Run the HTTP server (OpenAPI docs at /docs)."""
    import uvicorn

    from arserver.app import create_app
    from arserver.commands.server import tune_gc, uvicorn_config
    from arserver.store.database import open_database

    settings = current_settings()
    # Fail here, with one clear line, if the database is not usable.
    open_database(settings).dispose()
    tune_gc()
    uvicorn.Server(uvicorn_config(create_app(settings), host, port)).run()
