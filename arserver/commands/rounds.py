"""``arserver rounds``: participation rounds, straight in the database (no server needed).

``arserver rounds report ROUND --out FILE [--format json|csv|html]`` writes the round's report
(:mod:`arserver.services.round_report`); the format follows FILE's extension (``.json``,
``.csv``, ``.html`` or ``.htm``) unless ``--format`` names it. The file appears whole or not at
all: the report is written to a temporary file beside it, which then replaces FILE.
"""

from __future__ import annotations

from pathlib import Path

import click

from arserver.commands.files import format_of, write_atomically
from arserver.commands.options import current_settings

#: The format of a report file by its extension.
FORMAT_BY_EXTENSION = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}


@click.group("rounds")
def rounds() -> None:
    """Participation rounds: their reports."""


@rounds.command("report")
@click.argument("round_id", metavar="ROUND")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (replaced whole if it exists).",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "html"]), default=None,
    help="Output format (default: from the extension of --out).",
)  # fmt: skip
def report(round_id: str, out: Path, fmt: str | None) -> None:
    """Write the report of ROUND: its announcement, every comment with its place, object,
    moderation and the planners' response, counts per object and totals. Exit 1 for an unknown
    round (nothing is written)."""
    if fmt is None:
        fmt = format_of(out, FORMAT_BY_EXTENSION)
    from arserver.services.round_report import build_report, render
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        built = build_report(engine, round_id)
    finally:
        engine.dispose()
    write_atomically(out, render(built, fmt))
    totals = built["totals"]
    click.echo(
        f"wrote {out} ({fmt}): {totals['comments']} comments, "
        f"{totals['residents']} residents, {totals['unanswered']} unanswered"
    )
