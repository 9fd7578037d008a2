"""The work of ``arserver convert``: a conversion with a progress bar on stderr, then a summary
on stdout of what was made, where, and how accurately it is placed."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from arserver.commands.progress import stage_progress
from tiles.convert import ConversionReport, ConvertOptions, convert


def run_conversion(
    inputs: list[Path], out_dir: Path, options: ConvertOptions, console: Console | None = None
) -> ConversionReport:
    """Convert ``inputs`` into the tileset folder ``out_dir`` with a live progress bar and the
    warnings on stderr, then print the summary on ``console`` (default stdout)."""
    err = Console(stderr=True)
    out = console or Console()
    with stage_progress(err) as progress:
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
    """The tileset path; counts, size and seconds; source CRSs; the transformation and its
    accuracy in metres; the WGS 84 box in degrees and the ellipsoidal height range in metres."""
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
