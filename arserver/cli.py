"""The ``arserver`` command. Every failure becomes one line on stderr and a non-zero exit:
1 when the data or the work failed, 2 when the command line is wrong."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from arserver import __version__
from arserver.errors import ArserverError
from tiles.errors import TilesError, UnknownCrsError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(command: str, message: str, code: int) -> None:
    click.echo(f"arserver {command}: error: {message}", err=True)
    sys.exit(code)


def reports_errors(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the library's and the service's exceptions into one line and an exit code."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except UnknownCrsError as exc:
                _fail(command, str(exc), EXIT_USAGE)
            except (TilesError, ArserverError) as exc:
                _fail(command, str(exc), EXIT_FAILED)
            raise AssertionError("unreachable")

        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arserver")
def cli() -> None:
    """arserver: location-bound data for AR and VR (3D Tiles, live overlays, sensors).

    Every command honours ARSERVER_DATA_DIR (default ./data).
    """


@cli.command()
@click.option("--from", "source", required=True, metavar="CRS", help="Source CRS, e.g. EPSG:7415.")
@click.option("--to", "target", required=True, metavar="CRS", help="Target CRS, e.g. EPSG:4978.")
@click.option(
    "--allow-ballpark",
    is_flag=True,
    help="Accept a degraded (ballpark, or not the best) operation instead of failing.",
)
@click.option("--describe", is_flag=True, help="Print the operation and its accuracy, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Report the operation on stderr.")
@reports_errors("transform")
def transform(
    source: str, target: str, allow_ballpark: bool, describe: bool, verbose: bool
) -> None:
    """Transform points read from stdin, one per line as "x y [z]", to stdout.

    Always x y [z] order: easting northing, or longitude latitude (degrees), whatever the
    CRS's official axis order. RD New + NAP (EPSG:28992, EPSG:7415) uses RDNAPTRANS(TM)2018.
    Nothing is written unless every line transforms.

    \b
    Example:
      echo "155000 463000 0" | arserver transform --from EPSG:7415 --to EPSG:4979
    """
    from arserver.transform import transform_text  # keeps `arserver --help` fast
    from tiles.crs import Transformer

    transformer = Transformer.from_crs(source, target, allow_ballpark=allow_ballpark)
    if describe:
        click.echo(transformer.operation.summary())
        return
    if verbose:
        click.echo(f"operation: {transformer.operation.summary()}", err=True)
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    sys.stdout.write(transform_text(transformer, text))


@cli.command()
@reports_errors("demo")
def demo() -> None:
    """A first look: well-known Dutch places from RD New + NAP to Earth-centred coordinates."""
    from arserver.demo import run_demo

    run_demo()


def main() -> None:
    """Entry point of the ``arserver`` console script."""
    cli()
