"""``arserver convert``: a conversion with a progress bar on stderr and a summary on stdout."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tiles.convert import ConversionReport, ConvertOptions, convert


def run_conversion(
    inputs: list[Path], out_dir: Path, options: ConvertOptions, console: Console | None = None
) -> ConversionReport:
    """Convert with a live progress bar, then print what was made, where, and how accurate."""
    err = Console(stderr=True)
    out = console or Console()
    with Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # no bar in logs and pipes, only the summary
    ) as progress:
        task = progress.add_task("reading", total=1.0)
        report = convert(
            inputs,
            out_dir,
            options,
            progress=lambda fraction, stage: progress.update(
                task, completed=fraction, description=stage
            ),
        )
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    print_summary(report, out)
    return report


def print_summary(report: ConversionReport, console: Console) -> None:
    s = report.summary
    counts = s["counts"]
    west, south, east, north = s["wgs84_bbox"]
    accuracy = "unknown" if s["accuracy_m"] is None else f"{s['accuracy_m']:g} m"
    console.print(f"[green]wrote[/] {report.tileset}")
    size_kib = counts["content_bytes"] / 1024
    what = (
        f"{counts['points_in_tiles']:,} points"
        if "points_in_tiles" in counts
        else f"{counts['features']} features, {counts['triangles']:,} triangles"
    )
    console.print(
        f"  {what}, {counts['tiles']} tiles, {size_kib:.1f} KiB in {report.seconds:.2f} s"
    )
    console.print(f"  from {', '.join(s['source_crs'])}")
    console.print(f"  via {'; '.join(s['transformation'])} (accuracy {accuracy})")
    console.print(
        f"  WGS 84 box {west:.6f},{south:.6f} .. {east:.6f},{north:.6f}; "
        f"heights {s['height_range'][0]:.2f}..{s['height_range'][1]:.2f} m (ellipsoidal)"
    )
