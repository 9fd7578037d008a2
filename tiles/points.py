"""Point clouds (LAS, LAZ, XYZ, PLY) to 3D Tiles 1.1, with py3dtiles doing the octree.

py3dtiles reads the files and builds its octree with level-of-detail sampling in the *source* CRS
(we never let it reproject: without the Dutch grids PROJ would put RD + NAP points 41-46 m too
low). We then rewrite every tile: points go through :class:`tiles.georef.Placement` (RDNAPTRANS
(TM)2018 for RD) into the tileset's ENU frame and into a GLB with normalised RGBA colours and
the z-up to y-up root node, which py3dtiles' own 1.1 output lacks; bounding boxes are recomputed
around the placed points.

py3dtiles' octree workers and our tile rewriters are started with ``spawn``, not forked (the
pool py3dtiles forks at its end only writes tiles): a program that converts point clouds
in-process must guard its entry point with ``if __name__ == "__main__":``, as
:mod:`multiprocessing` requires for ``spawn``.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
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
from tiles.limits import InputLimits
from tiles.readers import sniff
from tiles.tileset import Box, Tile

FloatArray = NDArray[np.float64]
_MATERIAL = Material("points", (1.0, 1.0, 1.0, 1.0), unlit=True)
#: One py3dtiles run at a time per process: it binds one fixed IPC socket per process anyway,
#: and its worker start method is swapped for the length of a run (:func:`_spawned_workers`).
_PY3DTILES = threading.Lock()


@dataclass
class PointStats:
    points: int = 0
    tiles: int = 0
    content_bytes: int = 0


def supports(path: Path) -> bool:
    """Whether the file is a point cloud (LAS, LAZ, XYZ, PLY without faces) by its content."""
    found = sniff.detect_or_none(path)
    return found is not None and found.is_point_cloud


def file_crs(path: Path, file_format: sniff.Format | None = None) -> pyproj.CRS | None:
    """The CRS a LAS/LAZ header declares, if any (XYZ and PLY carry none). ``file_format`` is
    what :func:`sniff.detect` found (detected here when not given)."""
    if (file_format or sniff.detect(path)) not in (sniff.LAS, sniff.LAZ):
        return None
    try:
        with laspy.open(path) as reader:
            crs = reader.header.parse_crs()
    except Exception as exc:  # laspy raises several kinds for damaged headers
        raise TilesError(f"cannot read the LAS header: {exc}") from exc
    return pyproj.CRS(crs) if crs is not None else None


def check_header(path: Path, file_format: sniff.Format, limits: InputLimits) -> None:
    """Refuse a LAS/LAZ file whose header claims more points than the file can hold, before
    anything is decoded: no file more than ``limits.max_points``, a LAS file must hold every
    record it claims, a LAZ file at most ``limits.max_laz_points_per_byte`` points per byte of
    compressed point data. Other point
    formats are not compressed and are read as they come."""
    if file_format not in (sniff.LAS, sniff.LAZ):
        return
    try:
        with laspy.open(path) as reader:
            header = reader.header
            claimed = int(header.point_count)
            record = int(header.point_format.size)
            start = int(header.offset_to_point_data)
    except Exception as exc:  # laspy raises several kinds for damaged headers
        raise TilesError(f"cannot read the LAS header: {exc}") from exc
    if claimed > limits.max_points:
        raise TilesError(
            f"the header claims {claimed:,} points, more than the limit of "
            f"{limits.max_points:,} points of one point cloud: split it into tiles"
        )
    available = max(path.stat().st_size - start, 0)
    if file_format is sniff.LAS and claimed * record > available:
        raise TilesError(
            f"the header claims {claimed:,} points ({claimed * record:,} bytes), but the file "
            f"holds {available:,} bytes of point data: it is truncated or damaged"
        )
    most = int(available * limits.max_laz_points_per_byte)
    if file_format is sniff.LAZ and claimed > most:
        raise TilesError(
            f"the header claims {claimed:,} points in {available:,} bytes of compressed point "
            f"data, more than the limit of {limits.max_laz_points_per_byte:g} points per "
            "compressed byte (LAZ cannot pack points tighter): it is damaged or not a real "
            "point cloud"
        )


def named_for_py3dtiles(path: Path, file_format: sniff.Format, directory: Path) -> Path:
    """``path`` itself when its extension is that of its format, else a link to it named with
    that extension in ``directory``: py3dtiles picks its reader by the file extension, and we
    go by the content (a LAS file named ``.xyz`` is read as LAS). A hard link or a copy stands
    in where symbolic links are not possible."""
    if path.suffix.lower() == file_format.extension:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / f"{len(list(directory.iterdir()))}_{path.stem}{file_format.extension}"
    target = path.resolve()
    try:
        link.symlink_to(target)
    except OSError:
        try:
            os.link(target, link)
        except OSError:
            shutil.copyfile(target, link)
    return link


@contextlib.contextmanager
def _spawned_workers() -> Iterator[None]:
    """py3dtiles' worker processes started with ``spawn`` while this is entered, and only
    while: py3dtiles 12 takes no start method and uses ``multiprocessing.Process`` (so the
    host's default, ``fork`` on Linux), which is swapped in its module for the length of the
    run; the host's own default start method is left alone. (The thread pool is lazrs', the
    LAZ decoder's, started in this process when py3dtiles' colour check decodes the first
    points.)"""
    import py3dtiles.convert as py3dtiles_module

    # Forked workers hang decoding LAZ: lazrs' thread pool, started here, does not survive fork.
    spawning = multiprocessing.get_context("spawn").Process
    with _PY3DTILES:
        forking = py3dtiles_module.__dict__["Process"]  # KeyError if py3dtiles renamed it
        setattr(py3dtiles_module, "Process", spawning)  # noqa: B010 (not an exported name)
        try:
            yield
        finally:
            setattr(py3dtiles_module, "Process", forking)  # noqa: B010


def run_py3dtiles(
    paths: list[Path], work: Path, crs: pyproj.CRS, cache_mib: int | None = None
) -> dict[str, Any]:
    """py3dtiles' octree of ``paths`` in their own CRS, in ``work``; returns its tileset JSON.
    ``cache_mib``: the points py3dtiles keeps in memory (None: its default, a tenth of the
    machine's memory)."""
    from py3dtiles.convert import convert as py3dtiles_convert
    from py3dtiles.exceptions import Py3dtilesException

    chatter = io.StringIO()
    extra: dict[str, Any] = {} if cache_mib is None else {"cache_size": cache_mib}
    try:
        with _spawned_workers(), contextlib.redirect_stdout(chatter):
            py3dtiles_convert(
                [str(p) for p in paths],
                outfolder=str(work),
                overwrite=True,
                jobs=max(os.cpu_count() or 1, 1),
                crs_in=crs,
                force_crs_in=True,
                rgb=True,
                verbose=0,
                **extra,
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


@dataclass(frozen=True)
class _Task:
    content: str  # path of a py3dtiles .pnts
    matrix: tuple[float, ...]  # 16 numbers, row-major: tile coordinates -> source CRS
    uri: str  # our GLB, relative to the output directory


@dataclass(frozen=True)
class _Written:
    uri: str
    minimum: tuple[float, float, float]
    maximum: tuple[float, float, float]
    points: int
    size: int


@dataclass(frozen=True)
class _Job:
    """Everything a worker process needs to rewrite tiles (picklable)."""

    source: str
    out_dir: str
    crs_wkt: str
    frame: tuple[float, float, float]
    generator: str
    allow_ballpark: bool


def _rewrite(job: _Job, tasks: list[_Task]) -> list[_Written]:
    """Rewrite some tiles: .pnts in source coordinates -> GLB in the ENU frame."""
    from py3dtiles.tileset.content.tile_content_reader import read_binary_tile_content

    placement = Placement.georeferenced(
        pyproj.CRS.from_wkt(job.crs_wkt), EnuFrame(*job.frame), allow_ballpark=job.allow_ballpark
    )
    written = []
    for task in tasks:
        content: Any = read_binary_tile_content(Path(job.source) / task.content)
        local = np.asarray(content.get_vertices(), dtype=np.float64)
        if local.size == 0:
            continue
        rtc = content.body.feature_table.header.rtc
        if rtc is not None:
            local = local + np.asarray(rtc, dtype=np.float64)
        matrix = np.asarray(task.matrix, dtype=np.float64).reshape(4, 4)
        source = local @ matrix[:3, :3].T + matrix[:3, 3]
        enu = placement.to_enu(source)
        colours = content.get_colors()
        rgb = None
        if colours is not None:
            rgb = np.asarray(colours)
            if rgb.dtype != np.uint8:  # 16-bit colours
                rgb = (rgb >> 8).astype(np.uint8)
        box = Box.around(enu)
        data = write_glb(
            [Primitive(positions=enu, colors=rgb, material=_MATERIAL)],
            center=box.center.tolist(),
            generator=job.generator,
        )
        (Path(job.out_dir) / task.uri).write_bytes(data)
        written.append(_Written(task.uri, box.minimum, box.maximum, len(enu), len(data)))
    return written


class PointRewriter:
    """Rewrites py3dtiles' tiles (``.pnts`` in source coordinates) as GLB in the ENU frame,
    in parallel worker processes when there is enough to do."""

    def __init__(self, source: Path, out_dir: Path, placement: Placement, job: _Job) -> None:
        self.source = source
        self.out_dir = out_dir
        self.placement = placement
        self.job = job
        self.stats = PointStats()

    def run(self, document: dict[str, Any]) -> Tile:
        (self.out_dir / "content").mkdir(parents=True, exist_ok=True)
        tasks: list[_Task] = []
        self._collect(document["root"], np.eye(4), "r", tasks)
        written = {w.uri: w for w in self._execute(tasks)}
        tile = self._tile(document["root"], "r", written)
        if tile is None:
            raise TilesError("the point cloud is empty")
        return tile

    def _collect(
        self, node: dict[str, Any], parent: FloatArray, address: str, tasks: list[_Task]
    ) -> None:
        matrix = parent @ _matrix(node)
        if node.get("content") is not None:
            tasks.append(
                _Task(node["content"]["uri"], tuple(matrix.reshape(-1)), f"content/{address}.glb")
            )
        for k, child in enumerate(node.get("children", [])):
            self._collect(child, matrix, f"{address}{k}", tasks)

    def _execute(self, tasks: list[_Task]) -> list[_Written]:
        workers = min(os.cpu_count() or 1, 8)
        if workers < 2 or len(tasks) < 8:
            return _rewrite(self.job, tasks)
        batches = [tasks[k :: workers * 4] for k in range(workers * 4)]
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = pool.map(_rewrite, [self.job] * len(batches), batches)
            return [w for batch in results for w in batch]

    def _tile(
        self, node: dict[str, Any], address: str, written: dict[str, _Written]
    ) -> Tile | None:
        children = [
            t
            for k, child in enumerate(node.get("children", []))
            if (t := self._tile(child, f"{address}{k}", written)) is not None
        ]
        box: Box | None = None
        uri = None
        mine = written.get(f"content/{address}.glb")
        if mine is not None:
            box = Box(mine.minimum, mine.maximum)
            uri = mine.uri
            self.stats.points += mine.points
            self.stats.tiles += 1
            self.stats.content_bytes += mine.size
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


def rewriter(
    document: dict[str, Any],
    source: Path,
    out_dir: Path,
    crs: pyproj.CRS,
    *,
    allow_ballpark: bool,
    generator: str,
) -> tuple[EnuFrame, PointRewriter]:
    """The ENU frame for py3dtiles' output in ``crs``, and the rewriter that places its tiles."""
    extent = geodetic_extent(crs, source_extent(document), allow_ballpark=allow_ballpark)
    frame = frame_for(extent)
    placement = Placement.georeferenced(crs, frame, allow_ballpark=allow_ballpark)
    job = _Job(
        str(source),
        str(out_dir),
        crs.to_wkt(),
        (frame.lon, frame.lat, frame.h),
        generator,
        allow_ballpark,
    )
    return frame, PointRewriter(source, out_dir, placement, job)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
