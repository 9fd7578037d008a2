"""The ``arserver`` command. Every failure becomes one line on stderr and a non-zero exit:
1 when the data or the work failed, 2 when the command line is wrong."""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from arserver import __version__
from arserver.config import Settings
from arserver.errors import ArserverError
from arserver.security.policy import ROLES
from tiles.convert import ConvertOptions
from tiles.crs import parse_crs
from tiles.errors import TilesError, UnknownCrsError
from tiles.readers.geojson import FeatureOptions

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(command: str, message: str, code: int) -> None:
    click.echo(f"arserver {command}: error: {message}", err=True)
    sys.exit(code)


def reports_errors(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the library's and the service's exceptions into one line and an exit code."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except UnknownCrsError as exc:
                _fail(command, str(exc), EXIT_USAGE)
            except (TilesError, ArserverError) as exc:
                _fail(command, str(exc), EXIT_FAILED)
            raise AssertionError("unreachable")

        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arserver")
def cli() -> None:
    """arserver: location-bound data for AR and VR (3D Tiles, live overlays, sensors).

    Every command honours ARSERVER_DATA_DIR (default ./data).
    """


@cli.command()
@click.option("--from", "source", required=True, metavar="CRS", help="Source CRS, e.g. EPSG:7415.")
@click.option("--to", "target", required=True, metavar="CRS", help="Target CRS, e.g. EPSG:4978.")
@click.option(
    "--allow-ballpark",
    is_flag=True,
    help="Accept a degraded (ballpark, or not the best) operation instead of failing.",
)
@click.option("--describe", is_flag=True, help="Print the operation and its accuracy, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Report the operation on stderr.")
@reports_errors("transform")
def transform(
    source: str, target: str, allow_ballpark: bool, describe: bool, verbose: bool
) -> None:
    """Transform points read from stdin, one per line as "x y [z]", to stdout.

    Always x y [z] order: easting northing, or longitude latitude (degrees), whatever the
    CRS's official axis order. RD New + NAP (EPSG:28992, EPSG:7415) uses RDNAPTRANS(TM)2018.
    Nothing is written unless every line transforms.

    \b
    Example:
      echo "155000 463000 0" | arserver transform --from EPSG:7415 --to EPSG:4979
    """
    from arserver.transform import transform_text  # keeps `arserver --help` fast
    from tiles.crs import Transformer

    transformer = Transformer.from_crs(source, target, allow_ballpark=allow_ballpark)
    if describe:
        click.echo(transformer.operation.summary())
        return
    if verbose:
        click.echo(f"operation: {transformer.operation.summary()}", err=True)
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    sys.stdout.write(transform_text(transformer, text))


def _parse_origin(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        lon, lat, h = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected LON,LAT,H (degrees, degrees, metres), got {value!r}"
        ) from None
    if (
        not all(math.isfinite(v) for v in (lon, lat, h))
        or not -90 <= lat <= 90
        or not -180 <= lon <= 360
    ):
        raise click.BadParameter(f"not a position on Earth: {value!r}")
    return lon, lat, h


_ATTRIBUTE_ROLES = ("base", "top", "height", "ground", "depth", "diameter")


def _parse_attributes(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    roles: dict[str, str] = {}
    for value in values:
        role, _, name = value.partition("=")
        if role not in _ATTRIBUTE_ROLES or not name:
            raise click.BadParameter(
                f"expected ROLE=PROPERTY, ROLE one of {', '.join(_ATTRIBUTE_ROLES)}; got {value!r}"
            )
        roles[role] = name
    return roles


def _feature_options(roles: dict[str, str]) -> FeatureOptions:
    default = FeatureOptions()
    return replace(
        default,
        base_attribute=roles.get("base", default.base_attribute),
        top_attribute=roles.get("top", default.top_attribute),
        height_attribute=roles.get("height", default.height_attribute),
        ground_attribute=roles.get("ground", default.ground_attribute),
        depth_attribute=roles.get("depth", default.depth_attribute),
        diameter_attribute=roles.get("diameter", default.diameter_attribute),
    )


def _check_crs(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_crs(value)
        except UnknownCrsError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


_CRS_OPTION = click.option(
    "--crs",
    metavar="CRS",
    callback=_check_crs,
    help="Source CRS when the files do not say (EPSG:7415 for RD New + NAP).",
)
_ORIGIN_OPTION = click.option(
    "--origin",
    metavar="LON,LAT,H",
    callback=_parse_origin,
    help="Place models in local metres here (ETRS89 degrees, ellipsoidal metres).",
)
_HEADING_OPTION = click.option(
    "--heading", type=float, default=0.0, show_default=True, help="Degrees clockwise from north."
)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)
@_CRS_OPTION
@_ORIGIN_OPTION
@_HEADING_OPTION
@click.option("--scale", type=float, default=1.0, show_default=True, help="Model units to metres.")
@click.option(
    "--up", "up_axis", type=click.Choice(["y", "z"]), help="Override the format's up axis."
)
@click.option(
    "--max-triangles",
    type=click.IntRange(min=64),
    default=50_000,
    show_default=True,
    help="Per tile.",
)
@click.option(
    "--lod", "cityjson_lod", metavar="LOD", help="CityJSON level of detail (default: highest)."
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="ROLE=PROPERTY",
    callback=_parse_attributes,
    help="GeoJSON property for a role: base, top, height, ground, depth, diameter (repeatable).",
)
@click.option("--allow-ballpark", is_flag=True, help="Accept a degraded CRS transformation.")
@reports_errors("convert")
def convert(
    inputs: tuple[Path, ...],
    out_dir: Path,
    crs: str | None,
    origin: tuple[float, float, float] | None,
    heading: float,
    scale: float,
    up_axis: str | None,
    max_triangles: int,
    cityjson_lod: str | None,
    attributes: dict[str, str],
    allow_ballpark: bool,
) -> None:
    """Convert models, point clouds, GeoJSON and CityJSON files to a 3D Tiles 1.1 tileset.

    Nothing is left in --out unless the conversion succeeds.

    \b
    Examples:
      arserver convert zones.geojson --out tiles/zones
      arserver convert klic.geojson --attribute depth=diepte --attribute diameter=diam --out t/k
      arserver convert lamp_post.glb --origin 4.7610,52.3095,39.6 --heading 30 --out tiles/lamp
    """
    from arserver.converting import run_conversion

    options = ConvertOptions(
        crs=crs,
        origin=origin,
        heading_deg=heading,
        scale=scale,
        up_axis=up_axis,
        allow_ballpark=allow_ballpark,
        max_triangles_per_tile=max_triangles,
        cityjson_lod=cityjson_lod,
        features=_feature_options(attributes),
    )
    run_conversion(list(inputs), out_dir, options)


@cli.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--exit", "exit_after", is_flag=True, help="Stop after importing instead of serving.")
@reports_errors("demo")
def demo(port: int, exit_after: bool) -> None:
    """A first look: Dutch heights done right, then the server with the sample assets."""
    from arserver.demo import run_demo

    run_demo(current_settings(), port=port, keep_serving=not exit_after)


def current_settings() -> Settings:
    """Settings from the environment (ARSERVER_*), read when a command runs."""
    return Settings()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@reports_errors("serve")
def serve(host: str, port: int) -> None:
    """Run the HTTP server (OpenAPI docs at /docs)."""
    import uvicorn

    from arserver.app import create_app
    from arserver.server import tune_gc, uvicorn_config
    from arserver.store.database import open_database

    settings = current_settings()
    open_database(
        settings
    ).dispose()  # fail here, with one clear line, if the database is not usable
    tune_gc()
    uvicorn.Server(uvicorn_config(create_app(settings), host, port)).run()


@cli.command("import")
@click.argument(
    "inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--server", default="http://127.0.0.1:8000", show_default=True, help="arserver URL.")
@click.option(
    "--token",
    envvar="ARSERVER_TOKEN",
    required=True,
    help="A gis or admin token (or ARSERVER_TOKEN).",
)
@_CRS_OPTION
@_ORIGIN_OPTION
@_HEADING_OPTION
@click.option("--layer", default="default", show_default=True, help="Layer to put the assets in.")
@click.option("--public", is_flag=True, help="Make the tiles readable without a token.")
@reports_errors("import")
def import_(
    inputs: tuple[Path, ...],
    server: str,
    token: str,
    crs: str | None,
    origin: tuple[float, float, float] | None,
    heading: float,
    layer: str,
    public: bool,
) -> None:
    """Upload files to a running server and follow their conversion with a progress bar."""
    from arserver.importing import import_files

    fields = {"layer": layer, "public": "true" if public else "false", "heading": str(heading)}
    if crs:
        fields["crs"] = crs
    if origin:
        fields["origin"] = ",".join(repr(v) for v in origin)
    failed = import_files(server, token, list(inputs), fields)
    if failed:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--server", default="http://127.0.0.1:8000", show_default=True, help="arserver URL.")
@click.option(
    "--token",
    envvar="ARSERVER_TOKEN",
    required=True,
    help="A gis or admin token (or ARSERVER_TOKEN).",
)
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds."
)
@click.option(
    "--backfill",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours of history.",
)
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many live rounds.")
@click.option(
    "--mqtt",
    "mqtt_url",
    metavar="URL",
    help="Publish through this MQTT broker (mqtt://host:1883) instead of posting over HTTP.",
)
@click.option(
    "--format",
    "uplink_format",
    type=click.Choice(["tts", "chirpstack"]),
    default="tts",
    show_default=True,
    help="Uplink format of the LoRaWAN sensors over MQTT.",
)
@reports_errors("simulate")
def simulate(
    server: str,
    token: str,
    interval: float,
    backfill: float,
    count: int | None,
    mqtt_url: str | None,
    uplink_format: str,
) -> None:
    """Send believable sensor data for the demo area until Ctrl-C: over HTTP, or with --mqtt as
    The Things Stack / ChirpStack uplinks through a broker (the server must consume the same
    broker: ARSERVER_MQTT_URL)."""
    from arserver.simulate import HttpSink, MqttSink, run

    sink: MqttSink | HttpSink
    sink = MqttSink(server, token, mqtt_url, uplink_format) if mqtt_url else HttpSink(server, token)
    try:
        taken = run(sink, interval_s=interval, backfill_hours=backfill, iterations=count)
    except KeyboardInterrupt:
        taken = -1
    finally:
        sink.close()
    if taken >= 0:
        verb = "published (acknowledged by the broker)" if mqtt_url else "accepted"
        click.echo(f"{taken} observations {verb}")


@cli.command()
@reports_errors("worker")
def worker() -> None:
    """Run a conversion worker until SIGTERM or Ctrl-C (several may share a PostgreSQL queue)."""
    import signal
    import threading

    from arserver.jobs.worker import Worker
    from arserver.live.bus import RedisBus
    from arserver.store.database import open_database

    settings = current_settings()
    engine = open_database(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Published assets reach the servers' live hubs through Redis; without it there is no
    # hub in this process to tell.
    bus = RedisBus(settings.redis_url) if settings.redis_url else None
    runner = Worker(engine, settings, bus=bus)
    click.echo(f"arserver worker {runner.name}: waiting for jobs", err=True)
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@cli.command()
@click.option("--server", default="http://127.0.0.1:8000", show_default=True, help="arserver URL.")
@click.option(
    "--token", envvar="ARSERVER_TOKEN", required=True, help="A reading token (or ARSERVER_TOKEN)."
)
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
@click.option(
    "--origin", metavar="LON,LAT,H", help="Give positions in ENU metres from this origin."
)
@click.option("--max-rate", type=float, default=2.0, show_default=True, help="Per key, Hz.")
@click.option("--proximity", type=float, help="Report enter/leave within this many metres.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON messages.")
@reports_errors("watch")
def watch(
    server: str,
    token: str,
    bbox: str | None,
    center: str | None,
    radius: float | None,
    layers: str,
    kinds: str | None,
    origin: str | None,
    max_rate: float,
    proximity: float | None,
    count: int | None,
    as_json: bool,
) -> None:
    """Print live overlay messages for an area until Ctrl-C (reconnects and resumes)."""
    import json

    from arserver.watch import describe
    from arserver.watch import watch as run_watch

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
        subscription["frame"] = {"type": "enu", "origin": _floats(origin, 3, "--origin")}
    if proximity:
        subscription["proximity_m"] = proximity

    def emit(message: dict[str, Any]) -> None:
        click.echo(json.dumps(message) if as_json else describe(message))

    with contextlib.suppress(KeyboardInterrupt):
        run_watch(server, token, subscription, emit, count=count)


def _floats(text: str, count: int, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise click.BadParameter(
            f"needs {count} comma-separated numbers, got {text!r}", param_hint=option
        )
    return values


@cli.command()
@reports_errors("retention")
def retention() -> None:
    """Apply the retention settings once (the server also does so every hour): roll raw
    observations older than ARSERVER_RAW_RETENTION_DAYS up into hourly aggregates."""
    from arserver.store.database import open_database
    from arserver.store.retention import apply_retention

    settings = current_settings()
    engine = open_database(settings)
    try:
        result = apply_retention(engine, settings.raw_retention, settings.aggregate_retention)
    finally:
        engine.dispose()
    before = f"before {result.cutoff.isoformat()}" if result.cutoff else "(raw kept forever)"
    click.echo(
        f"{result.rolled_up} raw observations {before} rolled up into hourly aggregates; "
        f"{result.hours_deleted} expired hourly aggregates deleted"
    )


@cli.group()
def token() -> None:
    """API tokens: one role each, shown once, stored hashed."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", help="Who or what holds it, e.g. 'tablet 3' or 'gateway Schiphol'.")
@reports_errors("token create")
def token_create(role: str, name: str | None) -> None:
    """Create a token and print it alone on stdout (it is not shown again)."""
    from arserver.security.tokens import create_token
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        secret, _ = create_token(engine, role, name)
    finally:
        engine.dispose()
    click.echo(secret)


def main() -> None:
    """Entry point of the ``arserver`` console script."""
    cli()
