"""The work of ``arserver import``: upload files to a running server and follow each
conversion with a progress bar until it is ready or failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from arserver.commands.client import ServerClient
from arserver.commands.progress import stage_progress

#: Seconds an upload may take per read or write: large point clouds go over slow links.
UPLOAD_TIMEOUT_S = 300.0


def import_files(
    client: ServerClient,
    paths: list[Path],
    fields: dict[str, str],
    console: Console | None = None,
) -> int:
    """Upload every file with the form ``fields`` (plus its ``name``), wait for each conversion;
    returns how many failed. Prints one line per file on ``console`` (default stdout): the
    tileset URL, or the reason it failed; the progress bar goes to stderr."""
    out = console or Console()
    err = Console(stderr=True)
    failures = 0
    for path in paths:
        queued = client.upload(path, {"name": path.name, **fields})
        with stage_progress(err, path.name) as progress:
            task = progress.add_task(queued["status"], total=1.0)

            def show(state: dict[str, Any], task: Any = task, progress: Any = progress) -> None:
                progress.update(
                    task, completed=state["progress"], description=state["stage"] or state["status"]
                )

            state = client.wait(queued["id"], show)
        if state["status"] == "ready":
            tileset = f"{client.base_url}{state['tileset']}"
            out.print(f"[green]ready[/]  {path.name} -> {tileset}", soft_wrap=True)
        else:
            failures += 1
            out.print(f"[red]failed[/] {path.name}: {state['error']}", soft_wrap=True)
    return failures
