"""Point clouds (LAS, LAZ, XYZ, PLY) to 3D Tiles 1.1, with py3dtiles doing the octree.

py3dtiles reads the files and builds its octree with level-of-detail sampling in the *source* CRS
(we never let it reproject: without the Dutch grids PROJ would put RD + NAP points 41-46 m too
low). We then rewrite every tile: points go through :class:`tiles.georef.Placement` (RDNAPTRANS
(TM)2018 for RD) into the tileset's ENU frame and into a GLB with normalised RGBA colours and
the z-up to y-up root node, which py3dtiles' own 1.1 output lacks; bounding boxes are recomputed
around the placed points.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj
from numpy.typing import NDArray

from tiles.crs import EnuFrame
from tiles.errors import TilesError
from tiles.georef import Placement, frame_for, geodetic_extent
from tiles.gltf import Material, Primitive, write_glb
from tiles.tileset import Box, Tile

FloatArray = NDArray[np.float64]
POINT_EXTENSIONS = (".las", ".laz", ".xyz", ".ply")
_MATERIAL = Material("points", (1.0, 1.0, 1.0, 1.0), unlit=True)


@dataclass
class PointStats:
    points: int = 0
    tiles: int = 0
    content_bytes: int = 0


def supports(path: Path) -> bool:
    return path.suffix.lower() in POINT_EXTENSIONS


def file_crs(path: Path) -> pyproj.CRS | None:
    """The CRS a LAS/LAZ header declares, if any (XYZ and PLY carry none)."""
    if path.suffix.lower() not in (".las", ".laz"):
        return None
    try:
        with laspy.open(path) as reader:
            crs = reader.header.parse_crs()
    except Exception as exc:  # laspy raises several kinds for damaged headers
        raise TilesError(f"cannot read the LAS header: {exc}") from exc
    return pyproj.CRS(crs) if crs is not None else None


def run_py3dtiles(paths: list[Path], work: Path, crs: pyproj.CRS) -> dict[str, Any]:
    """py3dtiles' octree of ``paths`` in their own CRS, in ``work``; returns its tileset JSON."""
    from py3dtiles.convert import convert as py3dtiles_convert
    from py3dtiles.exceptions import Py3dtilesException

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            py3dtiles_convert(
                [str(p) for p in paths],
                outfolder=str(work),
                overwrite=True,
                jobs=max(os.cpu_count() or 1, 1),
                crs_in=crs,
                force_crs_in=True,
                rgb=True,
                verbose=0,
            )
    except Py3dtilesException as exc:
        raise TilesError(f"py3dtiles could not tile the points: {exc}") from exc
    except (ValueError, OSError, RuntimeError) as exc:
        raise TilesError(f"cannot read the points: {type(exc).__name__}: {exc}") from exc
    tileset_path = work / "tileset.json"
    if not tileset_path.is_file():
        raise TilesError(f"py3dtiles produced no tileset ({chatter.getvalue().strip()[:200]})")
    document: dict[str, Any] = json.loads(tileset_path.read_text())
    return document


def _matrix(tile: dict[str, Any]) -> FloatArray:
    if "transform" not in tile:
        return np.eye(4)
    return np.array(tile["transform"], dtype=np.float64).reshape(4, 4).T


def source_extent(document: dict[str, Any]) -> FloatArray:
    """Corners (8, 3) of py3dtiles' root box in source coordinates."""
    root = document["root"]
    box = np.array(root["boundingVolume"]["box"], dtype=np.float64)
    centre, axes = box[:3], box[3:].reshape(3, 3)
    signs = np.array(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64
    )
    local = centre + signs @ axes
    homogeneous = np.column_stack([local, np.ones(8)]) @ _matrix(root).T
    corners: FloatArray = homogeneous[:, :3]
    return corners


class PointRewriter:
    """Rewrites py3dtiles' tiles (``.pnts`` in source coordinates) as GLB in the ENU frame."""

    def __init__(self, source: Path, out_dir: Path, placement: Placement, generator: str) -> None:
        self.source = source
        self.out_dir = out_dir
        self.placement = placement
        self.generator = generator
        self.stats = PointStats()

    def run(self, document: dict[str, Any]) -> Tile:
        (self.out_dir / "content").mkdir(parents=True, exist_ok=True)
        tile = self._tile(document["root"], np.eye(4), "r")
        if tile is None:
            raise TilesError("the point cloud is empty")
        return tile

    def _tile(self, node: dict[str, Any], parent: FloatArray, address: str) -> Tile | None:
        from py3dtiles.tileset.content.tile_content_reader import read_binary_tile_content

        matrix = parent @ _matrix(node)
        children = [
            t
            for k, child in enumerate(node.get("children", []))
            if (t := self._tile(child, matrix, f"{address}{k}")) is not None
        ]
        box: Box | None = None
        uri = None
        content = node.get("content")
        if content is not None:
            content_path = self.source / content["uri"]
            tile_content: Any = read_binary_tile_content(content_path)
            local = np.asarray(tile_content.get_vertices(), dtype=np.float64)
            if local.size:
                rtc = tile_content.body.feature_table.header.rtc
                if rtc is not None:
                    local = local + np.asarray(rtc, dtype=np.float64)
                homogeneous = np.column_stack([local, np.ones(len(local))]) @ matrix.T
                enu = self.placement.to_enu(homogeneous[:, :3])
                colours = tile_content.get_colors()
                rgb = None
                if colours is not None:
                    rgb = np.asarray(colours)
                    if rgb.dtype != np.uint8:  # 16-bit colours
                        rgb = (rgb >> 8).astype(np.uint8)
                box = Box.around(enu)
                uri = f"content/{address}.glb"
                data = write_glb(
                    [Primitive(positions=enu, colors=rgb, material=_MATERIAL)],
                    center=box.center.tolist(),
                    generator=self.generator,
                )
                (self.out_dir / uri).write_bytes(data)
                self.stats.points += len(enu)
                self.stats.tiles += 1
                self.stats.content_bytes += len(data)
        for child in children:
            box = child.box if box is None else box.union(child.box)
        if box is None:
            return None
        refine = node.get("refine", "ADD")
        return Tile(
            box=box,
            geometric_error=float(node.get("geometricError", 0.0)),
            content_uri=uri,
            refine=refine if refine in ("ADD", "REPLACE") else "ADD",
            children=children,
        )


def place_points(
    document: dict[str, Any], crs: pyproj.CRS, allow_ballpark: bool
) -> tuple[EnuFrame, Placement]:
    """The ENU frame and placement for py3dtiles' output in ``crs``."""
    extent = geodetic_extent(crs, source_extent(document), allow_ballpark=allow_ballpark)
    frame = frame_for(extent)
    return frame, Placement.georeferenced(crs, frame, allow_ballpark=allow_ballpark)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
