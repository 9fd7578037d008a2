"""``arserver tiles gc``: remove what no entry point names from the tile store (local or S3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from arserver.commands.options import current_settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(value: str) -> timedelta:
    match = _DURATION.match(value.strip())
    if match is None:
        raise click.BadParameter("a duration such as 30m, 6h or 2d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@click.group("tiles")
def tiles() -> None:
    """The published tiles (ARSERVER_TILES_URL, or the data folder)."""


@tiles.command("gc")
@click.option(
    "--older-than", "older_than", default="24h", show_default=True,
    help="Keep revisions written more recently than this (a publish under way, or clients "
    "still reading the revision they loaded).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def gc(older_than: str, dry_run: bool) -> None:
    """Remove revisions no entry point names (earlier conversions, publishes that stopped
    midway) and the files of deleted assets. Safe while the server runs."""
    from arserver.store.assets import asset_ids
    from arserver.store.database import open_database
    from arserver.store.tilestore import collect_garbage, open_tile_store

    age = _duration(older_than)
    settings = current_settings()
    engine = open_database(settings)
    try:
        known = asset_ids(engine)
    finally:
        engine.dispose()
    report = collect_garbage(
        open_tile_store(settings), known, age, datetime.now(UTC), dry_run=dry_run
    )
    verb = "would remove" if dry_run else "removed"
    for revision in report.revisions:
        click.echo(f"{verb} revision {revision.asset_id}/{revision.name}")
    for asset_id in report.assets:
        click.echo(f"{verb} the tiles of deleted asset {asset_id}")
    outcome = "would be removed" if dry_run else "removed"
    click.echo(
        f"{len(report.revisions)} unreferenced revisions and the tiles of "
        f"{len(report.assets)} deleted assets {outcome}"
    )
