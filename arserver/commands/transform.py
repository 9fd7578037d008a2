"""``arserver transform``: points on stdin, one per line, through a CRS transformation to stdout."""

from __future__ import annotations

import sys

import click


@click.command("transform")
@click.option("--from", "source", required=True, metavar="CRS", help="Source CRS, e.g. EPSG:7415.")
@click.option("--to", "target", required=True, metavar="CRS", help="Target CRS, e.g. EPSG:4978.")
@click.option(
    "--allow-ballpark",
    is_flag=True,
    help="Accept a degraded (ballpark, or not the best) operation instead of failing.",
)
@click.option(
    "--epoch",
    type=float,
    default=None,
    metavar="YEAR",
    help="Epoch of ITRF2020 (EPSG:9988, 9989), ITRF2014 (EPSG:7789, 7912) or WGS 84 (G2296) "
    "coordinates, as a decimal year (e.g. 2026.9); required for them.",
)
@click.option("--describe", is_flag=True, help="Print the operation and its accuracy, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Report the operation on stderr.")
def transform(
    source: str,
    target: str,
    allow_ballpark: bool,
    epoch: float | None,
    describe: bool,
    verbose: bool,
) -> None:
    """Transform points read from stdin, one per line as "x y [z]", to stdout.

    Always x y [z] order: easting northing, or longitude latitude (degrees), whatever the
    CRS's official axis order. RD New + NAP (EPSG:28992, EPSG:7415) uses RDNAPTRANS(TM)2018.
    Nothing is written unless every line transforms. ITRF coordinates are positions at an
    epoch: give --epoch for them (ETRS89 and ITRF2020 lie about 0.93 m apart in 2026.9).

    \b
    Examples:
      echo "155000 463000 0" | arserver transform --from EPSG:7415 --to EPSG:4979
      echo "155000 463000 0" | arserver transform --from EPSG:7415 --to EPSG:9989 --epoch 2026.9
    """
    from arserver.commands.pointio import transform_text  # keeps `arserver --help` fast
    from tiles.crs import Transformer

    transformer = Transformer.from_crs(source, target, allow_ballpark=allow_ballpark, epoch=epoch)
    if describe:
        click.echo(transformer.operation.summary())
        return
    if verbose:
        click.echo(f"operation: {transformer.operation.summary()}", err=True)
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    sys.stdout.write(transform_text(transformer, text))
