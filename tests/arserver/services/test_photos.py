"""Inspection photos are re-encoded from their pixels alone: every metadata block (EXIF with
GPS and serial numbers, XMP, IPTC, ICC, comments, PNG text, embedded thumbnails, appended
files) is gone from the photo and its thumbnail, checked in the raw bytes of the result."""

from __future__ import annotations

import io
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pillow_heif
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from arserver.errors import BusyError, InputError, TooLargeError
from arserver.services import photos
from arserver.services.photos import (
    DECODE_WAIT_S,
    MAX_CONCURRENT_DECODES,
    MAX_SIDE,
    THUMBNAIL_SIDE,
    CleanPhoto,
    PhotoBusyError,
    PhotoError,
    PhotoTooLargeError,
    clean_photo,
    decoding_turn,
)

LIMIT = 50_000_000
GPS = ExifTags.IFD.GPSInfo
EXIF = ExifTags.IFD.Exif
SERIAL = "SN-4815162342"
LENS_SERIAL = "LENS-SN-108-2342"
MAKE = "Secretmake Optics"
MODEL = "Spycam X-9000"
OWNER = "Jan Jansen <script>alert(1)</script>"
MAKER_NOTE = b"MAKERNOTE-SECRET-'; DROP TABLE photos; --"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf'
    b'-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator='
    b'"XMP-SECRET-Piet Pietersen"/></rdf:RDF></x:xmpmeta>'
)
COMMENT = b"COMMENT-SECRET Damrak 1, Amsterdam"
IPTC_BYLINE = b"IPTC-SECRET-Klaas Klaassen"
THUMBNAIL_SECRET = b"EXIF-THUMBNAIL-SECRET"
#: Text that is the same in every secret-bearing fixture, for the raw-byte checks.
SECRETS = (
    SERIAL.encode(),
    LENS_SERIAL.encode(),
    MAKE.encode(),
    MODEL.encode(),
    b"Jan Jansen",
    MAKER_NOTE,
    b"XMP-SECRET",
    b"xmpmeta",
    COMMENT,
    IPTC_BYLINE,
    THUMBNAIL_SECRET,
    b"acsp",  # the signature of every ICC profile
)
#: What Pillow reports for the JFIF header it writes itself (pixel aspect, no metadata).
JFIF_KEYS = {"jfif", "jfif_version", "jfif_unit", "jfif_density"}
#: The only JPEG markers a clean JPEG has: SOI, APP0 (JFIF), DQT, SOF0, DHT, SOS, EOI.
CLEAN_JPEG_MARKERS = {0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xD9}
#: sRGB's primaries (D50-adapted XYZ) in a made-up profile: red and green swapped.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


# -- fixtures made here ----------------------------------------------------------------------


def private_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: make, model, owner, GPS position, serial numbers, maker
    notes (all of it hostile-looking text)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = MODEL
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(GPS)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.34)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 56.78)
    gps[ExifTags.GPS.GPSAltitude] = 1.234
    details = exif.get_ifd(EXIF)
    details[ExifTags.Base.BodySerialNumber] = SERIAL
    details[ExifTags.Base.LensSerialNumber] = LENS_SERIAL
    details[ExifTags.Base.CameraOwnerName] = OWNER
    details[ExifTags.Base.MakerNote] = MAKER_NOTE
    return exif


def with_thumbnail(exif: bytes, thumbnail: bytes) -> bytes:
    """``exif`` (Pillow's ``Exif.tobytes()``) with an IFD1 holding an embedded JPEG thumbnail,
    as cameras write it."""
    assert exif[:6] == b"Exif\x00\x00"
    tiff = bytearray(exif[6:])
    order = "<" if tiff[:2] == b"II" else ">"
    ifd0 = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd0 : ifd0 + 2])[0]
    next_at = ifd0 + 2 + 12 * count
    assert tiff[next_at : next_at + 4] == bytes(4)
    ifd1 = len(tiff)
    tiff[next_at : next_at + 4] = struct.pack(order + "I", ifd1)
    start = ifd1 + 2 + 2 * 12 + 4
    tiff += struct.pack(order + "H", 2)
    tiff += struct.pack(order + "HHII", 0x0201, 4, 1, start)  # JPEGInterchangeFormat
    tiff += struct.pack(order + "HHII", 0x0202, 4, 1, len(thumbnail))  # ...Length
    tiff += bytes(4) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)


def insert_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """``jpeg`` with one more segment right after its SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def iptc(byline: bytes) -> bytes:
    """A Photoshop APP13 payload with an IPTC By-line record."""
    record = b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    if len(record) % 2:
        record += b"\x00"
    return b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(record)) + record


def s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def xyz_tag(values: tuple[float, float, float]) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(s15(v) for v in values)


def matrix_profile(
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
) -> bytes:
    """An ICC v2 RGB display profile with these primaries and linear curves."""
    curve = b"curv" + bytes(4) + struct.pack(">I", 0)
    text = b"ICC-DESCRIPTION-SECRET\x00"
    description = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    tags = [
        (b"desc", description),
        (b"wtpt", xyz_tag((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz_tag(red)),
        (b"gXYZ", xyz_tag(green)),
        (b"bXYZ", xyz_tag(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table = struct.pack(">I", len(tags))
    body = b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + len(table) + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(28)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + bytes(48)
    )
    assert len(header) == 128
    return header + table + body


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def heic(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90, **options)
    return buffer.getvalue()


def scene(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A picture with some structure (a gradient), so that encoders have work to do."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    return image


def private_jpeg() -> bytes:
    """A JPEG with every kind of metadata a camera or editor writes."""
    thumbnail = encode(Image.new("RGB", (16, 8), "green"), "JPEG", comment=THUMBNAIL_SECRET)
    exif = with_thumbnail(private_exif().tobytes(), thumbnail)
    data = encode(
        scene(),
        "JPEG",
        exif=exif,
        xmp=XMP,
        comment=COMMENT,
        icc_profile=srgb_profile(),
        quality=90,
    )
    return insert_segment(data, 0xED, iptc(IPTC_BYLINE))


def private_png(image: Image.Image | None = None) -> bytes:
    """A PNG with tEXt, zTXt and iTXt chunks, an XMP packet, EXIF (eXIf) and an ICC profile."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", OWNER)
    info.add_text("Comment", COMMENT.decode())
    info.add_text("Description", "ZTXT-SECRET " * 20, zip=True)
    info.add_itxt("Title", "ITXT-SECRET " + SERIAL, lang="nl", tkey="Titel")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return encode(
        image or scene(),
        "PNG",
        pnginfo=info,
        exif=private_exif().tobytes(),
        icc_profile=srgb_profile(),
    )


def private_webp(image: Image.Image | None = None) -> bytes:
    return encode(
        image or scene(),
        "WEBP",
        exif=private_exif().tobytes(),
        xmp=XMP,
        icc_profile=srgb_profile(),
        quality=90,
    )


def private_heic() -> bytes:
    return heic(scene(), exif=private_exif().tobytes(), xmp=XMP)


def exif_of(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    if data[4:8] == b"ftyp":
        exif.load(pillow_heif.open_heif(io.BytesIO(data)).info["exif"])
        return exif
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


def gps_needles(data: bytes) -> list[bytes]:
    """The GPS rationals of ``data``'s EXIF as stored (numerator and denominator, 32 bits
    each, in the EXIF's byte order); each is asserted to be in ``data``."""
    gps = exif_of(data).get_ifd(GPS)
    rationals = [
        *gps[ExifTags.GPS.GPSLatitude],
        *gps[ExifTags.GPS.GPSLongitude],
        gps[ExifTags.GPS.GPSAltitude],
    ]
    needles = []
    for rational in rationals:
        pair = (rational.numerator, rational.denominator)
        found = [n for n in (struct.pack("<II", *pair), struct.pack(">II", *pair)) if n in data]
        assert found, rational
        needles += found
    return needles


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's segments up to its scan, then EOI if it ends with one."""
    assert data[:2] == b"\xff\xd8"
    markers = [0xD8]
    pos = 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    if data.endswith(b"\xff\xd9"):
        markers.append(0xD9)
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds = []
    pos = 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def assert_clean(result: CleanPhoto, needles: list[bytes] | tuple[bytes, ...] = ()) -> None:
    """The photo and its thumbnail hold none of ``needles`` (nor any secret of this module) in
    their raw bytes, and have no metadata block of any kind."""
    for blob in (result.data, result.thumbnail):
        for needle in (*SECRETS, *needles):
            assert needle not in blob
    assert_no_metadata(result.data, result.content_type)
    assert_no_metadata(result.thumbnail, "image/jpeg")
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (result.width, result.height)


def assert_no_metadata(data: bytes, content_type: str) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert not image.getexif()
        if content_type == "image/jpeg":
            assert image.format == "JPEG"
            assert set(image.info) <= JFIF_KEYS
        else:
            assert image.format == "PNG"
            assert image.info == {}
    if content_type == "image/jpeg":
        assert set(jpeg_markers(data)) <= CLEAN_JPEG_MARKERS
        assert data.endswith(b"\xff\xd9")
    else:
        assert set(png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with ``idat`` as data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(document.cookie)</script>")
    return buffer.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"


def pixel(result: CleanPhoto, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(result.data)) as image:
        value = image.convert("RGBA").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# -- metadata is removed ---------------------------------------------------------------------


def test_jpeg_loses_exif_gps_serials_xmp_iptc_icc_comment_and_embedded_thumbnail() -> None:
    data = private_jpeg()
    needles = gps_needles(data)
    for needle in (*SECRETS, *needles):
        assert needle in data  # the fixture holds what must go
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.IFD1)  # the embedded thumbnail
        assert {"exif", "xmp", "icc_profile", "comment", "photoshop"} <= set(original.info)

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (64, 48)
    assert_clean(result, needles)


def test_png_loses_text_chunks_xmp_exif_and_icc_and_stays_png() -> None:
    data = private_png()
    needles = gps_needles(data)
    for needle in (*needles, SERIAL.encode(), COMMENT, b"Jan Jansen", b"XMP-SECRET"):
        assert needle in data
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= set(png_chunks(data))  # iCCP: zlib

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.content_type == "image/png"
    assert_clean(result, [*needles, b"ZTXT-SECRET", b"ITXT-SECRET"])


def test_webp_loses_exif_xmp_and_icc_and_becomes_jpeg() -> None:
    data = private_webp()
    needles = gps_needles(data)
    for needle in (*needles, SERIAL.encode(), b"XMP-SECRET", b"acsp"):
        assert needle in data

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (64, 48)
    assert_clean(result, needles)


def test_heic_is_accepted_and_loses_exif_and_xmp() -> None:
    data = private_heic()
    assert data[4:12] == b"ftypheic"
    needles = gps_needles(data)
    for needle in (*needles, SERIAL.encode(), b"XMP-SECRET"):
        assert needle in data

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (64, 48)
    assert_clean(result, needles)


def test_hostile_text_in_metadata_leaves_no_trace() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "\"><img src=x onerror=alert(1)> ' OR 1=1 --"
    exif[ExifTags.Base.Artist] = "\udcff lone surrogate".encode("utf-8", "surrogateescape").decode(
        "latin-1"
    )
    data = encode(scene(), "JPEG", exif=exif.tobytes())
    assert b"onerror" in data

    result = clean_photo(data, max_pixels=LIMIT)

    assert_clean(result, [b"onerror", b"OR 1=1", b"lone surrogate"])


# -- orientation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "size", "corner"),
    [
        (1, (40, 20), "top-left"),
        (2, (40, 20), "top-right"),
        (3, (40, 20), "bottom-right"),
        (4, (40, 20), "bottom-left"),
        (5, (20, 40), "top-left"),
        (6, (20, 40), "top-right"),
        (7, (20, 40), "bottom-right"),
        (8, (20, 40), "bottom-left"),
    ],
)
def test_exif_orientation_is_applied_to_the_pixels(
    orientation: int, size: tuple[int, int], corner: str
) -> None:
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste((255, 0, 0), (0, 0, 12, 8))  # a red mark at the stored top left
    data = encode(stored, "JPEG", exif=private_exif(orientation).tobytes(), quality=95)

    result = clean_photo(data, max_pixels=LIMIT)

    assert (result.width, result.height) == size
    width, height = size
    corners = {
        "top-left": (2, 2),
        "top-right": (width - 3, 2),
        "bottom-right": (width - 3, height - 3),
        "bottom-left": (2, height - 3),
    }
    for name, xy in corners.items():
        expected = (255, 0, 0, 255) if name == corner else (0, 0, 255, 255)
        assert near(pixel(result, xy), expected), (name, pixel(result, xy))
    assert_clean(result)


def test_heic_orientation_is_applied_once() -> None:
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste((255, 0, 0), (0, 0, 12, 8))
    data = heic(stored, exif=private_exif(6).tobytes())

    result = clean_photo(data, max_pixels=LIMIT)

    assert (result.width, result.height) == (20, 40)
    assert near(pixel(result, (17, 2)), (255, 0, 0, 255))
    assert near(pixel(result, (2, 2)), (0, 0, 255, 255))


def test_photo_with_corrupt_exif_is_kept_as_stored() -> None:
    corrupt = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff\x01\x01\x03\x00" + SERIAL.encode()
    data = encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=corrupt)

    result = clean_photo(data, max_pixels=LIMIT)

    assert (result.width, result.height) == (40, 20)
    assert_clean(result)


# -- decompression bombs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (30_000, 30_000, 10**12),  # past twice Pillow's guard: its error
        (10_000, 10_000, 10**12),  # past Pillow's guard: its warning
        (5_000, 5_000, 20_000_000),  # past ours only
    ],
)
def test_declared_size_over_the_limit_is_refused_before_decoding(
    width: int, height: int, max_pixels: int
) -> None:
    # The IDAT is not the data of such an image: decoding would fail as damaged instead.
    data = png_declaring(width, height, zlib.compress(b"\x00" * 64))

    with pytest.raises(PhotoTooLargeError, match=r"more pixels|limit of") as caught:
        clean_photo(data, max_pixels=max_pixels)

    assert isinstance(caught.value, TooLargeError)


def test_limit_is_on_width_times_height() -> None:
    data = encode(scene((200, 100)), "PNG")

    with pytest.raises(PhotoTooLargeError, match=r"200 x 100 pixels, more than the limit of"):
        clean_photo(data, max_pixels=19_999)
    assert clean_photo(data, max_pixels=20_000).width == 200


def test_max_pixels_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        clean_photo(encode(scene(), "PNG"), max_pixels=0)


# -- what is refused -------------------------------------------------------------------------


def gif() -> bytes:
    return encode(scene(), "GIF")


def tiff() -> bytes:
    return encode(scene(), "TIFF")


def bmp() -> bytes:
    return encode(scene(), "BMP")


def avif() -> bytes:
    return encode(scene(), "AVIF")


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"hello, this is text",
        lambda: b'{"photo": "not really"}',
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        lambda: HTML,
        lambda: b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
        zip_file,
        gif,
        tiff,
        bmp,
        avif,
        lambda: b"\x00" * 100,
        lambda: b"\xff\xd8",
        lambda: b"\x89PNG",
    ],
    ids=[
        "text",
        "json",
        "svg",
        "html",
        "pdf",
        "zip",
        "gif",
        "tiff",
        "bmp",
        "avif",
        "zeros",
        "jpeg-soi-only",
        "png-magic-only",
    ],
)
def test_files_that_are_no_accepted_image_are_refused_naming_the_formats(
    make: Callable[[], bytes],
) -> None:
    with pytest.raises(PhotoError, match=r"JPEG, PNG, WebP or HEIC") as caught:
        clean_photo(make(), max_pixels=LIMIT)

    assert isinstance(caught.value, InputError)
    assert not isinstance(caught.value, TooLargeError)


def test_empty_file_is_refused() -> None:
    with pytest.raises(PhotoError, match="empty"):
        clean_photo(b"", max_pixels=LIMIT)


def test_bytes_that_say_png_or_jpeg_but_are_not_are_refused() -> None:
    for data in (
        b"\x89PNG\r\n\x1a\n" + b"not a png at all, but says it is" * 10,
        b"\xff\xd8\xff\xe0" + b"garbage" * 50,
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"junk" * 20,
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"junk" * 20,
    ):
        with pytest.raises(PhotoError):
            clean_photo(data, max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("make", "appended"),
    [
        (private_jpeg, zip_file),
        (private_jpeg, lambda: HTML),
        (private_png, zip_file),
        (private_png, lambda: HTML),
        (private_webp, zip_file),
        (private_webp, lambda: HTML),
        (private_heic, zip_file),
        (private_heic, lambda: HTML),
        (private_jpeg, lambda: b"\x00" * 16 + HTML),
    ],
    ids=[
        "jpeg+zip",
        "jpeg+html",
        "png+zip",
        "png+html",
        "webp+zip",
        "webp+html",
        "heic+zip",
        "heic+html",
        "jpeg+padding+html",
    ],
)
def test_polyglots_with_a_file_appended_are_refused(
    make: Callable[[], bytes], appended: Callable[[], bytes]
) -> None:
    with pytest.raises(PhotoError, match=r"other data follows|damaged or cut short"):
        clean_photo(make() + appended(), max_pixels=LIMIT)


@pytest.mark.parametrize("make", [private_jpeg, private_png, private_webp, private_heic])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_files_are_refused(make: Callable[[], bytes], keep: float) -> None:
    data = make()

    with pytest.raises(PhotoError):
        clean_photo(data[: int(len(data) * keep)], max_pixels=LIMIT)


def test_a_file_cut_just_before_its_end_marker_is_refused() -> None:
    data = encode(scene(), "JPEG")
    assert data.endswith(b"\xff\xd9")

    with pytest.raises(PhotoError, match="cut short"):
        clean_photo(data[:-2], max_pixels=LIMIT)


# -- what phones write is accepted -----------------------------------------------------------


def mp4_movie(secret: bytes) -> bytes:
    ftyp = b"ftypmp42" + bytes(4) + b"isommp42"
    mdat = b"mdat" + secret * 8
    return struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", len(mdat) + 4) + mdat


def samsung_trailer(secret: bytes) -> bytes:
    data = b"\x00\x00\x01\x0aImage_UTC_Data" + secret
    directory = b"SEFH" + struct.pack("<II", 106, 1) + struct.pack("<HHII", 0, 0x0A01, 0, 0)
    return data + directory + struct.pack("<I", len(directory)) + b"SEFT"


@pytest.mark.parametrize(
    "trailer",
    [
        lambda: b"\x00" * 32,
        lambda: mp4_movie(b"MOTION-PHOTO-SECRET"),
        lambda: samsung_trailer(b"SEF-SECRET"),
    ],
    ids=["padding", "motion-photo", "samsung-sef"],
)
def test_trailers_phones_write_after_a_jpeg_are_accepted_and_dropped(
    trailer: Callable[[], bytes],
) -> None:
    result = clean_photo(private_jpeg() + trailer(), max_pixels=LIMIT)

    assert_clean(result, [b"MOTION-PHOTO-SECRET", b"SEF-SECRET", b"Image_UTC_Data"])


def test_multi_picture_jpeg_keeps_only_its_first_picture() -> None:
    first = Image.new("RGB", (40, 20), "red")
    second = Image.new("RGB", (40, 20), "blue")
    data = encode(first, "MPO", save_all=True, append_images=[second], exif=private_exif())
    with Image.open(io.BytesIO(data)) as original:
        assert (original.format, getattr(original, "n_frames", 1)) == ("MPO", 2)

    result = clean_photo(data, max_pixels=LIMIT)

    assert near(pixel(result, (20, 10)), (255, 0, 0, 255))
    assert result.data.count(b"\xff\xd8") == 1
    assert_clean(result)


@pytest.mark.parametrize(("image_format", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_animations_keep_only_their_first_frame(
    image_format: str, options: dict[str, object]
) -> None:
    first = Image.new("RGB", (40, 20), "red")
    frames = [Image.new("RGB", (40, 20), "blue"), Image.new("RGB", (40, 20), "green")]
    data = encode(first, image_format, save_all=True, append_images=frames, **options)
    with Image.open(io.BytesIO(data)) as original:
        assert getattr(original, "n_frames", 1) == 3

    result = clean_photo(data, max_pixels=LIMIT)

    assert near(pixel(result, (20, 10)), (255, 0, 0, 255))
    assert_clean(result)


# -- sizes -----------------------------------------------------------------------------------


def test_large_png_is_scaled_to_the_longest_side() -> None:
    data = encode(scene((8192, 64)), "PNG", compress_level=1)

    result = clean_photo(data, max_pixels=LIMIT)

    assert (result.width, result.height) == (MAX_SIDE, 32)
    assert result.content_type == "image/png"
    assert_clean(result)


def test_large_jpeg_is_decoded_reduced_and_scaled_to_the_longest_side() -> None:
    data = encode(scene((1200, 9000)), "JPEG", exif=private_exif().tobytes())

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.height == MAX_SIDE
    assert result.width in (546, 547)  # 1200 * 4096 / 9000 = 546.1
    assert_clean(result)


def test_photos_within_the_limit_keep_their_size() -> None:
    result = clean_photo(encode(scene((MAX_SIDE, 10)), "JPEG"), max_pixels=LIMIT)

    assert (result.width, result.height) == (MAX_SIDE, 10)


@pytest.mark.parametrize(
    ("size", "thumbnail_size"),
    [
        ((1000, 500), (THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)),
        ((500, 1000), (THUMBNAIL_SIDE // 2, THUMBNAIL_SIDE)),
        ((321, 321), (THUMBNAIL_SIDE, THUMBNAIL_SIDE)),
        ((100, 50), (100, 50)),
    ],
)
def test_thumbnail_is_a_jpeg_whose_longest_side_is_the_thumbnail_side(
    size: tuple[int, int], thumbnail_size: tuple[int, int]
) -> None:
    result = clean_photo(private_png(scene(size)), max_pixels=LIMIT)

    with Image.open(io.BytesIO(result.thumbnail)) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert thumbnail.size == thumbnail_size
    assert (result.width, result.height) == size
    assert_clean(result)


# -- modes and colour ------------------------------------------------------------------------


def transparent_corner(mode: str = "RGBA") -> Image.Image:
    image = Image.new("RGBA", (40, 20), (0, 0, 255, 255))
    image.paste((0, 0, 0, 0), (0, 0, 10, 10))
    return image.convert(mode) if mode != "RGBA" else image


def test_png_keeps_its_alpha_and_its_thumbnail_is_flattened_on_white() -> None:
    result = clean_photo(private_png(transparent_corner()), max_pixels=LIMIT)

    assert result.content_type == "image/png"
    assert pixel(result, (2, 2))[3] == 0
    assert pixel(result, (30, 15)) == (0, 0, 255, 255)
    with Image.open(io.BytesIO(result.thumbnail)) as thumbnail:
        assert thumbnail.mode == "RGB"
        corner = thumbnail.getpixel((1, 1))
        assert isinstance(corner, tuple)
        assert near(corner, (255, 255, 255))
    assert_clean(result)


def test_transparent_webp_becomes_a_jpeg_flattened_on_white() -> None:
    data = encode(transparent_corner(), "WEBP", lossless=True)

    result = clean_photo(data, max_pixels=LIMIT)

    assert result.content_type == "image/jpeg"
    assert near(pixel(result, (2, 2)), (255, 255, 255, 255))
    assert near(pixel(result, (30, 15)), (0, 0, 255, 255))


@pytest.mark.parametrize(
    ("make", "content_type", "mode"),
    [
        (lambda: encode(Image.new("CMYK", (40, 20), (0, 255, 255, 0)), "JPEG"), "jpeg", "RGB"),
        (lambda: encode(Image.new("L", (40, 20), 128), "JPEG"), "jpeg", "L"),
        (lambda: encode(transparent_corner("P"), "PNG"), "png", "RGBA"),
        (lambda: encode(transparent_corner("LA"), "PNG"), "png", "RGBA"),
        (lambda: encode(Image.new("1", (40, 20), 1), "PNG"), "png", "L"),
        (lambda: encode(Image.new("P", (40, 20), 3), "PNG"), "png", "RGB"),
    ],
    ids=["cmyk-jpeg", "grey-jpeg", "palette-transparent", "grey-alpha", "bilevel", "palette"],
)
def test_modes_are_converted_to_grey_rgb_or_rgba(
    make: Callable[[], bytes], content_type: str, mode: str
) -> None:
    result = clean_photo(make(), max_pixels=LIMIT)

    assert result.content_type == f"image/{content_type}"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.mode == mode
    assert_clean(result)


def test_cmyk_jpeg_keeps_its_colour() -> None:
    data = encode(Image.new("CMYK", (40, 20), (0, 255, 255, 0)), "JPEG", quality=95)

    result = clean_photo(data, max_pixels=LIMIT)

    assert near(pixel(result, (20, 10)), (255, 0, 0, 255))


def test_16_bit_grey_is_scaled_to_8_bits() -> None:
    image = Image.new("I;16", (4, 1))
    image.putdata([0, 256, 32768, 65535])
    data = encode(image, "PNG")
    with Image.open(io.BytesIO(data)) as original:
        assert original.mode.startswith("I")

    result = clean_photo(data, max_pixels=LIMIT)

    with Image.open(io.BytesIO(result.data)) as cleaned:
        assert cleaned.mode == "L"
        assert [cleaned.getpixel((x, 0)) for x in range(4)] == [0, 1, 128, 255]


def test_icc_profile_is_applied_then_dropped() -> None:
    swapped = matrix_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)  # "red" means sRGB green
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    for image_format, options in (("JPEG", {"quality": 95}), ("PNG", {})):
        data = encode(stored, image_format, icc_profile=swapped, **options)
        with Image.open(io.BytesIO(data)) as original:
            assert original.info["icc_profile"] == swapped

        result = clean_photo(data, max_pixels=LIMIT)

        assert near(pixel(result, (20, 10)), (0, 255, 0, 255)), image_format
        assert_clean(result, [b"ICC-DESCRIPTION-SECRET"])


def test_icc_profile_keeps_alpha() -> None:
    swapped = matrix_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    data = encode(Image.new("RGBA", (40, 20), (255, 0, 0, 77)), "PNG", icc_profile=swapped)

    result = clean_photo(data, max_pixels=LIMIT)

    assert near(pixel(result, (20, 10)), (0, 255, 0, 77), tolerance=3)


@pytest.mark.parametrize(
    "profile",
    [
        lambda: b"ICC-DESCRIPTION-SECRET, not a profile at all",
        lambda: ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes(),
    ],
    ids=["garbage", "lab-profile-on-rgb"],
)
def test_unusable_icc_profile_is_dropped(profile: Callable[[], bytes]) -> None:
    data = encode(Image.new("RGB", (40, 20), (255, 0, 0)), "JPEG", icc_profile=profile())

    result = clean_photo(data, max_pixels=LIMIT)

    assert near(pixel(result, (20, 10)), (255, 0, 0, 255))
    assert_clean(result, [b"ICC-DESCRIPTION-SECRET"])


# -- nothing but PhotoError escapes ----------------------------------------------------------

SAMPLES = {
    "jpeg": encode(Image.new("RGB", (24, 16), "red"), "JPEG", exif=private_exif(6).tobytes()),
    "png": encode(scene((24, 16), "RGBA"), "PNG", exif=private_exif(3).tobytes()),
    "webp": encode(scene((24, 16)), "WEBP", exif=private_exif().tobytes()),
    "heic": heic(scene((24, 16))),
}


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    position=st.floats(min_value=0, max_value=1),
    replacement=st.binary(max_size=6),
    removed=st.integers(min_value=0, max_value=6),
)
def test_damaged_files_give_a_clean_photo_or_a_photo_error(
    name: str, position: float, replacement: bytes, removed: int
) -> None:
    data = SAMPLES[name]
    at = int(position * len(data))
    damaged = data[:at] + replacement + data[at + removed :]
    try:
        result = clean_photo(damaged, max_pixels=LIMIT)
    except (PhotoError, PhotoTooLargeError):
        return
    assert_clean(result)


def test_photos_are_cleaned_alike_in_parallel_worker_threads() -> None:
    swapped = matrix_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    uploads = [
        private_jpeg(),
        private_png(),
        private_webp(),
        private_heic(),
        encode(Image.new("RGB", (40, 20), "red"), "JPEG", icc_profile=swapped),
    ] * 4
    alone = [clean_photo(data, max_pixels=LIMIT) for data in uploads]

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda data: clean_photo(data, max_pixels=LIMIT), uploads))

    assert together == alone


# -- decoding turns across requests ------------------------------------------------------------

DEADLINE_S = 20.0


class CountingSemaphore(threading.BoundedSemaphore):
    """The decoding turns, counting the calls that asked for one (before any waiting) and
    telling ``changed`` each time."""

    def __init__(self, value: int, changed: threading.Condition) -> None:
        super().__init__(value)
        self.asked = 0
        self.changed = changed

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self.changed:
            self.asked += 1
            self.changed.notify_all()
        return super().acquire(blocking, timeout)


def test_the_real_turns_are_two_with_a_thirty_second_wait() -> None:
    assert (MAX_CONCURRENT_DECODES, DECODE_WAIT_S) == (2, 30.0)


def test_at_most_two_photos_are_decoded_at_a_time_and_the_others_wait_their_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changed = threading.Condition()
    turns = CountingSemaphore(MAX_CONCURRENT_DECODES, changed)
    monkeypatch.setattr(photos, "_DECODES", turns)
    decode = photos._upright_srgb
    inside = [0, 0]  # now, most ever
    release = threading.Event()

    def held_decode(image: Image.Image, label: str) -> Image.Image:
        with changed:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
            changed.notify_all()
        try:
            assert release.wait(DEADLINE_S), "never released"
            return decode(image, label)  # type: ignore[arg-type]
        finally:
            with changed:
                inside[0] -= 1

    monkeypatch.setattr(photos, "_upright_srgb", held_decode)
    upload = encode(scene(), "PNG")
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = [pool.submit(clean_photo, upload, max_pixels=LIMIT) for _ in range(5)]
        with changed:
            assert changed.wait_for(lambda: turns.asked == 5 and inside[0] == 2, DEADLINE_S)
        # Both turns are taken by decodes that cannot end yet: the other three are waiting.
        assert not turns.acquire(blocking=False)
        assert inside == [2, 2]
        release.set()
        cleaned = [result.result(timeout=DEADLINE_S) for result in results]
    assert inside == [0, 2]
    assert all(c == cleaned[0] for c in cleaned)
    assert all(turns.acquire(blocking=False) for _ in range(MAX_CONCURRENT_DECODES))


def test_a_photo_that_finds_no_turn_in_time_is_refused_as_busy_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(photos, "_DECODES", threading.BoundedSemaphore(MAX_CONCURRENT_DECODES))
    decoded: list[str] = []
    decode = photos._upright_srgb

    def spying_decode(image: Image.Image, label: str) -> Image.Image:
        decoded.append(label)
        return decode(image, label)  # type: ignore[arg-type]

    monkeypatch.setattr(photos, "_upright_srgb", spying_decode)
    upload = private_jpeg()
    with ExitStack() as held:
        for _ in range(MAX_CONCURRENT_DECODES):
            held.enter_context(decoding_turn(wait_s=0))
        for wait_s in (0.0, 0.05):
            with pytest.raises(PhotoBusyError, match="busy decoding other photos") as refused:
                clean_photo(upload, max_pixels=LIMIT, wait_s=wait_s)
            assert isinstance(refused.value, BusyError)  # 503, "try again"
        # What the header alone refuses is refused as such, busy or not.
        with pytest.raises(PhotoTooLargeError):
            clean_photo(upload, max_pixels=100, wait_s=0)
        with pytest.raises(PhotoError):
            clean_photo(b"GIF89a not really", max_pixels=LIMIT, wait_s=0)
    assert decoded == []
    assert_clean(clean_photo(upload, max_pixels=LIMIT, wait_s=0), SECRETS)
    assert decoded == ["JPEG"]


def test_a_photo_that_fails_to_decode_gives_its_turn_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turns = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
    monkeypatch.setattr(photos, "_DECODES", turns)

    def failing_decode(image: Image.Image, label: str) -> Image.Image:
        raise PhotoError(f"the {label} image cannot be decoded")

    monkeypatch.setattr(photos, "_upright_srgb", failing_decode)
    for _ in range(MAX_CONCURRENT_DECODES + 3):
        with pytest.raises(PhotoError):
            clean_photo(private_jpeg(), max_pixels=LIMIT, wait_s=0)
    assert all(turns.acquire(blocking=False) for _ in range(MAX_CONCURRENT_DECODES))
