"""``arserver demo``: Dutch heights done right, then the server with the sample assets and
simulated sensors (see :mod:`arserver.commands.showcase`)."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings


@click.command("demo")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--exit", "exit_after", is_flag=True, help="Stop after importing instead of serving.")
def demo(port: int, exit_after: bool) -> None:
    """A first look: Dutch heights done right, then the server with the sample assets."""
    from arserver.commands.showcase import run_demo

    run_demo(current_settings(), port=port, keep_serving=not exit_after)
