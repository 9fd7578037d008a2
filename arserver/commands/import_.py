"""``arserver import``: upload files to a running server, follow their conversion, and print
each tileset's URL; exit status 1 if any conversion failed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from arserver.commands import EXIT_FAILED
from arserver.commands.options import (
    crs_option,
    heading_option,
    origin_option,
    server_option,
    token_option,
)


@click.command("import")
@click.argument(
    "inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@server_option
@token_option("A gis or admin token")
@crs_option
@origin_option()
@heading_option
@click.option("--layer", default="default", show_default=True, help="Layer to put the assets in.")
@click.option("--public", is_flag=True, help="Make the tiles readable without a token.")
def import_(
    inputs: tuple[Path, ...],
    server: str,
    token: str,
    crs: str | None,
    origin: tuple[float, float, float] | None,
    heading: float,
    layer: str,
    public: bool,
) -> None:
    """Upload files to a running server and follow their conversion with a progress bar."""
    from arserver.commands.client import ServerClient
    from arserver.commands.uploads import UPLOAD_TIMEOUT_S, import_files

    fields = {"layer": layer, "public": "true" if public else "false", "heading": str(heading)}
    if crs:
        fields["crs"] = crs
    if origin:
        fields["origin"] = ",".join(repr(v) for v in origin)
    with ServerClient(server, token, timeout_s=UPLOAD_TIMEOUT_S) as client:
        failed = import_files(client, list(inputs), fields)
    if failed:
        sys.exit(EXIT_FAILED)
