"""``tiles.convert``: input files to a 3D Tiles 1.1 tileset, atomically.

The library entry point used by ``arserver convert`` and the service's conversion jobs. It picks
a reader per input by the file's content, not its name (:mod:`tiles.readers.sniff`), places
everything in one East-North-Up frame near the data (root ``transform`` to ECEF), tiles, writes
``tileset.json`` + ``content/*.glb`` into a temporary directory beside ``out_dir`` and renames
it into place: a failure leaves ``out_dir`` untouched. Mesh and feature tilesets also get
``features.json``, each feature's id and position (:mod:`tiles.features`); point clouds do not.
Progress goes to ``progress(fraction 0..1, stage name)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pyproj

from tiles import __version__, points
from tiles.atomic import atomic_directory
from tiles.crs import EnuFrame, parse_crs
from tiles.errors import TilesError, UnsupportedFormatError
from tiles.features import index_features, with_ids, write_features
from tiles.georef import LocalPlacement, Placement, frame_for, geodetic_extent, with_heights
from tiles.limits import InputLimits
from tiles.model import FeatureModel
from tiles.readers import Source, cityjson, geojson, mesh, sniff
from tiles.readers.geojson import FeatureOptions
from tiles.tiler import DEFAULT_MAX_TRIANGLES, Tiler
from tiles.tileset import Tile, Tileset

ProgressCallback = Callable[[float, str], None]

GENERATOR = f"arserver tiles {__version__}"


class InputError(TilesError):
    """An input file that cannot be converted; the message starts with the file name."""


@dataclass(frozen=True)
class ConvertOptions:
    """How to read and place the inputs.

    ``crs`` overrides or supplies the source CRS (``EPSG:7415`` for RD New + NAP). ``origin``
    (ETRS89 longitude, latitude, ellipsoidal height) places inputs in local metres, turned by
    ``heading_deg`` (clockwise from north) and scaled by ``scale``. ``up_axis`` ("y" or "z")
    overrides a model format's usual up axis; ``cityjson_lod`` picks a CityJSON level of
    detail (default: the highest in the file). ``limits`` bounds what decoding the inputs may
    cost (textures, LAZ point counts; default: from this process's memory limit).
    """

    crs: str | None = None
    origin: tuple[float, float, float] | None = None
    heading_deg: float = 0.0
    scale: float = 1.0
    up_axis: str | None = None
    cityjson_lod: str | None = None
    allow_ballpark: bool = False
    max_triangles_per_tile: int = DEFAULT_MAX_TRIANGLES
    features: FeatureOptions = field(default_factory=FeatureOptions)
    limits: InputLimits = field(default_factory=InputLimits.of_this_process)


class ConversionSummary(TypedDict):
    """What a conversion produced and how it was placed; also stored in the tileset's
    ``asset.extras.arserver``. Degrees are WGS 84 (taken as ETRS89), heights ellipsoidal
    metres; ``origin`` is the tileset frame's (lon, lat, h); ``accuracy_m`` the worst accuracy
    of the transformations used (None when one of them does not state it); ``counts`` what was
    written (features, triangles or points, tiles, content bytes)."""

    sources: list[str]
    source_crs: list[str]
    transformation: list[str]
    accuracy_m: float | None
    frame: str
    origin: list[float]
    wgs84_bbox: list[float]
    height_range: list[float]
    tool: str
    counts: dict[str, int]


@dataclass
class ConversionReport:
    """What a conversion produced; ``summary`` is also stored in ``asset.extras.arserver``."""

    out_dir: Path
    seconds: float
    summary: ConversionSummary
    warnings: list[str] = field(default_factory=list)

    @property
    def tileset(self) -> Path:
        return self.out_dir / "tileset.json"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")


def _detect(path: Path) -> sniff.Format:
    """The input's format by its content: one open and a small read (or a streaming scan of a
    JSON document's top level)."""
    try:
        return sniff.detect(path)
    except UnsupportedFormatError as exc:
        raise InputError(f"{path}: {exc.reason}") from exc
    except TilesError as exc:
        raise InputError(f"{path}: {exc}") from exc


def _convert_points(
    paths: list[Path],
    formats: list[sniff.Format],
    out: Path,
    options: ConvertOptions,
    report: ProgressCallback,
    started: float,
) -> ConversionReport:
    report(0.0, "reading point cloud headers")
    found: list[pyproj.CRS] = []
    for path, file_format in zip(paths, formats, strict=True):
        try:
            points.check_header(path, file_format, options.limits)
            crs = parse_crs(options.crs) if options.crs else points.file_crs(path, file_format)
        except TilesError as exc:
            raise InputError(f"{path}: {exc}") from exc
        if crs is None:
            raise InputError(
                f"{path}: no CRS in the file's metadata; add --crs EPSG:N "
                "(EPSG:7415 for RD New + NAP)"
            )
        found.append(crs)
    if any(c != found[0] for c in found):
        raise InputError(
            f"{paths[0]}: the point clouds are in different CRS; convert them separately"
        )
    crs = with_heights(found[0])
    with atomic_directory(out) as work:
        scratch = work / "_octree"
        links = work / "_inputs"  # inputs under the extension of their content, for py3dtiles
        named = [
            points.named_for_py3dtiles(p, f, links) for p, f in zip(paths, formats, strict=True)
        ]
        report(0.05, "building the octree (py3dtiles)")
        try:
            document = points.run_py3dtiles(named, scratch, crs, options.limits.point_cache_mib)
            frame, rewriter = points.rewriter(
                document,
                scratch,
                work,
                crs,
                allow_ballpark=options.allow_ballpark,
                generator=GENERATOR,
            )
        except TilesError as exc:
            raise InputError(f"{paths[0]}: {exc}") from exc
        report(0.6, "placing points and writing tiles")
        root = rewriter.run(document)
        placement = rewriter.placement
        points.remove(scratch)
        points.remove(links)
        root.transform = frame.tileset_transform()
        stats = rewriter.stats
        counts = {
            "points_in_tiles": stats.points,  # py3dtiles repeats a sample in the root preview
            "tiles": stats.tiles,
            "content_bytes": stats.content_bytes,
        }
        summary = _summary(paths, [placement], frame, root, counts)
        report(0.97, "writing tileset.json")
        _write_tileset(work, root, summary)
    report(1.0, "done")
    notes = _name_notes(paths, formats)
    return ConversionReport(out, time.perf_counter() - started, summary, notes)


def _name_notes(paths: list[Path], formats: list[sniff.Format]) -> list[str]:
    notes = (sniff.name_mismatch(p, f) for p, f in zip(paths, formats, strict=True))
    return [note for note in notes if note is not None]


def _read(path: Path, file_format: sniff.Format, options: ConvertOptions) -> Source:
    try:
        if file_format.reader == "cityjson":
            return cityjson.read(path, options.cityjson_lod)
        if file_format.reader == "geojson":
            return geojson.read(path, options.features)
        if file_format.reader == "mesh":
            # CRS coordinates are easting, northing, height: z up whatever the format.
            up_axis = options.up_axis or ("z" if options.crs else None)
            return mesh.read(path, up_axis, file_format, options.limits)
    except TilesError as exc:
        raise InputError(f"{path}: {exc}") from exc
    raise InputError(f"{path}: {file_format.label} is not read here")


def _placement_crs(source: Source, options: ConvertOptions) -> Any:
    if options.crs is not None:
        return options.crs
    if source.crs is not None:
        return source.crs
    if isinstance(source, geojson.GeoJsonSource) and geojson.looks_geographic(source):
        return "EPSG:4326"  # RFC 7946: GeoJSON without a crs member is WGS 84 lon/lat
    return None


def convert(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    options: ConvertOptions | None = None,
    progress: ProgressCallback | None = None,
) -> ConversionReport:
    """Convert ``inputs`` into a tileset at ``out_dir``; raises :class:`TilesError` subclasses
    with a message naming the file and the problem. Nothing is written on failure."""
    options = options or ConvertOptions()
    report = progress or (lambda fraction, stage: None)
    started = time.perf_counter()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("no input files given")
    for path in paths:
        _check_file(path)
    formats = [_detect(p) for p in paths]
    clouds = [p for p, f in zip(paths, formats, strict=True) if f.is_point_cloud]
    if clouds and len(clouds) < len(paths):
        raise InputError(
            f"{clouds[0]}: point clouds and other inputs go into separate tilesets; "
            "convert them separately"
        )
    if clouds:
        return _convert_points(paths, formats, Path(out_dir), options, report, started)
    report(0.0, "reading")
    sources = [_read(p, f, options) for p, f in zip(paths, formats, strict=True)]

    report(0.1, "georeferencing")
    frame, placements = _place(sources, options)
    models = []
    for k, (source, placement) in enumerate(zip(sources, placements, strict=True)):
        try:
            models.append(source.build(placement))
        except TilesError as exc:
            raise InputError(f"{source.path}: {exc}") from exc
        report(0.1 + 0.3 * (k + 1) / len(sources), "building geometry")
    model = _merge(models)
    if not model.parts:
        raise InputError(f"{', '.join(map(str, paths))}: no geometry to convert")
    model, ids = with_ids(model)
    features = index_features(model, ids, frame)

    out = Path(out_dir)
    with atomic_directory(out) as work:
        tiler = Tiler(
            model,
            work,
            max_triangles=options.max_triangles_per_tile,
            generator=GENERATOR,
            progress=lambda f, stage: report(0.4 + 0.55 * f, stage),
        )
        root = tiler.run()
        root.transform = frame.tileset_transform()
        counts = {
            "features": len(model.properties),
            "triangles": model.triangle_count,
            "tiles": tiler.stats.tiles,
            "content_bytes": tiler.stats.content_bytes,
        }
        summary = _summary(paths, placements, frame, root, counts)
        report(0.97, "writing tileset.json")
        write_features(features, work)
        _write_tileset(work, root, summary)
    report(1.0, "done")
    notes = _name_notes(paths, formats)
    notes += [w for source in sources for w in getattr(source, "warnings", [])]
    duplicates = features.warning()
    if duplicates is not None:
        notes.append(duplicates)
    return ConversionReport(out, time.perf_counter() - started, summary, notes)


def _write_tileset(work: Path, root: Tile, summary: ConversionSummary) -> None:
    """tileset.json, with the provenance in ``asset.extras.arserver``."""
    tileset = Tileset(root, max(root.geometric_error, root.box.diagonal / 2.0), GENERATOR)
    tileset.extras = {"arserver": summary}
    (work / "tileset.json").write_text(json.dumps(tileset.to_dict(), indent=1), encoding="utf-8")


def _place(sources: list[Source], options: ConvertOptions) -> tuple[EnuFrame, list[Placement]]:
    crs_of = [_placement_crs(s, options) for s in sources]
    missing = [s.path for s, c in zip(sources, crs_of, strict=True) if c is None]
    if missing and options.origin is None:
        raise InputError(
            f"{missing[0]}: no CRS in the file's metadata; add --crs EPSG:N for coordinates in a "
            "CRS (EPSG:7415 for RD New + NAP), or --origin LON,LAT,H to place a model in local "
            "metres"
        )
    extents = []
    for source, crs in zip(sources, crs_of, strict=True):
        if crs is not None:
            try:
                extents.append(
                    geodetic_extent(
                        crs, source.sample_points(), allow_ballpark=options.allow_ballpark
                    )
                )
            except TilesError as exc:
                raise InputError(f"{source.path}: {exc}") from exc
    if extents:
        frame = frame_for(np.concatenate(extents))
    else:
        assert options.origin is not None
        frame = EnuFrame(*options.origin)
    placements = []
    for source, crs in zip(sources, crs_of, strict=True):
        if crs is None:
            assert options.origin is not None
            local = LocalPlacement(options.origin, options.heading_deg, options.scale)
            placements.append(Placement.local(local, frame))
        else:
            try:
                placements.append(
                    Placement.georeferenced(crs, frame, allow_ballpark=options.allow_ballpark)
                )
            except TilesError as exc:
                raise InputError(f"{source.path}: {exc}") from exc
    return frame, placements


def _merge(models: list[FeatureModel]) -> FeatureModel:
    parts = []
    properties: list[dict[str, Any]] = []
    for model in models:
        offset = len(properties)
        for part in model.parts:
            part.feature += offset
            parts.append(part)
        properties.extend(model.properties)
    return FeatureModel(parts, properties)


def _summary(
    paths: list[Path],
    placements: list[Placement],
    frame: EnuFrame,
    root: Tile,
    counts: dict[str, int],
) -> ConversionSummary:
    corners = np.array(
        [[x, y, z] for x in (root.box.minimum[0], root.box.maximum[0])
         for y in (root.box.minimum[1], root.box.maximum[1])
         for z in (root.box.minimum[2], root.box.maximum[2])]
    )  # fmt: skip
    lon, lat, h = frame.to_geodetic(corners[:, 0], corners[:, 1], corners[:, 2])
    operations = [p.operation for p in placements if p.operation is not None]
    accuracies = [o.accuracy_m for o in operations]
    known = [a for a in accuracies if a is not None]
    return {
        "sources": [str(p.name) for p in paths],
        "source_crs": sorted({p.source for p in placements}),
        "transformation": [o.description for o in operations] or ["local placement"],
        "accuracy_m": None if len(known) < len(accuracies) else max(known, default=0.0),
        "frame": "ETRS89, in the Earth-centred frame 3D Tiles calls WGS 84 (EPSG:4978)",
        "origin": [frame.lon, frame.lat, frame.h],
        "wgs84_bbox": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
        "height_range": [float(h.min()), float(h.max())],
        "tool": GENERATOR,
        "counts": counts,
    }
