"""``arserver convert``: model, point cloud, GeoJSON and CityJSON files to a 3D Tiles 1.1
tileset in a folder, without a server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from arserver.commands.options import crs_option, heading_option, origin_option

if TYPE_CHECKING:
    from tiles.readers.geojson import FeatureOptions

#: The GeoJSON roles ``--attribute ROLE=PROPERTY`` can give a property name for.
ATTRIBUTE_ROLES = ("base", "top", "height", "ground", "depth", "diameter")


def parse_attributes(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """``ROLE=PROPERTY`` pairs as {role: property}; a usage error for an unknown role."""
    roles: dict[str, str] = {}
    for value in values:
        role, _, name = value.partition("=")
        if role not in ATTRIBUTE_ROLES or not name:
            raise click.BadParameter(
                f"expected ROLE=PROPERTY, ROLE one of {', '.join(ATTRIBUTE_ROLES)}; got {value!r}"
            )
        roles[role] = name
    return roles


def feature_options(roles: dict[str, str]) -> FeatureOptions:
    """The GeoJSON reader's options with the property names of ``roles``; defaults elsewhere."""
    from dataclasses import replace

    from tiles.readers.geojson import FeatureOptions

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


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)
@crs_option
@origin_option()
@heading_option
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
    callback=parse_attributes,
    help="GeoJSON property for a role: base, top, height, ground, depth, diameter (repeatable).",
)
@click.option("--allow-ballpark", is_flag=True, help="Accept a degraded CRS transformation.")
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
    from arserver.commands.conversion import run_conversion
    from tiles.convert import ConvertOptions

    options = ConvertOptions(
        crs=crs,
        origin=origin,
        heading_deg=heading,
        scale=scale,
        up_axis=up_axis,
        allow_ballpark=allow_ballpark,
        max_triangles_per_tile=max_triangles,
        cityjson_lod=cityjson_lod,
        features=feature_options(attributes),
    )
    run_conversion(list(inputs), out_dir, options)
