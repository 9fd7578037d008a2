"""``arserver parking``: car parks and parking zones: feed imports and the backtest of the
forecaster.

``arserver parking import-spdp URL_OR_FILE`` and ``arserver parking import-datex2 URL_OR_FILE
[--status URL_OR_FILE]`` read a feed (see :mod:`arserver.ingest.parking_sources`) and import it
straight into the configured database (see :mod:`arserver.services.parking_feeds`); they print
one summary line on stdout and each problem as a ``note:`` line on stderr. A document that
cannot be fetched or used as a whole fails the command (exit status 1, one line).

``arserver parking backtest --data FILE.csv [--json] [--plot FILE.png]`` streams the CSV (see
:mod:`arserver.insight.parking.backtest` for the format and the protocol), prints the MAE and
RMSE of free spaces per horizon for the model and the three baselines, and the model's
improvement over each. With ``--json`` stdout carries only the JSON object of the scores; notes
go to stderr. The progress bar is drawn on stderr, and only when it is a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from arserver.commands.options import current_settings
from arserver.errors import InputError
from arserver.insight.parking.backtest import (
    METHODS,
    BacktestResult,
    CsvData,
    read_csv_lines,
    run_backtest,
)
from arserver.insight.parking.calendar import ZONE
from arserver.insight.parking.forecast import HORIZONS_MIN


@click.group("parking")
def parking() -> None:
    """Car parks and parking zones: feeds, forecasts and their backtest."""


def _import_feed(kind: str, location: str, status: str | None) -> None:
    """Read the feed at ``location`` (and ``status``) and import it into the database."""
    from arserver.ingest.parking_feeds import FeedError
    from arserver.ingest.parking_sources import FeedSource
    from arserver.live.bus import Bus, RedisBus
    from arserver.services.observations import ObservationWriter
    from arserver.services.parking import ParkingService
    from arserver.services.parking_feeds import FeedImporter
    from arserver.services.sensors import SensorService
    from arserver.store.database import open_database

    feed = FeedSource(kind, location, status)
    settings = current_settings()
    engine = open_database(settings)
    bus: Bus | None = RedisBus(settings.redis_url) if settings.redis_url else None
    try:
        parking_service = ParkingService(engine, bus)
        writer = ObservationWriter(
            engine, raw_retention=settings.raw_retention, bus=bus, parking=parking_service
        )
        importer = FeedImporter(parking_service, SensorService(engine), writer)
        batch = feed.read(importer.capacities(kind))
        if not batch.car_parks and not batch.statuses:
            first = f": {batch.problems[0]}" if batch.problems else ""
            raise FeedError(f"no usable car park or status in {feed.name}{first}")
        summary = importer.import_batch(batch, kind)
    finally:
        if bus is not None:
            bus.close()
        engine.dispose()
    for line in summary.problem_lines:
        click.echo(f"note: {line}", err=True)
    click.echo(summary.line())


@parking.command("import-spdp")
@click.argument("source", metavar="URL_OR_FILE")
def import_spdp(source: str) -> None:
    """Import car parks and their free spaces from SPDP v2: an index (its facilities' static
    and dynamic documents are read too, relative to it), or one static or dynamic document;
    a file or an http(s) URL."""
    _import_feed("spdp", source, None)


@parking.command("import-datex2")
@click.argument("source", metavar="URL_OR_FILE")
@click.option(
    "--status",
    "status",
    metavar="URL_OR_FILE",
    help="A separate ParkingStatusPublication (a file or an http(s) URL), read after the table.",
)
def import_datex2(source: str, status: str | None) -> None:
    """Import car parks and their free spaces from DATEX II (v3 or v2.3): a
    ParkingTablePublication, a ParkingStatusPublication or a document with both; a file or an
    http(s) URL. Statuses that give only occupied spaces or a percentage take the capacity
    from the table, else from the car park as stored."""
    _import_feed("datex2", source, status)


def _lines(path: Path, progress: Callable[[float], None]) -> Iterator[str]:
    """The text lines of ``path`` (UTF-8), one at a time, reporting the fraction read."""
    total = max(1, path.stat().st_size)
    done = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            done += len(raw)
            if number % 20_000 == 0:
                progress(done / total)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("the file is not UTF-8 text", line=number) from exc
    progress(1.0)


def _local(t: float) -> str:
    return dt.datetime.fromtimestamp(t, ZONE).strftime("%Y-%m-%d %H:%M %Z")


def _gain(model: float, other: float) -> str:
    if not (math.isfinite(model) and math.isfinite(other)) or other <= 0:
        return "-"
    return f"{100.0 * (1.0 - model / other):+.1f}%"


def print_table(result: BacktestResult, data: CsvData, console: Console) -> None:
    """The scores table, the model's gain over each baseline, and what was tested."""
    table = Table(title="Forecast errors of free spaces (rolling origin, every 15 min)")
    table.add_column("horizon", justify="right")
    table.add_column("method")
    table.add_column("MAE", justify="right")
    table.add_column("RMSE", justify="right")
    table.add_column("model vs method (MAE)", justify="right")
    table.add_column("targets", justify="right")
    for h in HORIZONS_MIN:
        model = result.scores[h]["model"].mae
        for i, method in enumerate(METHODS):
            score = result.scores[h][method]
            table.add_row(
                f"+{h} min" if i == 0 else "",
                method,
                f"{score.mae:.2f}",
                f"{score.rmse:.2f}",
                "" if method == "model" else _gain(model, score.mae),
                f"{score.n:,}",
                end_section=i == len(METHODS) - 1,
            )
    console.print(table)
    used = ", ".join(f"{m} {n}" for m, n in sorted(result.methods.items()))
    console.print(
        f"{result.lots} lots, {result.lots_tested} tested ({used}), {result.origins:,} origins;"
        f" trained {_local(result.train_start)} .. {_local(result.test_start)},"
        f" tested .. {_local(result.test_end)}"
    )
    cover = ", ".join(f"+{h} min {100 * c:.0f}%" for h, c in result.coverage.items())
    console.print(f"80% interval of the model holds the actual value: {cover}")
    if result.too_short:
        shown = ", ".join(result.too_short[:10]) + (", ..." if len(result.too_short) > 10 else "")
        console.print(f"not scored (too little data in the test period): {shown}")


@parking.command("backtest")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with columns timestamp,lot_id,capacity,free[,lat,lon].",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object of scores.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG: forecast vs actual for a few lots and the error by horizon.",
)
def backtest(data_path: Path, as_json: bool, plot_path: Path | None) -> None:
    """Backtest the parking forecaster on a CSV of counter readings: train on the earlier
    part, forecast +15/+30/+60 min from every quarter hour of the last two weeks (the last
    third for less than six weeks of data) and compare with three baselines."""
    from arserver.commands.progress import stage_progress

    err = Console(stderr=True)
    with stage_progress(err) as bar:
        task = bar.add_task("reading", total=1.0)
        data = read_csv_lines(
            _lines(data_path, lambda f: bar.update(task, completed=f, description="reading"))
        )
        result = run_backtest(
            data.series,
            progress=lambda f: bar.update(task, completed=f, description="backtest"),
        )
    for line in data.report.summary():
        err.print(f"note: {line}", highlight=False)
    if plot_path is not None:
        from arserver.commands.parking_plot import write_plot

        write_plot(result, plot_path)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        if plot_path is not None:
            err.print(f"wrote {plot_path}", highlight=False)
        return
    out = Console()
    print_table(result, data, out)
    if plot_path is not None:
        out.print(f"wrote {plot_path}", highlight=False)
