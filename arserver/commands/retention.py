"""``arserver retention``: apply the retention settings to the observations once."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings


@click.command("retention")
def retention() -> None:
    """Apply the retention settings once (the server also does so every hour): roll raw
    observations older than ARSERVER_RAW_RETENTION_DAYS up into hourly aggregates, and purge
    each kind of personal data older than its own window (positions of mobile sensors, audit
    entries)."""
    from arserver.store.database import open_database
    from arserver.store.retention import apply_personal_retention, apply_retention

    settings = current_settings()
    engine = open_database(settings)
    try:
        result = apply_retention(engine, settings.raw_retention, settings.aggregate_retention)
        purged = apply_personal_retention(engine, settings)
    finally:
        engine.dispose()
    before = f"before {result.cutoff.isoformat()}" if result.cutoff else "(raw kept forever)"
    click.echo(
        f"{result.rolled_up} raw observations {before} rolled up into hourly aggregates; "
        f"{result.hours_deleted} expired hourly aggregates deleted"
    )
    for kind, count in purged.items():
        click.echo(f"{count} {kind} past their retention purged")
