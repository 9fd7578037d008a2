"""The progress bar of ``arserver convert`` and ``arserver import``: one task's fraction done
(0 to 1) and the stage it is in, with the time elapsed."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn

#: Width of the title (a file name) and of the stage column, in characters.
TITLE_WIDTH = 24
STAGE_WIDTH = 22


def stage_progress(console: Console, title: str | None = None) -> Progress:
    """A transient bar on ``console``, shown only when it is a terminal (logs and pipes get
    nothing), optionally led by ``title`` cut to :data:`TITLE_WIDTH` characters. Update a task
    with ``completed`` = fraction done and ``description`` = the stage."""
    columns: list[ProgressColumn] = []
    if title is None:
        columns.append(TextColumn(f"[bold]{{task.description:<{STAGE_WIDTH}}}"))
    else:
        literal = escape(f"{title[:TITLE_WIDTH]:<{TITLE_WIDTH}}").replace("{", "{{")
        columns.append(TextColumn("[bold]" + literal.replace("}", "}}")))
        columns.append(TextColumn(f"{{task.description:<{STAGE_WIDTH}}}"))
    columns += [BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn()]
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
