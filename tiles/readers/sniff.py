"""Telling input formats apart by their content, and loading JSON documents.

:func:`detect` opens a file once, reads its first 64 KiB and decides from what the bytes are,
not from the file's name:

- GLB by its ``glTF`` magic; LAS by its ``LASF`` signature, LAZ when the point data format's
  compression bit is set or a ``laszip encoded`` VLR is present; PLY by its ``ply`` first line,
  a mesh if its header declares faces, else a point cloud; binary STL by its size (84 + 50 bytes
  per triangle, whatever its 80-byte header says, "solid" included), ASCII STL by ``solid``
  followed by facets.
- JSON objects by their top-level ``"type"`` member wherever it stands in the document (tools
  such as cjio and 3DBAG write megabytes of ``CityObjects`` before it): ``"CityJSON"``, or
  ``"FeatureCollection"``, ``"Feature"`` or a geometry type for GeoJSON. The top level is
  streamed with ijson (its C backend, yajl2_c, when installed), which skips nested values
  without building them and stops at the member. An object without a top-level type but with
  an ``asset`` member is glTF.
- Plain text: OBJ when its lines are OBJ statements (``v``, ``f``, ``mtllib``, ...), XYZ points
  when they are rows of three or more numbers (after an optional header line).

The file extension only breaks ties, when the content fits more than one format: a text file
whose first 64 KiB hold nothing but comments and blank lines, or only a header line, fits OBJ
and XYZ alike; ``.obj`` and ``.xyz`` then decide. A file whose name says one thing and whose
content another is read by its content (:func:`name_mismatch` words a note about it).

Content that is a known but unsupported format (PNG, PDF, ZIP, a 3D Tiles tileset, ...) or no
recognisable format at all raises :class:`tiles.errors.UnsupportedFormatError`.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson  # type: ignore[import-untyped]

from tiles.errors import TilesError, UnsupportedFormatError

try:  # the C backend, about three times faster than the pure Python one
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:
    _ijson = ijson  # the best backend ijson could load
IJSON_BACKEND: str = _ijson.backend

HEAD_SIZE = 64 * 1024
SUPPORTED = "glTF/GLB, OBJ, PLY, STL, LAS/LAZ, XYZ, GeoJSON, CityJSON"


@dataclass(frozen=True)
class Format:
    """A supported input format.

    ``extension`` is the one the underlying reader (trimesh, py3dtiles) knows it by, ``names``
    the extensions that say this format, and ``reader`` which of our readers takes it:
    ``"mesh"``, ``"points"``, ``"geojson"`` or ``"cityjson"``.
    """

    key: str
    label: str
    extension: str
    names: tuple[str, ...]
    reader: str

    @property
    def is_point_cloud(self) -> bool:
        return self.reader == "points"


GLB = Format("glb", "GLB (binary glTF)", ".glb", (".glb",), "mesh")
GLTF = Format("gltf", "glTF", ".gltf", (".gltf",), "mesh")
OBJ = Format("obj", "OBJ", ".obj", (".obj",), "mesh")
PLY_MESH = Format("ply", "PLY mesh", ".ply", (".ply",), "mesh")
PLY_POINTS = Format("ply", "PLY point cloud", ".ply", (".ply",), "points")
STL = Format("stl", "STL", ".stl", (".stl",), "mesh")
LAS = Format("las", "LAS", ".las", (".las",), "points")
LAZ = Format("laz", "LAZ", ".laz", (".laz",), "points")
XYZ = Format("xyz", "XYZ points", ".xyz", (".xyz",), "points")
GEOJSON = Format("geojson", "GeoJSON", ".geojson", (".geojson", ".json"), "geojson")
CITYJSON = Format("cityjson", "CityJSON", ".json", (".json", ".cityjson"), "cityjson")

# Names of other formats' extensions, to tell when a name contradicts the content.
_KNOWN_NAMES = frozenset(
    name
    for f in (GLB, GLTF, OBJ, PLY_MESH, STL, LAS, LAZ, XYZ, GEOJSON, CITYJSON)
    for name in f.names
)

_GEOJSON_TYPES = frozenset(
    (
        "FeatureCollection",
        "Feature",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    )
)
_GLTF_MEMBERS = frozenset(
    ("accessors", "buffers", "bufferViews", "meshes", "nodes", "scenes", "scene", "materials")
)
_OTHER_JSON_TYPES = {
    "CityJSONFeature": "a CityJSONFeature (one line of a CityJSON Text Sequence)",
    "Topology": "TopoJSON",
}

# Leading bytes of formats people mistake for models or point clouds.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a BigTIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (KMZ, 3MF and USDZ are ZIP archives too)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"(\xb5/\xfd", "a Zstandard-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database (a GeoPackage, perhaps)"),
    (b"\x00\x00\x27\x0a", "an ESRI shapefile"),
    (b"Kaydara FBX Binary", "an FBX model"),
    (b"BLENDER", "a Blender file"),
    (b"PXR-USDC", "a USD file"),
    (b"ASTM-E57", "an E57 point cloud"),
    (b"DRACO", "a Draco-compressed mesh"),
    (b"AutoCAD Binary DXF", "a DXF drawing"),
    (b"AC10", "a DWG drawing"),
    (b"b3dm", "a 3D Tiles b3dm tile"),
    (b"i3dm", "a 3D Tiles i3dm tile"),
    (b"pnts", "a 3D Tiles pnts tile"),
    (b"cmpt", "a 3D Tiles composite tile"),
    (b"subt", "a 3D Tiles subtree file"),
)

_OBJ_STATEMENTS = frozenset(
    (
        "v", "vt", "vn", "vp", "f", "l", "p", "o", "g", "s", "mg", "mtllib", "usemtl", "maplib",
        "usemap", "cstype", "deg", "bmat", "step", "curv", "curv2", "surf", "parm", "trim",
        "hole", "scrv", "sp", "end", "con", "lod", "bevel", "c_interp", "d_interp", "trace_obj",
        "shadow_obj", "ctech", "stech", "call", "csh",
    )
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s,;]+")


def detect(path: Path) -> Format:
    """The format of ``path`` by its content (see the module docstring for the rules); the
    extension counts only where the content fits OBJ and XYZ alike.

    Raises :class:`UnsupportedFormatError` for content that is no supported format (the message
    names what it looks like) or no recognisable format, and :class:`TilesError` for a file
    that cannot be read.
    """
    try:
        with path.open("rb") as handle:
            return _detect(handle, path)
    except OSError as exc:
        raise TilesError(f"cannot read the file: {exc.strerror or exc}") from exc


def detect_or_none(path: Path) -> Format | None:
    """:func:`detect`, with None for unsupported or unreadable files."""
    try:
        return detect(path)
    except TilesError:
        return None


def name_mismatch(path: Path, found: Format) -> str | None:
    """A note when the file's extension names another supported format than its content."""
    suffix = path.suffix.lower()
    if suffix in _KNOWN_NAMES and suffix not in found.names:
        return (
            f"{path.name}: read as {found.label}, which its content is, despite the {suffix} name"
        )
    return None


def unsupported(path: Path, description: str) -> UnsupportedFormatError:
    """The error for content that is recognisably ``description``, but not a supported input."""
    return UnsupportedFormatError(
        path.name,
        f"looks like {description}, which is not a supported input (supported: {SUPPORTED})",
        detected=description,
    )


def _unknown(path: Path, why: str = "") -> UnsupportedFormatError:
    suffix = path.suffix.lower()
    if suffix in _KNOWN_NAMES:
        named = f"it is not what its {suffix} name says, nor any other supported format"
    else:
        named = f"unsupported input format {path.suffix or '(no extension)'!r}"
    return UnsupportedFormatError(
        path.name,
        f"cannot tell the format of {path.name} from its content{why} "
        f"({named}; supported: {SUPPORTED})",
        named=True,
    )


def _detect(handle: IO[bytes], path: Path) -> Format:
    size = os.fstat(handle.fileno()).st_size
    head = handle.read(HEAD_SIZE)
    if not head:
        raise UnsupportedFormatError(path.name, "the file is empty", detected="an empty file")
    if head.startswith(b"glTF"):
        return GLB
    if head.startswith(b"LASF"):
        return _las(handle, head)
    if re.match(rb"ply\r?\n", head):
        return PLY_MESH if ply_has_faces(head) else PLY_POINTS
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        raise unsupported(path, "a WebP image")
    for magic, description in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise unsupported(path, description)
    if _binary_stl(head, size):
        return STL
    text = _text(head)
    if text is None:
        raise _unknown(path)
    body = text.lstrip(" \t\r\n")
    if body.startswith("{"):
        handle.seek(3 if head.startswith(b"\xef\xbb\xbf") else 0)
        return _json(handle, path)
    if body.startswith("["):
        raise unsupported(path, "a JSON array (GeoJSON and CityJSON are JSON objects)")
    if re.match(r"solid\b", body) and re.search(r"^\s*(facet|endsolid)\b", body, re.MULTILINE):
        return STL
    foreign = _foreign_text(body)
    if foreign is not None:
        raise unsupported(path, foreign)
    truncated = len(head) == HEAD_SIZE and size > HEAD_SIZE
    return _plain_text(path, text, truncated)


def ply_has_faces(head: bytes) -> bool:
    """Whether a PLY header (the file's first bytes) declares faces: a mesh, not points."""
    header = head.split(b"end_header", 1)[0]
    match = re.search(rb"element face (\d+)", header)
    return bool(match and int(match.group(1)) > 0)


def _las(handle: IO[bytes], head: bytes) -> Format:
    """LAZ if the point data format's compression bit (7, not 6) is set or a laszip VLR is
    present; else LAS."""
    if len(head) < 107:
        return LAS  # too short to be valid; laspy says what is wrong
    point_format = head[104]
    if point_format & 0x80 and not point_format & 0x40:
        return LAZ
    (header_size,) = struct.unpack_from("<H", head, 94)
    (count,) = struct.unpack_from("<I", head, 100)
    offset = header_size
    for _ in range(min(count, 1000)):
        handle.seek(offset)
        record = handle.read(54)
        if len(record) < 54:
            break
        if record[2:18].rstrip(b"\x00") == b"laszip encoded":
            return LAZ
        offset += 54 + struct.unpack_from("<H", record, 20)[0]
    return LAS


def _binary_stl(head: bytes, size: int) -> bool:
    """A binary STL is an 80-byte header (which may well start with "solid"), a triangle count
    and 50 bytes per triangle: the size formula decides."""
    if len(head) < 84:
        return False
    triangles = int.from_bytes(head[80:84], "little")
    return triangles > 0 and size == 84 + 50 * triangles


def _text(head: bytes) -> str | None:
    """The head as text, or None if it looks binary."""
    if b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in "\t\r\n\f"))
    return None if odd > max(len(text) // 100, 3) else text


def _foreign_text(body: str) -> str | None:
    start = body[:2048].lower()
    if start.startswith("<"):
        if "<collada" in start:
            return "a COLLADA model"
        if "<kml" in start:
            return "a KML document"
        if "<html" in start or start.startswith("<!doctype html"):
            return "an HTML page"
        if "gml" in start or "citygml" in start:
            return "a GML document"
        return "an XML document"
    if start.startswith("iso-10303-21"):
        return "a STEP file (IFC, perhaps)"
    if re.match(r"0\s*\r?\n\s*section\b", start):
        return "a DXF drawing"
    if re.match(r"n?off\s", start):
        return "an OFF mesh"
    return None


def _plain_text(path: Path, text: str, truncated: bool) -> Format:
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()  # probably cut in the middle
    statements = [s for line in lines if (s := line.strip()) and not s.startswith(("#", "//"))]
    suffix = path.suffix.lower()
    if not statements:
        return _tie(path, suffix, "only comments or blank lines")
    keywords = [s.split(None, 1)[0] for s in statements]
    if all(k in _OBJ_STATEMENTS for k in keywords) and (
        "v" in keywords or "f" in keywords or len(statements) < 3
    ):
        return OBJ
    rows = [_SEPARATORS.split(s) for s in statements]
    if all(_numeric(r) for r in rows[1:]) and len(rows[0]) >= 3:
        if _numeric(rows[0]) or len(rows) > 1:
            return XYZ
        return _tie(path, suffix, "only a header line")  # "X Y Z" and nothing else
    raise _unknown(path)


def _tie(path: Path, suffix: str, what: str) -> Format:
    """Plain text that fits OBJ and XYZ alike: the extension decides."""
    if suffix == ".obj":
        return OBJ
    if suffix == ".xyz":
        return XYZ
    raise _unknown(path, f" (its start holds {what})")


def _numeric(row: list[str]) -> bool:
    if len(row) < 3:
        return False
    try:
        for value in row:
            float(value)
    except ValueError:
        return False
    return True


_MISSING = object()


def _json(handle: IO[bytes], path: Path) -> Format:
    """A JSON object's format by its top-level ``type`` member (or ``asset`` for glTF)."""
    start = handle.tell()
    try:
        # C-level filtering: nested values are parsed and dropped, never built.
        kind = next(iter(_ijson.items(handle, "type")), _MISSING)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise UnsupportedFormatError(
            path.name,
            f'not valid JSON before a top-level "type" member: {exc}',
            detected="invalid JSON",
        ) from exc
    if kind == "CityJSON":
        return CITYJSON
    if isinstance(kind, str) and kind in _GEOJSON_TYPES:
        return GEOJSON
    if isinstance(kind, str) and kind in _OTHER_JSON_TYPES:
        raise unsupported(path, _OTHER_JSON_TYPES[kind])
    if kind is not _MISSING:
        raise unsupported(path, f"a JSON object of type {repr(kind)[:60]}")
    handle.seek(start)
    members = _top_level_members(handle)
    if "asset" in members:
        if "root" in members:
            raise unsupported(path, "a 3D Tiles tileset (already 3D Tiles)")
        return GLTF
    raise UnsupportedFormatError(
        path.name,
        'a JSON object with no top-level "type" member, so neither GeoJSON nor CityJSON '
        f"(supported: {SUPPORTED})",
        detected="JSON without a type",
    )


def _top_level_members(handle: IO[bytes]) -> set[str]:
    """The member names of the (valid) JSON object at the handle, found by streaming its
    events; stops as soon as they show glTF or a 3D Tiles tileset."""
    members: set[str] = set()
    depth = 0
    for event, value in _ijson.basic_parse(handle):
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
        elif event == "map_key" and depth == 1:
            members.add(value)
            if "asset" in members and (members & _GLTF_MEMBERS or "root" in members):
                break
    return members


def load_json(path: Path) -> Any:
    """The parsed JSON document; :class:`TilesError` for bytes that are not UTF-8 JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise TilesError(f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TilesError(f"not valid JSON: {exc}") from exc
