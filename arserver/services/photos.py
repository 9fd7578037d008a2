"""Inspection photos, cleaned: an upload becomes a fresh image made only of its pixels.

A phone photo carries far more than the picture: EXIF with the GPS position (the GPS IFD),
the time, the camera's make and model and its body and lens serial numbers, maker notes and
an embedded preview; XMP and IPTC packets with the same and more (names, addresses, edit
history); JPEG comments; PNG text chunks (tEXt, zTXt, iTXt, eXIf); ICC profiles, which can
name a device; and bytes after the image's end (a second file). A photo's GPS position and
camera serial locate and identify the person who took it, which the AVG (GDPR) does not let
us keep without need, and a file with another file appended is not a photo. So
:func:`clean_photo` decodes the first frame only, applies the EXIF orientation, converts an
ICC-described image to sRGB (then the profile is dropped; a grey image's profile is simply
dropped), scales it to at most :data:`MAX_SIDE` pixels on its longer side, copies its pixels
into a new image that has no metadata at all, and encodes that: JPEG for photos, PNG kept PNG
for screenshots and drawings, plus a JPEG thumbnail. Nothing of the upload but the decoded
pixels reaches the result.

Accepted are JPEG (including multi-picture JPEGs: MPO, Ultra HDR), PNG (including APNG),
WebP and HEIC/HEIF (through pillow-heif), decided from the bytes, never from a name or a
content type. The declared size is read from the header and checked against ``max_pixels``
before a single pixel is decoded (JPEGs are also decoded at a reduced scale when they are
larger than needed), so memory stays bounded by ``max_pixels``; PNG, WebP and HEIC have no
reduced decoding and are decoded whole, so their bound is ``max_pixels`` itself (a 50 MP PNG
takes a few hundred MB while it is decoded). Across requests, at most
:data:`MAX_CONCURRENT_DECODES` photos are decoded at a time in a process: a photo waits up to
``wait_s`` (:data:`DECODE_WAIT_S`) for its turn and is then refused with
:class:`PhotoBusyError`, so that a burst of uploads cannot take the memory of many full
decodes at once. The file must end where its
format says the image ends: bytes after that are refused unless they are padding or one of
the trailers phones write after a JPEG (further JPEG frames, the MP4 movie of a motion photo,
a Samsung SEF trailer). That refusal turns away mislabelled and polyglot uploads (a JPEG with
a zip or an HTML page appended); it is not what protects readers, the re-encoding is.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import pillow_heif
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from arserver.errors import BusyError, InputError, TooLargeError

#: Longer photos are scaled down to this longest side (pixels).
MAX_SIDE: Final = 4096
#: The longest side of a thumbnail (pixels); smaller photos are not enlarged.
THUMBNAIL_SIDE: Final = 320
#: JPEG quality of photos and of thumbnails.
JPEG_QUALITY: Final = 85
THUMBNAIL_QUALITY: Final = 80

#: Pillow's names of the accepted formats, tried in this order on the bytes.
ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "HEIF")
_ACCEPTED_TEXT: Final = "JPEG, PNG, WebP or HEIC/HEIF"
#: How messages name the format Pillow found (MPO is a multi-picture JPEG).
_LABELS: Final = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC"}
_JPEG_FORMATS: Final = frozenset({"JPEG", "MPO"})
#: Bytes that may follow an image's end without making it another file.
_PADDING: Final = b"\x00 \t\r\n"
#: EXIF orientation -> the transposition that makes the image upright (as ImageOps uses).
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG: Final = 0x0112
_WHITE: Final = (255, 255, 255)
#: Photos decoded and re-encoded at the same time in one process, whatever the thread pool's
#: size (each may take a few hundred MB while it is).
MAX_CONCURRENT_DECODES: Final = 2
#: How long a photo waits for its turn to be decoded before it is refused (seconds).
DECODE_WAIT_S: Final = 30.0
#: The turns to decode; shared by every caller in the process.
_DECODES = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)


@dataclass(frozen=True)
class CleanPhoto:
    """A photo re-encoded from its pixels alone (no metadata block of any kind).

    ``data``: JPEG (quality :data:`JPEG_QUALITY`), or PNG when the upload was a PNG;
    ``content_type``: ``"image/jpeg"`` or ``"image/png"``; ``width`` and ``height``: the pixels
    of ``data``, upright (after the EXIF orientation); ``thumbnail``: a JPEG whose longer side
    is :data:`THUMBNAIL_SIDE` pixels (the photo's own size when that is smaller).
    """

    data: bytes
    content_type: str
    width: int
    height: int
    thumbnail: bytes


class PhotoError(InputError):
    """The upload is no photo we accept: not an image, another format, damaged, cut short, or
    with other data appended (HTTP 422)."""


class PhotoTooLargeError(TooLargeError):
    """The image declares more pixels than allowed; nothing of it was decoded (HTTP 413)."""


class PhotoBusyError(BusyError):
    """Other photos took every turn to decode for longer than the wait allows; nothing of
    this one was decoded, and sending it again later may succeed (HTTP 503)."""


@contextmanager
def decoding_turn(wait_s: float | None = None) -> Iterator[None]:
    """Hold one of the :data:`MAX_CONCURRENT_DECODES` turns to decode while the block runs;
    waits up to ``wait_s`` seconds (0: not at all; None: :data:`DECODE_WAIT_S`) for one, then
    :class:`PhotoBusyError`."""
    wait = DECODE_WAIT_S if wait_s is None else wait_s
    if not _DECODES.acquire(timeout=max(0.0, wait)):
        raise PhotoBusyError(
            "the server is busy decoding other photos; send this one again in a moment"
        )
    try:
        yield
    finally:
        _DECODES.release()


def clean_photo(data: bytes, *, max_pixels: int, wait_s: float | None = None) -> CleanPhoto:
    """Re-encode the photo in ``data`` without any of its metadata (see the module's text).

    ``max_pixels``: the most pixels (width x height, as declared in the header) an upload may
    have; Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) caps it. The header and the file's
    structure are checked at once; the pixels are decoded in one of the process's
    :data:`MAX_CONCURRENT_DECODES` turns, waited for up to ``wait_s`` seconds (None:
    :data:`DECODE_WAIT_S`). Raises
    :class:`PhotoTooLargeError` over the limit, :class:`PhotoBusyError` when no turn came in
    time, :class:`PhotoError` for anything not a readable JPEG, PNG, WebP or HEIC/HEIF
    image. CPU-bound and blocking: call it in a worker thread.
    """
    if max_pixels < 1:
        raise ValueError("max_pixels must be at least 1")
    if not data:
        raise PhotoError(f"the file is empty: a photo must be a {_ACCEPTED_TEXT} image")
    _register_heif()
    limit = _pixel_limit(max_pixels)
    with warnings.catch_warnings():
        _pillow_warnings()
        with _open(data, limit) as image:
            source_format = str(image.format)
            label = _LABELS.get(source_format, source_format)
            width, height = image.size
            if width * height > limit:
                raise PhotoTooLargeError(
                    f"the photo has {width:,} x {height:,} pixels, more than the limit of {limit:,}"
                )
            _check_structure(data, source_format, label)
            with decoding_turn(wait_s):
                picture = _upright_srgb(image, label)
                try:
                    return _clean(picture, keep_png=source_format == "PNG")
                finally:
                    if picture is not image:
                        picture.close()


def _pillow_warnings() -> None:
    """Inside ``catch_warnings``: make Pillow's decompression bomb warning an error (caught as
    :class:`PhotoTooLargeError`) and silence the warnings it gives about damaged metadata
    (corrupt EXIF, a malformed MPO index) while it carries on, so that a photo is treated
    alike whatever the process's warning filters are (pytest makes warnings errors).

    The filters name Pillow's and pillow-heif's warnings only. Python 3.11's warning filters
    are process-wide: when two threads' ``catch_warnings`` interleave, one may keep the other's
    filters, which at worst leaves these two in place."""
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(PIL|pillow_heif)(\.|$)")


def _clean(picture: Image.Image, *, keep_png: bool) -> CleanPhoto:
    """The photo and thumbnail encoded from fresh copies of ``picture``'s pixels."""
    with _fresh(picture, flatten=not keep_png) as clean:
        data = _encode(clean, "PNG" if keep_png else "JPEG", JPEG_QUALITY)
        with _fresh(clean, flatten=True) as small:
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
            thumbnail = _encode(small, "JPEG", THUMBNAIL_QUALITY)
        return CleanPhoto(
            data=data,
            content_type="image/png" if keep_png else "image/jpeg",
            width=clean.width,
            height=clean.height,
            thumbnail=thumbnail,
        )


# -- opening ---------------------------------------------------------------------------------


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (once per process). Embedded thumbnails, depth and auxiliary
    images are never read: only the primary image is decoded."""
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _pixel_limit(max_pixels: int) -> int:
    """``max_pixels``, never above Pillow's own guard, so that an image Pillow warns about is
    refused by our check too (with warnings as errors or not)."""
    pillow = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow is None else min(max_pixels, pillow)


def _open(data: bytes, limit: int) -> ImageFile.ImageFile:
    """The image in ``data``, opened (header read, no pixel decoded), if it is in one of
    :data:`ACCEPTED_FORMATS`."""
    try:
        return Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoTooLargeError(
            f"the photo declares more pixels than the limit of {limit:,}"
        ) from None
    except UnidentifiedImageError:
        raise PhotoError(
            f"the file is not a {_ACCEPTED_TEXT} image (the format is read from the file's "
            "content, not from its name)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, Warning):
        raise PhotoError(
            f"the file cannot be read as a {_ACCEPTED_TEXT} image: it is damaged or cut short"
        ) from None


# -- the file's structure --------------------------------------------------------------------


def _check_structure(data: bytes, source_format: str, label: str) -> None:
    """Refuse a file that is cut short by its format's own account, or that holds more than
    the image (a polyglot): see the module's text for the trailers phones write."""
    if source_format in _JPEG_FORMATS:
        end = _jpeg_frames_end(data)
    elif source_format == "PNG":
        end = _png_end(data)
    elif source_format == "WEBP":
        end = _webp_end(data)
    else:
        end = _boxes_end(data, 0)
    if end is None:
        raise PhotoError(f"the {label} image is damaged or cut short")
    trailer = data[end:]
    if trailer.strip(_PADDING) and not (
        source_format in _JPEG_FORMATS and (_is_movie(trailer) or _is_samsung_trailer(trailer))
    ):
        raise PhotoError(
            f"the file holds more than a {label} image: other data follows the image's end "
            "(an appended file?)"
        )


#: In entropy-coded JPEG data, 0xFF is followed by 0x00 (a stuffed byte), a restart marker
#: (0xD0-0xD7) or a fill byte (0xFF); anything else is the next marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_end(data: bytes, start: int) -> int | None:
    """The offset just past the end-of-image marker of the JPEG stream at ``start``; None if
    there is no JPEG stream there or the data ends before it does.

    Bytes between segments that are no marker are skipped, as decoders do."""
    if not data.startswith(b"\xff\xd8", start):
        return None
    size = len(data)
    pos = start + 2
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0:
            return None
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if marker == 0x00 or marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > size:
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            return None
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None:
                return None
            pos = found.start()


def _jpeg_frames_end(data: bytes) -> int | None:
    """The end of the JPEG stream at the start of ``data`` and of any complete JPEG streams
    right after it (the further pictures of an MPO or an Ultra HDR gain map)."""
    end = _jpeg_end(data, 0)
    while end is not None and data.startswith(b"\xff\xd8", end):
        following = _jpeg_end(data, end)
        if following is None:
            break
        end = following
    return end


def _png_end(data: bytes) -> int | None:
    """The offset just past the IEND chunk; None if the chunks run past the data first."""
    size = len(data)
    pos = 8
    while pos + 12 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if length > 0x7FFFFFFF or pos > size:
            return None
        if kind == b"IEND":
            return pos
    return None


def _webp_end(data: bytes) -> int | None:
    """The end of the RIFF container (its size field says where)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 8 + int.from_bytes(data[4:8], "little")
    return end if end <= len(data) else None


def _boxes_end(data: bytes, start: int) -> int | None:
    """Where the run of ISO base media boxes (HEIF, MP4) at ``start`` ends: the offset of the
    first bytes that are no box header; None if a box runs past the data."""
    size = len(data)
    pos = start
    while pos + 8 <= size:
        box_size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if not all(0x20 <= byte <= 0x7E for byte in kind):
            return pos
        header = 8
        if box_size == 1:  # a 64-bit size follows the type
            if pos + 16 > size:
                return None
            box_size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif box_size == 0:  # the box runs to the end of the file
            return size
        if box_size < header:
            return pos
        if pos + box_size > size:
            return None
        pos += box_size
    return pos


def _is_movie(trailer: bytes) -> bool:
    """Whether ``trailer`` is an MP4 movie made only of boxes (a motion photo's video)."""
    return trailer[4:8] == b"ftyp" and _boxes_end(trailer, 0) == len(trailer)


def _is_samsung_trailer(trailer: bytes) -> bool:
    """Whether ``trailer`` ends as Samsung's SEF trailer does: a directory starting with
    ``SEFH``, then its length (32-bit little-endian) and ``SEFT``."""
    if len(trailer) < 16 or not trailer.endswith(b"SEFT"):
        return False
    directory = len(trailer) - 8 - int.from_bytes(trailer[-8:-4], "little")
    return directory >= 0 and trailer.startswith(b"SEFH", directory)


# -- pixels ----------------------------------------------------------------------------------


def _upright_srgb(image: ImageFile.ImageFile, label: str) -> Image.Image:
    """The first frame of the opened ``image`` as an L, RGB or RGBA image in sRGB, at most
    :data:`MAX_SIDE` on its longer side, turned upright: ``image`` itself (decoded in place)
    or a new image the caller closes. Either may still carry ``info``; :func:`_fresh` drops
    it."""
    try:
        _draft(image)
        image.load()
        orientation = _orientation(image)
        icc = image.info.get("icc_profile")
        picture = _srgb(image, icc if isinstance(icc, bytes) and icc else None)
        picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        method = _UPRIGHT.get(orientation)
        if method is None:
            return picture
        return _replace(image, picture, picture.transpose(method))
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, Warning):
        raise PhotoError(
            f"the {label} image cannot be decoded: it is damaged or cut short"
        ) from None


def _draft(image: ImageFile.ImageFile) -> None:
    """Have a JPEG decoded at the smallest scale (1/2, 1/4, 1/8) that still gives at least
    :data:`MAX_SIDE` pixels on the longer side; other formats are left alone."""
    width, height = image.size
    longest = max(width, height)
    if image.format in _JPEG_FORMATS and longest > MAX_SIDE:
        target = (max(1, width * MAX_SIDE // longest), max(1, height * MAX_SIDE // longest))
        image.draft(None, target)


def _orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation of ``image``, 1 when there is none or it cannot be read
    (a photo with unreadable EXIF is kept as it is stored)."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # any failure to parse hostile EXIF means: no orientation
        return 1
    return value if isinstance(value, int) else 1


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    """A new sRGB profile (LittleCMS profiles are not shared between threads)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``image`` in L, RGB or RGBA (alpha kept, 16-bit grey scaled to 8 bits), converted from
    its ICC profile to sRGB when it has one that fits (otherwise the profile is ignored); may
    be ``image`` itself when nothing changes."""
    mode = image.mode
    if image.has_transparency_data:
        target = "RGBA"
    elif mode in ("1", "L") or mode.startswith("I"):
        target = "L"
    else:
        target = "RGB"
    picture: Image.Image = image
    if mode.startswith("I"):  # 16-bit grey: scale, where convert() would clip at 255
        picture = image.convert("I").point(lambda value: value / 256).convert("L")
    elif mode not in ("RGB", "RGBA", "CMYK", target):
        picture = image.convert(target)
    if icc is not None and target != "L":
        try:
            converted = ImageCms.profileToProfile(
                picture,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                _srgb_profile(),
                outputMode=target,
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a profile that does not fit the pixels is ignored
        if converted is not None:
            picture = _replace(image, picture, converted)
    if picture.mode != target:
        picture = _replace(image, picture, picture.convert(target))
    return picture


def _replace(original: Image.Image, old: Image.Image, new: Image.Image) -> Image.Image:
    """``new``, closing ``old`` first unless it is the ``original`` (closed by its owner)."""
    if old is not original and old is not new:
        old.close()
    return new


def _fresh(picture: Image.Image, *, flatten: bool) -> Image.Image:
    """A new image holding only ``picture``'s pixels: no ``info``, EXIF, profile or palette.
    ``flatten``: alpha is composed onto white (JPEG has none)."""
    if flatten and picture.mode == "RGBA":
        clean = Image.new("RGB", picture.size, _WHITE)
        clean.paste(picture, mask=picture.getchannel("A"))
        return clean
    clean = Image.new(picture.mode, picture.size)
    clean.paste(picture)
    return clean


def _encode(picture: Image.Image, image_format: str, quality: int) -> bytes:
    """``picture`` encoded with nothing but its pixels (no metadata is passed to the encoder,
    and ``picture`` has none of its own to offer it)."""
    buffer = io.BytesIO()
    if image_format == "JPEG":
        picture.save(buffer, format="JPEG", quality=quality, optimize=True)
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue()
