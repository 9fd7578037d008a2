"""Turns a :class:`FeatureModel` (ENU metres) into a tree of tiles with GLB content.

Two ways to split, picked by the shape of the data:

- **Many small features** (buildings, cables, zones): a k-d tree over feature centres; whole
  features stay together in one leaf, leaves hold the content, parents are empty and refine
  ``ADD``. Parents' geometric error is a quarter of their box diagonal.
- **Large features** (a scanned street, a big model): a k-d tree over triangle centres with up
  to four children per tile; leaves hold the full-detail triangles, every parent holds its
  children's content merged and simplified by quadric decimation (``fast-simplification``) to
  about the leaf budget, refine ``REPLACE``.
  Geometric error is 0 at the leaves and at least doubles per level upwards; a parent's error is
  the typical edge length of its simplified mesh (detail smaller than that is gone). Coarse levels
  keep materials but drop textures, tinted with the texture's mean colour.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import fast_simplification
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tiles.gltf import Material, Primitive, PropertyTable, write_glb
from tiles.model import FeatureModel, IndexArray, MeshPart, face_normals_to_vertices
from tiles.tileset import Box, Refine, Tile

ProgressCallback = Callable[[float, str], None]

#: Triangles per tile: small enough for a headset to stream, large enough to limit draw calls.
DEFAULT_MAX_TRIANGLES = 50_000


@dataclass
class TilingStats:
    tiles: int = 0
    content_bytes: int = 0
    triangles_written: int = 0


@dataclass
class _Selection:
    """A subset of the model: for each part index, the indices of its selected faces."""

    faces: dict[int, IndexArray]

    def triangle_count(self) -> int:
        return sum(int(f.size) for f in self.faces.values())


class Tiler:
    """Writes ``content/*.glb`` under ``out_dir`` and returns the root :class:`Tile`."""

    def __init__(
        self,
        model: FeatureModel,
        out_dir: Path,
        *,
        max_triangles: int = DEFAULT_MAX_TRIANGLES,
        generator: str = "arserver tiles",
        progress: ProgressCallback | None = None,
    ) -> None:
        self.model = model
        self.out_dir = out_dir
        self.max_triangles = max(max_triangles, 64)
        self.generator = generator
        self.progress = progress
        self.stats = TilingStats()
        self._done_triangles = 0
        self._lock = threading.Lock()  # stats and progress are shared by the builder threads
        self._centroids = [p.vertices[p.faces].mean(axis=1) for p in model.parts]
        self._part_centres = np.array([c.mean(axis=0) for c in self._centroids]).reshape(-1, 3)

    def run(self) -> Tile:
        (self.out_dir / "content").mkdir(parents=True, exist_ok=True)
        everything = _Selection(
            {i: np.arange(p.triangle_count) for i, p in enumerate(self.model.parts)}
        )
        largest = max((p.triangle_count for p in self.model.parts), default=0)
        if everything.triangle_count() <= self.max_triangles:
            tile = self._leaf(everything, "r", refine="REPLACE")
        elif largest <= self.max_triangles // 4:
            tile = self._feature_tree(everything, "r")
        else:
            # Sibling subtrees are independent and decimation releases the GIL: build the
            # root's children on all cores.
            workers = max(min(os.cpu_count() or 1, 4), 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                tile, _ = self._lod_tree(everything, "r", pool)
        return tile

    # -- many small features -------------------------------------------------------------

    def _feature_tree(self, selection: _Selection, address: str) -> Tile:
        if selection.triangle_count() <= self.max_triangles or len(selection.faces) <= 1:
            return self._leaf(selection, address, refine="ADD")
        parts = list(selection.faces)
        centres = self._part_centres[parts]
        axis = int(np.argmax(np.ptp(centres[:, :2], axis=0)))
        order = np.argsort(centres[:, axis], kind="stable")
        # Split where half of the triangles are on each side (whole parts stay together).
        weights = np.array([selection.faces[parts[i]].size for i in order])
        cut = int(np.searchsorted(np.cumsum(weights), weights.sum() / 2.0)) + 1
        cut = min(max(cut, 1), len(order) - 1)
        halves = [order[:cut], order[cut:]]
        children = [
            self._feature_tree(
                _Selection({parts[i]: selection.faces[parts[i]] for i in half}), f"{address}{k}"
            )
            for k, half in enumerate(halves)
        ]
        box = children[0].box.union(children[1].box)
        error = max(box.diagonal / 4.0, 2.0 * max(c.geometric_error for c in children), 0.01)
        return Tile(box=box, geometric_error=error, refine="ADD", children=children)

    # -- large features: levels of detail --------------------------------------------------

    def _lod_tree(
        self, selection: _Selection, address: str, pool: ThreadPoolExecutor | None = None
    ) -> tuple[Tile, list[MeshPart]]:
        """The subtree for ``selection`` and the content its parent simplifies further; with a
        ``pool``, the children are built concurrently (only at the top, never nested)."""
        if selection.triangle_count() <= self.max_triangles:
            parts = [_subset(self.model.parts[i], f) for i, f in selection.faces.items()]
            return self._leaf(selection, address, refine="REPLACE", parts=parts), parts
        # Up to four children (two k-d splits): fewer levels, so less decimation in all.
        quarters: list[_Selection] = []
        for half in self._split_triangles(selection):
            if half.triangle_count() > self.max_triangles:
                quarters.extend(self._split_triangles(half))
            else:
                quarters.append(half)
        if pool is None:
            built = [self._lod_tree(q, f"{address}{k}") for k, q in enumerate(quarters)]
        else:
            futures = [
                pool.submit(self._lod_tree, q, f"{address}{k}") for k, q in enumerate(quarters)
            ]
            built = [future.result() for future in futures]
        children = [tile for tile, _ in built]
        # Each level simplifies its children's content, not the originals: the work per level
        # stays near the leaf budget instead of the whole mesh.
        parts = self._simplified([part for _, content in built for part in content])
        # Decimation may move vertices a little outwards: the box must hold them too.
        box = Box.around(np.concatenate([p.vertices for p in parts]))
        for child in children:
            box = box.union(child.box)
        edge = _typical_edge(parts)
        error = max(edge, 2.0 * max(c.geometric_error for c in children), 0.01)
        uri = self._write(parts, address)
        tile = Tile(
            box=box, geometric_error=error, content_uri=uri, refine="REPLACE", children=children
        )
        return tile, parts

    def _split_triangles(self, selection: _Selection) -> tuple[_Selection, _Selection]:
        centres = np.concatenate([self._centroids[i][f] for i, f in selection.faces.items()])
        extent = np.ptp(centres, axis=0)
        axis = int(np.argmax(extent))
        median = float(np.median(centres[:, axis]))
        left: dict[int, IndexArray] = {}
        right: dict[int, IndexArray] = {}
        for i, faces in selection.faces.items():
            below = self._centroids[i][faces, axis] <= median
            if below.any():
                left[i] = faces[below]
            if (~below).any():
                right[i] = faces[~below]
        if not left or not right:  # all centres equal along the axis: split by count instead
            flat = [(i, f) for i, faces in selection.faces.items() for f in faces]
            half = len(flat) // 2
            left, right = _group(flat[:half]), _group(flat[half:])
        return _Selection(left), _Selection(right)

    def _simplified(self, pieces: list[MeshPart]) -> list[MeshPart]:
        """``pieces`` merged per feature and material (welding shared vertices), decimated so
        that together they hold about the leaf budget of triangles."""
        groups: dict[tuple[int, Material], list[MeshPart]] = defaultdict(list)
        for piece in pieces:
            groups[(piece.feature, piece.material)].append(piece)
        total = sum(p.triangle_count for p in pieces)
        ratio = self.max_triangles / max(total, 1)
        result: list[MeshPart] = []
        for (feature, material), group in groups.items():
            part = _weld(group, feature, material)
            target = max(int(part.triangle_count * ratio), 4)
            if part.triangle_count > 16 and target < part.triangle_count:
                vertices, new_faces = fast_simplification.simplify(
                    part.vertices, part.faces.astype(np.int32), target_count=target
                )
                if len(new_faces) == 0:
                    continue
                part = MeshPart(
                    vertices=np.asarray(vertices, dtype=np.float64),
                    faces=np.asarray(new_faces, dtype=np.int64),
                    feature=feature,
                    material=_untextured(material),
                )
            elif material.texture is not None:
                part = replace(part, material=_untextured(material), uvs=None)
            result.append(part)
        return result

    # -- content -----------------------------------------------------------------------------

    def _leaf(
        self,
        selection: _Selection,
        address: str,
        *,
        refine: Refine,
        parts: list[MeshPart] | None = None,
    ) -> Tile:
        if parts is None:
            parts = [_subset(self.model.parts[i], f) for i, f in selection.faces.items()]
        uri = self._write(parts, address)
        box = Box.around(np.concatenate([p.vertices for p in parts]))
        with self._lock:
            self._done_triangles += selection.triangle_count()
            if self.progress is not None:
                total = max(self.model.triangle_count, 1)
                self.progress(min(self._done_triangles / total, 1.0), "writing tiles")
        return Tile(box=box, geometric_error=0.0, content_uri=uri, refine=refine)

    def _write(self, parts: list[MeshPart], address: str) -> str:
        features = sorted({p.feature for p in parts})
        local = {f: k for k, f in enumerate(features)}
        by_material: dict[Material, list[MeshPart]] = defaultdict(list)
        for part in parts:
            by_material[part.material].append(part)
        primitives = [_primitive(group, local) for group in by_material.values()]
        names = _property_names([self.model.properties[f] for f in features])
        table = PropertyTable(
            len(features),
            {name: [self.model.properties[f].get(name) for f in features] for name in names},
        )
        all_vertices = np.concatenate([p.vertices for p in parts])
        centre = (all_vertices.min(axis=0) + all_vertices.max(axis=0)) / 2.0
        data = write_glb(primitives, center=centre, properties=table, generator=self.generator)
        uri = f"content/{address}.glb"
        (self.out_dir / uri).write_bytes(data)
        with self._lock:
            self.stats.tiles += 1
            self.stats.content_bytes += len(data)
            self.stats.triangles_written += sum(p.triangle_count for p in parts)
        return uri


def _weld(pieces: list[MeshPart], feature: int, material: Material) -> MeshPart:
    """One mesh from pieces of the same feature and material; vertices at the same position
    (the seams between sibling tiles) become one, so decimation sees a connected surface."""
    vertices = np.concatenate([p.vertices for p in pieces])
    offsets = np.cumsum([0] + [p.vertices.shape[0] for p in pieces])
    faces = np.concatenate([p.faces + offsets[k] for k, p in enumerate(pieces)])
    rows = np.ascontiguousarray(vertices).view(np.dtype((np.void, 24))).reshape(-1)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return MeshPart(vertices[first], inverse.reshape(-1)[faces], feature, material)


def _group(pairs: list[tuple[int, Any]]) -> dict[int, IndexArray]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for i, f in pairs:
        grouped[i].append(int(f))
    return {i: np.asarray(f, dtype=np.int64) for i, f in grouped.items()}


def _subset(part: MeshPart, faces: IndexArray) -> MeshPart:
    """The part restricted to some of its faces, with only the vertices those faces use."""
    if faces.size == part.triangle_count:
        return part
    selected = part.faces[faces]
    used, inverse = np.unique(selected, return_inverse=True)
    return MeshPart(
        vertices=part.vertices[used],
        faces=inverse.reshape(-1, 3).astype(np.int64),
        feature=part.feature,
        material=part.material,
        normals=None if part.normals is None else part.normals[used],
        uvs=None if part.uvs is None else part.uvs[used],
        colors=None if part.colors is None else part.colors[used],
    )


def _primitive(parts: list[MeshPart], local_ids: dict[int, int]) -> Primitive:
    offsets = np.cumsum([0] + [p.vertices.shape[0] for p in parts])
    vertices = np.concatenate([p.vertices for p in parts])
    faces = np.concatenate([p.faces + offsets[k] for k, p in enumerate(parts)])
    normals = np.concatenate(
        [
            p.normals if p.normals is not None else face_normals_to_vertices(p.vertices, p.faces)
            for p in parts
        ]
    )
    material = parts[0].material
    uvs = None
    if material.texture is not None and all(p.uvs is not None for p in parts):
        uvs = np.concatenate([p.uvs for p in parts if p.uvs is not None])
    ids = np.concatenate([np.full(p.vertices.shape[0], local_ids[p.feature]) for p in parts])
    colors = None
    if all(p.colors is not None for p in parts):
        colors = np.concatenate([_rgba(p.colors) for p in parts if p.colors is not None])
    return Primitive(
        positions=vertices,
        indices=faces,
        normals=normals,
        uvs=uvs,
        colors=colors,
        feature_ids=ids,
        material=material if uvs is not None or material.texture is None else _untextured(material),
    )


def _rgba(colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if colors.shape[1] == 4:
        return colors
    return np.concatenate([colors, np.full((colors.shape[0], 1), 255, dtype=np.uint8)], axis=1)


def _property_names(properties: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for p in properties:
        for name in p:
            names.setdefault(name, None)
    return list(names)


def _typical_edge(parts: list[MeshPart]) -> float:
    """The square root of the mean triangle area (metres): the size of the detail kept."""
    areas = []
    for p in parts:
        v = p.vertices[p.faces]
        areas.append(0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1))
    if not areas:
        return 0.0
    return float(math.sqrt(max(float(np.concatenate(areas).mean()), 0.0)))


@lru_cache(maxsize=64)
def _mean_colour(data: bytes) -> tuple[float, float, float]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float64) / 255.0
    except OSError:
        return (1.0, 1.0, 1.0)
    mean = rgb.reshape(-1, 3).mean(axis=0) ** 2.2  # sRGB image -> linear base colour factor
    return (float(mean[0]), float(mean[1]), float(mean[2]))


def _untextured(material: Material) -> Material:
    if material.texture is None:
        return material
    r, g, b = _mean_colour(material.texture.data)
    base = material.base_color
    return replace(
        material,
        texture=None,
        base_color=(base[0] * r, base[1] * g, base[2] * b, base[3]),
    )
