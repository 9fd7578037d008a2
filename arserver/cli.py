"""The ``arserver`` command: the click group and how its commands report failure.

Every failure becomes one line on stderr, ``arserver COMMAND: error: MESSAGE``, and a non-zero
exit: 1 when the data or the work failed (a :class:`~tiles.errors.TilesError` or an
:class:`~arserver.errors.ArserverError`), 2 when the command line is wrong (click's usage
errors, and an unknown CRS). The commands themselves live in :mod:`arserver.commands`, one
module each; this module registers them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import click

from arserver import __version__
from arserver.commands import EXIT_FAILED, EXIT_USAGE
from arserver.commands.audit import audit
from arserver.commands.convert import convert
from arserver.commands.demo import demo
from arserver.commands.import_ import import_
from arserver.commands.ingest import ingest
from arserver.commands.parking import parking
from arserver.commands.privacy import privacy
from arserver.commands.register import register
from arserver.commands.retention import retention
from arserver.commands.rounds import rounds
from arserver.commands.serve import serve
from arserver.commands.simulate import simulate
from arserver.commands.tiles import tiles
from arserver.commands.token import token
from arserver.commands.transform import transform
from arserver.commands.watch import watch
from arserver.commands.worker import worker
from arserver.errors import ArserverError
from tiles.errors import TilesError, UnknownCrsError

P = ParamSpec("P")
R = TypeVar("R")


def _fail(command: str, message: str, code: int) -> NoReturn:
    click.echo(f"arserver {command}: error: {message}", err=True)
    sys.exit(code)


def reports_errors(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the library's and the service's exceptions into one line and an exit code;
    ``command`` is how the line names the command (e.g. ``"token create"``)."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except UnknownCrsError as exc:
                _fail(command, str(exc), EXIT_USAGE)
            except (TilesError, ArserverError) as exc:
                _fail(command, str(exc), EXIT_FAILED)

        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arserver")
def cli() -> None:
    """arserver: location-bound data for AR and VR (3D Tiles, live overlays, sensors).

    Every command honours ARSERVER_DATA_DIR (default ./data).
    """


def _register(group: click.Group, command: click.Command, prefix: str = "") -> None:
    """Add ``command`` to ``group`` with its callback (and those of its subcommands) wrapped
    in :func:`reports_errors`."""
    path = f"{prefix}{command.name}"
    if isinstance(command, click.Group):
        for sub in list(command.commands.values()):
            _register(command, sub, f"{path} ")
    elif command.callback is not None:
        command.callback = reports_errors(path)(command.callback)
    group.add_command(command)


for _command in (
    transform, convert, demo, serve, import_, simulate, worker, watch, retention, token, audit,
    privacy, rounds, parking, register, tiles, ingest,
):  # fmt: skip
    _register(cli, _command)


def main() -> None:
    """Entry point of the ``arserver`` console script."""
    cli()
