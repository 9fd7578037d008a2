"""``arserver import``: upload files and show each conversion's progress until it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from arserver.client import AssetClient


def import_files(
    server: str,
    token: str,
    paths: list[Path],
    fields: dict[str, str],
    console: Console | None = None,
) -> int:
    """Upload every file, wait for each conversion; returns how many failed. Prints one line per
    file on stdout: the tileset URL, or the reason it failed."""
    out = console or Console()
    err = Console(stderr=True)
    failures = 0
    with AssetClient(server, token) as client:
        for path in paths:
            queued = client.upload(path, {"name": path.name, **fields})
            with Progress(
                TextColumn(f"[bold]{path.name[:24]:<24}"),
                TextColumn("{task.description:<22}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            ) as progress:
                task = progress.add_task(queued["status"], total=1.0)

                def show(
                    state: dict[str, Any], task: Any = task, progress: Progress = progress
                ) -> None:
                    progress.update(
                        task,
                        completed=state["progress"],
                        description=state["stage"] or state["status"],
                    )

                state = client.wait(queued["id"], show)
            if state["status"] == "ready":
                tileset = f"{client.base_url}{state['tileset']}"
                out.print(f"[green]ready[/]  {path.name} -> {tileset}", soft_wrap=True)
            else:
                failures += 1
                out.print(f"[red]failed[/] {path.name}: {state['error']}", soft_wrap=True)
    return failures
