"""``arserver register export``: the sensor register for publication, straight from the
database (no server needed).

``arserver register export [--out FILE] [--format json|csv|geojson] [--public-only]`` writes
every registered sensor with the register's fields (:mod:`arserver.services.register`); the
format follows FILE's extension (``.json``, ``.csv``, ``.geojson``) unless ``--format`` names
it; without ``--out`` the register goes to stdout (JSON unless ``--format`` says otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from arserver.commands.files import format_of, write_atomically
from arserver.commands.options import current_settings

#: The format of a register file by its extension.
FORMAT_BY_EXTENSION = {".json": "json", ".csv": "csv", ".geojson": "geojson"}


@click.group("register")
def register() -> None:
    """The sensor register (APV art. 2.25a and the like): export it for publication."""


@register.command("export")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The file to write (replaced whole if it exists); default: stdout.",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "geojson"]), default=None,
    help="Output format (default: from the extension of --out, else json).",
)  # fmt: skip
@click.option("--public-only", is_flag=True, help="Only the sensors whose data is public.")
def export(out: Path | None, fmt: str | None, public_only: bool) -> None:
    """Write the register: per sensor its owner and contact, KvK number, type, location or
    area, what it measures and why, themes, personal data with privacy statement and legal
    ground, placed and removed dates, project and status."""
    if fmt is None and out is not None:
        fmt = format_of(out, FORMAT_BY_EXTENSION)
    from arserver.services.register import register_csv, register_geojson
    from arserver.services.sensors import SensorService
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        entries = SensorService(engine).register_entries(public_only=public_only)
    finally:
        engine.dispose()
    chosen = fmt or "json"
    if chosen == "csv":
        text = register_csv(entries)
    elif chosen == "geojson":
        text = json.dumps(register_geojson(entries), ensure_ascii=False, indent=1) + "\n"
    else:
        text = json.dumps({"sensors": entries}, ensure_ascii=False, indent=1) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomically(out, text)
    click.echo(f"wrote {out} ({chosen}): {len(entries)} sensors", err=True)
