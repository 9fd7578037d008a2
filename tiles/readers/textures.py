"""Texture sizes of a model, from the images' headers, before anything is decoded.

A PNG of 30,000 x 30,000 black pixels compresses to about a megabyte and decodes to 3.6 GB.
:func:`check_textures` finds every image a GLB, glTF or OBJ file uses (embedded in a buffer, in
a ``data:`` URI, or in a file beside the model), reads each one's width and height from its
header (Pillow's ``Image.open`` reads no pixels) and refuses the model when one texture, or all
of them together, exceed :class:`~tiles.limits.InputLimits`. It runs before the model is loaded:
trimesh would otherwise decode what it finds, or drop a texture Pillow refuses without a word.

Pillow's own guard (a warning past ``Image.MAX_IMAGE_PIXELS``, an error past twice that) is not
relied on: an image it refuses, or warns about, is over our limit too, which is never higher.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from PIL import Image

from tiles.errors import TilesError
from tiles.limits import InputLimits
from tiles.readers import sniff

_GLB_JSON = 0x4E4F534A
_GLB_BIN = 0x004E4942
_MAP = re.compile(r"^\s*(?:map_\w+|bump|disp|decal|refl)\s+(?:-\S+\s+\S+\s+)*(.+?)\s*$", re.M)
_MTLLIB = re.compile(r"^\s*mtllib\s+(.+?)\s*$", re.M)


def texture_limit(limits: InputLimits) -> int:
    """The most pixels one texture may have: the configured limit, never above Pillow's own
    (so that loading a checked model never trips Pillow's guard)."""
    pillow = Image.MAX_IMAGE_PIXELS
    return limits.max_texture_pixels if pillow is None else min(limits.max_texture_pixels, pillow)


def check_textures(path: Path, file_format: sniff.Format, limits: InputLimits) -> None:
    """Raise :class:`TilesError` if a texture of the model at ``path`` is larger than
    ``limits`` allow, or all together are; images that cannot be read are left to the reader."""
    if file_format is sniff.GLB:
        sources = _glb_images(path)
    elif file_format is sniff.GLTF:
        sources = _gltf_images(path, _json(path.read_bytes()), lambda start, length: b"")
    elif file_format is sniff.OBJ:
        sources = _obj_images(path)
    else:
        return
    single = texture_limit(limits)
    total = 0
    for name, data in sources:
        size = image_size(data)
        if size is None:
            continue
        width, height = size
        pixels = width * height
        if pixels > single:
            raise TilesError(_too_large(name, size, single))
        total += pixels
        if total > limits.max_total_texture_pixels:
            raise TilesError(
                f"the textures hold more than the limit of {limits.max_total_texture_pixels:,} "
                f"pixels together (at texture {name})"
            )


def check_image(image: Image.Image, name: str, limits: InputLimits) -> None:
    """Raise :class:`TilesError` if an opened (not yet decoded) image is over the limit for
    one texture."""
    single = texture_limit(limits)
    if image.width * image.height > single:
        raise TilesError(_too_large(name, image.size, single))


#: What :func:`image_size` gives for an image too large for Pillow to even open.
UNKNOWN_HUGE = (1 << 31, 1 << 31)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header; :data:`UNKNOWN_HUGE` when Pillow finds it too
    large to open (past ``Image.MAX_IMAGE_PIXELS``), None when it is no image Pillow reads.

    Pillow's warning for large images is made an error for this call only, and caught."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return int(image.width), int(image.height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return UNKNOWN_HUGE
    except (OSError, ValueError, SyntaxError, struct.error):
        return None


def _too_large(name: str, size: tuple[int, int], limit: int) -> str:
    if size == UNKNOWN_HUGE:
        return f"texture {name} has more pixels than the limit of {limit:,} for one texture"
    return (
        f"texture {name} has {size[0]:,} x {size[1]:,} pixels, more than the limit of "
        f"{limit:,} for one texture"
    )


def _json(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def _glb_images(path: Path) -> Iterator[tuple[str, bytes]]:
    """The images of a GLB file; only its JSON chunk and the images' own bytes are read."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header: dict[str, Any] = {}
        binary: tuple[int, int] | None = None  # offset and length of the BIN chunk
        offset = 12
        while offset + 8 <= size and (not header or binary is None):
            handle.seek(offset)
            length, kind = struct.unpack("<II", handle.read(8))
            if kind == _GLB_JSON and not header:
                header = _json(handle.read(length))
            elif kind == _GLB_BIN and binary is None:
                binary = (offset + 8, min(length, size - offset - 8))
            offset += 8 + length

        def read_binary(start: int, length: int) -> bytes:
            if binary is None or start < 0 or length < 0 or start + length > binary[1]:
                return b""
            handle.seek(binary[0] + start)
            return handle.read(length)

        yield from _gltf_images(path, header, read_binary)


def _gltf_images(
    path: Path, header: dict[str, Any], read_binary: Callable[[int, int], bytes]
) -> Iterator[tuple[str, bytes]]:
    """Each image of a glTF document as (name for messages, bytes); ``read_binary(start,
    length)`` reads a GLB's BIN chunk (the buffer without a URI)."""
    buffers: dict[int, bytes | None] = {}

    def view_bytes(index: int, start: int, length: int) -> bytes:
        entries = _list(header.get("buffers"))
        entry = entries[index] if 0 <= index < len(entries) else None
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if uri is None:
            return read_binary(start, length)
        if index not in buffers:
            buffers[index] = _resource(path, uri) if isinstance(uri, str) else None
        data = buffers[index]
        return data[start : start + length] if data is not None else b""

    views = _list(header.get("bufferViews"))
    for number, image in enumerate(_list(header.get("images"))):
        if not isinstance(image, dict):
            continue
        name = repr(str(image.get("name") or f"#{number}")[:80])
        data: bytes | None = None
        if isinstance(image.get("uri"), str):
            data = _resource(path, image["uri"])
        elif isinstance(image.get("bufferView"), int) and 0 <= image["bufferView"] < len(views):
            view = views[image["bufferView"]]
            if isinstance(view, dict):
                index, start, length = (
                    view.get("buffer", 0), view.get("byteOffset", 0), view.get("byteLength", 0)
                )  # fmt: skip
                if all(isinstance(v, int) for v in (index, start, length)):
                    data = view_bytes(index, start, length)
        if data:
            yield name, data


def _obj_images(path: Path) -> Iterator[tuple[str, bytes]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    for library in _MTLLIB.findall(text):
        mtl = _inside(path.parent, library)
        if mtl is None:
            continue
        for texture in _MAP.findall(mtl.read_text(encoding="utf-8", errors="replace")):
            image = _inside(mtl.parent, texture)
            if image is not None:
                yield repr(texture[:80]), image.read_bytes()


def _resource(path: Path, uri: str) -> bytes | None:
    """The bytes a glTF URI names: a ``data:`` URI, or a file beside the model."""
    if uri.startswith("data:"):
        _, _, payload = uri.partition(",")
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            return None
    file = _inside(path.parent, unquote(uri))
    return file.read_bytes() if file is not None else None


def _inside(folder: Path, name: str) -> Path | None:
    """``folder / name`` if that is a file inside ``folder``; None otherwise."""
    try:
        base = folder.resolve()
        candidate = (base / name).resolve()
    except (OSError, ValueError):
        return None
    return candidate if base in candidate.parents and candidate.is_file() else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
