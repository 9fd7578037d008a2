"""Coordinate reference systems: any CRS PROJ knows, RD New + NAP to RDNAPTRANS(TM)2018
accuracy offline, and local East-North-Up frames. See docs/georeferencing.md."""

from tiles.crs.ellipsoid import BESSEL_1841, GRS80, Ellipsoid, ecef_to_geodetic, geodetic_to_ecef
from tiles.crs.enu import EnuFrame
from tiles.crs.rdnaptrans import (
    RDNAPTRANS_ACCURACY_M,
    etrs89_to_rd,
    quasi_geoid_height,
    rd_to_etrs89,
)
from tiles.crs.transformer import Operation, Transformer, parse_crs

__all__ = [
    "BESSEL_1841",
    "GRS80",
    "RDNAPTRANS_ACCURACY_M",
    "Ellipsoid",
    "EnuFrame",
    "Operation",
    "Transformer",
    "ecef_to_geodetic",
    "etrs89_to_rd",
    "geodetic_to_ecef",
    "parse_crs",
    "quasi_geoid_height",
    "rd_to_etrs89",
]
