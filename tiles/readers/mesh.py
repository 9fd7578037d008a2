"""3D models (glTF/GLB, OBJ, PLY, STL) through trimesh.

Each mesh node of the file becomes one feature (properties: ``name``, ``source``). Materials
keep their base colour, metallic/roughness, double-sidedness and base colour texture.

Axes: a model in local metres is y up if glTF (by specification) or OBJ (by convention: Blender,
SketchUp and most modellers export it so), and z up if PLY or STL; it is placed by an origin,
heading and scale. A model in CRS coordinates is easting, northing, height (z up) whatever its
format. ``up_axis`` overrides both.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import trimesh
from numpy.typing import NDArray
from PIL import Image

from tiles.errors import TilesError
from tiles.georef import Placement
from tiles.gltf import Material, Texture
from tiles.limits import InputLimits
from tiles.model import FeatureModel, MeshPart
from tiles.readers import sniff
from tiles.readers.textures import check_image, check_textures

FloatArray = NDArray[np.float64]

# The usual up axis by format (:attr:`sniff.Format.key`).
UP_AXES = {"glb": "y", "gltf": "y", "obj": "y", "ply": "z", "stl": "z"}

# Rows map file axes to z-up model axes: a y-up (x, y, z) becomes (x, -z, y).
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class _Node:
    name: str
    vertices: FloatArray  # z-up source coordinates
    faces: NDArray[np.int64]
    material: Material
    uvs: FloatArray | None
    colors: NDArray[np.uint8] | None


@dataclass
class MeshSource:
    """A model file, read and checked, in z-up source coordinates."""

    path: Path
    crs: pyproj.CRS | None
    nodes: list[_Node] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def sample_points(self) -> FloatArray:
        return np.concatenate([n.vertices for n in self.nodes])

    def build(self, placement: Placement) -> FeatureModel:
        parts = []
        properties = []
        for index, node in enumerate(self.nodes):
            parts.append(
                MeshPart(
                    vertices=placement.to_enu(node.vertices),
                    faces=node.faces,
                    feature=index,
                    material=node.material,
                    uvs=node.uvs,
                    colors=node.colors,
                )
            )
            properties.append({"name": node.name, "source": self.path.name})
        return FeatureModel(parts, properties)


def supports(path: Path) -> bool:
    """Whether the file is a model (glTF/GLB, OBJ, PLY with faces, STL) by its content."""
    found = sniff.detect_or_none(path)
    return found is not None and found.reader == "mesh"


def has_faces(path: Path) -> bool:
    """Whether a PLY file holds a mesh (as opposed to a point cloud)."""
    try:
        with path.open("rb") as handle:
            return sniff.ply_has_faces(handle.read(sniff.HEAD_SIZE))
    except OSError:
        return False


def read(
    path: Path,
    up_axis: str | None = None,
    file_format: sniff.Format | None = None,
    limits: InputLimits | None = None,
) -> MeshSource:
    """Load and check a model file; raises :class:`TilesError` for unreadable or bad geometry,
    and for textures larger than ``limits`` allow (checked from their headers before anything
    is decoded; default: :meth:`InputLimits.of_this_process`).

    ``file_format`` is what :func:`sniff.detect` found (detected here when not given): the
    content decides how the file is read, not its name.
    """
    found = file_format or sniff.detect(path)
    if found.key not in UP_AXES:
        raise TilesError(f"{found.label} is not a model format")
    limits = limits or InputLimits.of_this_process()
    try:
        check_textures(path, found, limits)
    except OSError as exc:
        raise TilesError(f"cannot read the model: {exc.strerror or exc}") from exc
    up = up_axis or UP_AXES[found.key]
    source = MeshSource(path, None)
    if found is sniff.OBJ:
        source.warnings.extend(_missing_obj_resources(path))
    try:
        scene: Any = trimesh.load(path, file_type=found.key, force="scene", process=False)
    except Exception as exc:  # trimesh raises many kinds for corrupt files
        raise TilesError(f"cannot read the model: {type(exc).__name__}: {exc}") from exc
    rotate = _Y_UP_TO_Z_UP if up == "y" else np.eye(3)
    for node_name in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node_name]
        geometry = scene.geometry.get(geometry_name)
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        vertices = np.asarray(geometry.vertices, dtype=np.float64)
        if not np.isfinite(vertices).all():
            raise TilesError(f"mesh {node_name!r} has NaN or infinite vertex coordinates")
        placed = trimesh.transformations.transform_points(vertices, transform) @ rotate.T
        material, uvs, colors = _appearance(geometry, limits)
        source.nodes.append(
            _Node(
                str(node_name),
                placed,
                np.asarray(geometry.faces, dtype=np.int64),
                material,
                uvs,
                colors,
            )
        )
    if not source.nodes:
        raise TilesError("the file holds no triangles")
    return source


def _missing_obj_resources(path: Path) -> list[str]:
    """Warnings for material libraries and textures an OBJ names but that are not there."""
    warnings: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return warnings
    for library in re.findall(r"^\s*mtllib\s+(.+?)\s*$", text, flags=re.MULTILINE):
        mtl = path.parent / library
        if not mtl.is_file():
            warnings.append(
                f"{path.name}: material library {library!r} not found; using a default material"
            )
            continue
        maps = re.findall(
            r"^\s*map_\w+\s+(?:-\S+\s+\S+\s+)*(.+?)\s*$",
            mtl.read_text(errors="replace"),
            flags=re.MULTILINE,
        )
        for texture in maps:
            if not (mtl.parent / texture).is_file():
                warnings.append(
                    f"{mtl.name}: texture {texture!r} not found; using the material colour"
                )
    return warnings


def _appearance(
    geometry: trimesh.Trimesh, limits: InputLimits
) -> tuple[Material, FloatArray | None, NDArray[np.uint8] | None]:
    visual = geometry.visual
    if isinstance(visual, trimesh.visual.TextureVisuals) and visual.material is not None:
        material: Any = visual.material
        pbr: Any = material.to_pbr() if hasattr(material, "to_pbr") else material
        factor = pbr.baseColorFactor
        base = (1.0, 1.0, 1.0, 1.0) if factor is None else tuple(float(c) / 255.0 for c in factor)
        texture = _texture(getattr(pbr, "baseColorTexture", None), limits)
        uvs = None
        if (
            texture is not None
            and visual.uv is not None
            and len(visual.uv) == len(geometry.vertices)
        ):
            uv = np.asarray(visual.uv, dtype=np.float64)
            uvs = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]])  # trimesh flips V on load
        return (
            Material(
                name=str(getattr(pbr, "name", None) or "material"),
                base_color=(base[0], base[1], base[2], base[3] if len(base) > 3 else 1.0),
                metallic=float(pbr.metallicFactor if pbr.metallicFactor is not None else 0.0),
                roughness=float(pbr.roughnessFactor if pbr.roughnessFactor is not None else 1.0),
                texture=texture if uvs is not None else None,
                double_sided=bool(getattr(pbr, "doubleSided", False)),
            ),
            uvs,
            None,
        )
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
        return (
            Material(name="vertex colours"),
            None,
            np.asarray(visual.vertex_colors, dtype=np.uint8),
        )
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "face":
        colour = np.asarray(visual.face_colors, dtype=np.float64).mean(axis=0) / 255.0
        return Material("face colours", (colour[0], colour[1], colour[2], colour[3])), None, None
    return Material(), None, None


def _texture(image: Any, limits: InputLimits) -> Texture | None:
    """The image re-encoded (JPEG stays JPEG, anything else becomes PNG); it is decoded here,
    after its size was checked against ``limits``."""
    if image is None or not isinstance(image, Image.Image):
        return None
    check_image(image, repr(str(image.info.get("file_path") or "of a material")[:80]), limits)
    buffer = io.BytesIO()
    if image.format == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
        return Texture(buffer.getvalue(), "image/jpeg")
    image.save(buffer, format="PNG")
    return Texture(buffer.getvalue(), "image/png")
