"""Options that several commands share, each declared once, and the settings a command reads.

- ``--server URL`` (default ``http://127.0.0.1:8000``) and ``--token`` (or ``ARSERVER_TOKEN``):
  the commands that talk to a running server (``import``, ``simulate``, ``watch``).
- ``--crs CRS``, ``--origin LON,LAT,H``, ``--heading DEG``: where input lies on Earth
  (``convert``, ``import``; ``watch`` takes ``--origin`` as the origin of its ENU frame).
  ``--origin`` is ETRS89 longitude and latitude in degrees and ellipsoidal height in metres;
  ``--heading`` is degrees clockwise from north.

Heavy modules are imported when an option is parsed, not when ``arserver --help`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from arserver.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SERVER = "http://127.0.0.1:8000"


def current_settings() -> Settings:
    """Settings from the environment (ARSERVER_*), read when a command runs."""
    from arserver.config import Settings

    return Settings()


def server_option(func: F) -> F:
    """``--server``: the base URL of a running arserver."""
    return click.option(
        "--server", default=DEFAULT_SERVER, show_default=True, help="arserver URL."
    )(func)


def token_option(role: str) -> Callable[[F], F]:
    """``--token`` (or ``ARSERVER_TOKEN``); ``role`` says which token the command needs, e.g.
    ``"A gis or admin token"``."""
    return click.option(
        "--token", envvar="ARSERVER_TOKEN", required=True, help=f"{role} (or ARSERVER_TOKEN)."
    )


def parse_origin(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[float, float, float] | None:
    """``LON,LAT,H`` as (longitude deg, latitude deg, ellipsoidal height m); a usage error
    unless it is a position on Earth."""
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


def check_crs(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """The CRS as given, once PROJ knows it; an unknown CRS is a usage error."""
    if value is not None:
        from tiles.crs import parse_crs
        from tiles.errors import UnknownCrsError

        try:
            parse_crs(value)
        except UnknownCrsError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


crs_option = click.option(
    "--crs",
    metavar="CRS",
    callback=check_crs,
    help="Source CRS when the files do not say (EPSG:7415 for RD New + NAP).",
)


def origin_option(
    help_text: str = "Place models in local metres here (ETRS89 degrees, ellipsoidal metres).",
) -> Callable[[F], F]:
    """``--origin LON,LAT,H``, parsed by :func:`parse_origin`; ``help_text`` says what it
    places there."""
    return click.option("--origin", metavar="LON,LAT,H", callback=parse_origin, help=help_text)


heading_option = click.option(
    "--heading", type=float, default=0.0, show_default=True, help="Degrees clockwise from north."
)
