"""Where a finding or a comment is: a position the client gives (WGS 84, or any CRS with
``crs``, RD New + NAP included) or a feature of a published asset, checked against the
municipality's extent (``ARSERVER_EXTENT``) and, for a round, against its area.

Positions are WGS 84 (ETRS89) longitude and latitude in degrees and ellipsoidal heights in
metres, as everywhere in the service. Refusals are :class:`~arserver.errors.InputError` with a
message that says what was wrong and where, so that a point placed in the wrong country by a
client's geocoder is caught with a clear answer rather than stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from arserver.errors import InputError
from arserver.geometry import location_to_wgs84
from arserver.security.policy import Caller, admits
from arserver.store.schema import asset_features, assets

Extent = tuple[float, float, float, float]  # west, south, east, north (degrees)


@dataclass(frozen=True)
class Place:
    """A checked position (``h`` None when unknown) and the asset feature it is on, if any."""

    lon: float
    lat: float
    h: float | None
    asset_id: str | None = None
    feature_id: str | None = None

    @property
    def position(self) -> tuple[float, float, float | None]:
        return (self.lon, self.lat, self.h)


def resolve_place(
    connection: Connection,
    *,
    location: Sequence[float] | None,
    crs: str | None,
    asset_id: str | None,
    feature_id: str | None,
    caller: Caller | None,
    extent: Extent | None,
) -> Place:
    """The place of a new inspection or comment.

    With ``feature_id`` (and ``asset_id``) the position is the feature's (the centre of its
    bounding box), unless ``location`` is also given: then the location is where on the
    feature, and the feature only names what it is about. ``asset_id`` alone ties a located
    thing to an asset. The asset must be published and visible to ``caller`` (public, or
    within what its token reads; None: public only), else it is refused exactly as a missing
    one. The position must lie within ``extent`` (None: anywhere)."""
    if feature_id is not None and asset_id is None:
        raise InputError("a feature is named together with its asset ('asset' and 'feature')")
    position: tuple[float, float, float | None] | None = None
    if location is not None:
        position = _located(location, crs)
    if asset_id is not None:
        row = connection.execute(
            select(assets.c.status, assets.c.public, assets.c.layer).where(assets.c.id == asset_id)
        ).first()
        if row is None or not (
            row.public or (caller is not None and admits(caller, asset_id, row.layer))
        ):
            raise InputError(f"there is no asset {asset_id!r}")
        if row.status != "ready":
            raise InputError(f"asset {asset_id!r} is not published yet (it is {row.status})")
        if feature_id is not None:
            feature = connection.execute(
                select(asset_features.c.lon, asset_features.c.lat, asset_features.c.h).where(
                    asset_features.c.asset_id == asset_id,
                    asset_features.c.feature_id == feature_id,
                )
            ).first()
            if feature is None:
                raise InputError(f"asset {asset_id!r} has no feature {feature_id!r}")
            if position is None:
                position = (feature.lon, feature.lat, feature.h)
    if position is None:
        raise InputError(
            "give a 'location' ([lon, lat, h], or x, y, z with 'crs'), or an "
            "'asset' and one of its features ('feature')"
        )
    check_within(position[0], position[1], extent, "the municipality's extent")
    return Place(position[0], position[1], position[2], asset_id, feature_id)


def _located(location: Sequence[float], crs: str | None) -> tuple[float, float, float | None]:
    if not 2 <= len(location) <= 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in location
    ):
        raise InputError("a location is [lon, lat] or [lon, lat, h] of finite numbers")
    values = [float(v) for v in location]
    if crs is not None:
        values = location_to_wgs84(values, crs)
    lon, lat = values[0], values[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(
            f"location [{lon:g}, {lat:g}] is not longitude, latitude in degrees; coordinates "
            "in another CRS (RD New + NAP: EPSG:7415) need 'crs'"
        )
    h = values[2] if len(values) == 3 else None
    if h is not None and not -1000 <= h <= 10000:
        raise InputError(f"height {h:g} m is not an ellipsoidal height on Earth")
    return (lon, lat, h)


def parse_bbox(text: str) -> Extent:
    """A ``west,south,east,north`` query value in WGS 84 degrees; :class:`InputError`
    otherwise (west <= east: a box across the antimeridian is two queries)."""
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        west = south = east = north = math.nan
    if not (
        all(math.isfinite(v) for v in (west, south, east, north))
        and -180 <= west <= east <= 180
        and -90 <= south <= north <= 90
    ):
        raise InputError(
            "bbox must be 'west,south,east,north' in degrees (west <= east, south <= north), "
            f"got {text[:100]!r}"
        )
    return (west, south, east, north)


def check_within(lon: float, lat: float, extent: Extent | None, what: str) -> None:
    """:class:`InputError` when (lon, lat) lies outside ``extent`` (None: anywhere)."""
    if extent is None:
        return
    west, south, east, north = extent
    if not (west <= lon <= east and south <= lat <= north):
        raise InputError(
            f"location {lon:.6f}, {lat:.6f} (lon, lat) lies outside {what} "
            f"({west:g}, {south:g} to {east:g}, {north:g}); was it placed by a geocoder, or "
            "given as lat, lon?"
        )
