"""``arserver watch``: print the live overlay messages of an area until Ctrl-C (see
:mod:`arserver.commands.live_client`)."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from arserver.commands.options import origin_option, server_option, token_option


@click.command("watch")
@server_option
@token_option("A reading token")
@click.option("--bbox", metavar="W,S,E,N", help="Area: a box in WGS 84 degrees.")
@click.option("--center", metavar="LON,LAT", help="Area: a circle's centre (with --radius).")
@click.option("--radius", type=click.FloatRange(min=0, min_open=True), help="Metres.")
@click.option(
    "--layers",
    default="sensors,alerts,parking",
    show_default=True,
    help="Comma-separated: sensors, alerts, inspections, annotations, assets, parking.",
)
@click.option("--kinds", help="Only these kinds, comma-separated (e.g. no2,parking_bay).")
@origin_option("Give positions in ENU metres from this origin.")
@click.option("--max-rate", type=float, default=2.0, show_default=True, help="Per key, Hz.")
@click.option("--proximity", type=float, help="Report enter/leave within this many metres.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON messages.")
def watch(
    server: str,
    token: str,
    bbox: str | None,
    center: str | None,
    radius: float | None,
    layers: str,
    kinds: str | None,
    origin: tuple[float, float, float] | None,
    max_rate: float,
    proximity: float | None,
    count: int | None,
    as_json: bool,
) -> None:
    """Print live overlay messages for an area until Ctrl-C (reconnects and resumes)."""
    import json

    from arserver.commands.client import ServerClient
    from arserver.commands.live_client import describe
    from arserver.commands.live_client import watch as run_watch

    if (bbox is None) == (center is None) or (center is not None and radius is None):
        raise click.UsageError("give --bbox W,S,E,N, or --center LON,LAT with --radius M")
    area: dict[str, Any] = (
        {"bbox": _floats(bbox, 4, "--bbox")}
        if bbox is not None
        else {"center": _floats(center or "", 2, "--center"), "radius_m": radius}
    )
    subscription: dict[str, Any] = {
        "type": "subscribe", "id": "watch", "area": area,
        "layers": [layer.strip() for layer in layers.split(",") if layer.strip()],
        "max_rate_hz": max_rate,
    }  # fmt: skip
    if kinds:
        subscription["kinds"] = [k.strip() for k in kinds.split(",") if k.strip()]
    if origin:
        subscription["frame"] = {"type": "enu", "origin": list(origin)}
    if proximity:
        subscription["proximity_m"] = proximity

    def emit(message: dict[str, Any]) -> None:
        click.echo(json.dumps(message) if as_json else describe(message))

    with contextlib.suppress(KeyboardInterrupt), ServerClient(server, token) as client:
        run_watch(client, subscription, emit, count=count)


def _floats(text: str, count: int, option: str) -> list[float]:
    """``count`` comma-separated numbers; a usage error naming ``option`` otherwise."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise click.BadParameter(
            f"needs {count} comma-separated numbers, got {text!r}", param_hint=option
        )
    return values
