"""Decompression bombs: small files that would expand to gigabytes fail at once, from their
headers, with a message naming the file and the limit; archives are never unpacked."""

from __future__ import annotations

import base64
import io
import json
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.tiles.support import ASSETS, bench_with_textures, blank_png, lying_header, split_glb
from tiles.convert import ConvertOptions, InputError, convert
from tiles.errors import UnsupportedFormatError
from tiles.limits import MAX_TEXTURE_PIXELS, InputLimits
from tiles.readers import sniff
from tiles.readers.textures import image_size

HERE = ConvertOptions(origin=(4.761, 52.3095, 39.6))


def test_a_png_header_is_read_without_decoding_it() -> None:
    assert image_size(blank_png(30_000, 30_000)) is not None
    assert image_size(blank_png(300, 200)) == (300, 200)
    assert image_size(b"not an image") is None


def test_a_glb_with_a_30000_pixel_square_texture_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.glb"
    path.write_bytes(bench_with_textures(blank_png(30_000, 30_000)))
    assert path.stat().st_size < 200_000
    with pytest.raises(InputError) as caught:
        convert([path], tmp_path / "out", HERE)
    message = str(caught.value)
    assert message.startswith(f"{path}: texture")
    assert f"more pixels than the limit of {MAX_TEXTURE_PIXELS:,} for one texture" in message
    assert not (tmp_path / "out").exists()


def test_the_texture_limit_follows_the_memory_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.glb"
    path.write_bytes(bench_with_textures(blank_png(3000, 3000)))  # 9 million pixels
    small = ConvertOptions(origin=HERE.origin, limits=InputLimits.for_memory(64 << 20))
    assert small.limits.max_texture_pixels == (64 << 20) // 16
    with pytest.raises(
        InputError, match="3,000 x 3,000 pixels, more than the limit of 4,194,304 for one"
    ):
        convert([path], tmp_path / "out", small)
    ample = ConvertOptions(origin=HERE.origin, limits=InputLimits.for_memory(4 << 30))
    assert convert([path], tmp_path / "ok", ample).summary["counts"]["features"] > 0


def test_all_textures_of_a_model_together_have_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.glb"
    path.write_bytes(bench_with_textures(*[blank_png(1000, 1000)] * 3))
    limits = InputLimits(max_texture_pixels=1_000_000, max_total_texture_pixels=2_500_000)
    with pytest.raises(InputError, match="more than the limit of 2,500,000 pixels together"):
        convert([path], tmp_path / "out", ConvertOptions(origin=HERE.origin, limits=limits))


def test_a_gltf_with_a_bomb_in_a_data_uri_fails_at_once(tmp_path: Path) -> None:
    document, binary = split_glb((ASSETS / "bench.glb").read_bytes())
    texture = base64.b64encode(blank_png(20_000, 20_000)).decode("ascii")
    document["images"] = [{"uri": f"data:image/png;base64,{texture}"}]
    document["buffers"][0]["uri"] = "data:application/octet-stream;base64," + (
        base64.b64encode(binary).decode("ascii")
    )
    path = tmp_path / "bomb.gltf"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"texture '#0' has more pixels than the limit of 67,108,864"
    ):
        convert([path], tmp_path / "out", HERE)


def test_an_obj_whose_material_names_a_bomb_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(blank_png(9000, 9000))  # under Pillow's own limit
    (tmp_path / "m.mtl").write_text("newmtl skin\nmap_Kd bomb.png\n", encoding="utf-8")
    (tmp_path / "box.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl skin\n"
        "f 1/1 2/2 3/3\n",
        encoding="utf-8",
    )
    with pytest.raises(
        InputError,
        match=r"texture 'bomb.png' has 9,000 x 9,000 pixels, more than the limit of 67,108,864",
    ):
        convert([tmp_path / "box.obj"], tmp_path / "out", HERE)


def test_a_texture_of_ordinary_size_still_converts(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (90, 60, 30)).save(buffer, format="PNG")
    path = tmp_path / "bench.glb"
    path.write_bytes(bench_with_textures(buffer.getvalue()))
    report = convert([path], tmp_path / "out", HERE)
    assert report.summary["counts"]["triangles"] > 0


@pytest.mark.parametrize("compress", [False, True], ids=["las", "laz"])
def test_a_point_cloud_claiming_more_than_it_holds_fails_at_once(
    tmp_path: Path, compress: bool
) -> None:
    path = lying_header(
        tmp_path / ("scan.laz" if compress else "scan.las"), 500_000_000, compress=compress
    )
    with pytest.raises(InputError) as caught:
        convert([path], tmp_path / "out", ConvertOptions(crs="EPSG:7415"))
    message = str(caught.value)
    assert message.startswith(f"{path}: the header claims 500,000,000 points")
    if compress:
        assert "more than the limit of 256 points per compressed byte" in message
    else:
        assert "truncated or damaged" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("compress", [False, True], ids=["las", "laz"])
def test_a_point_cloud_claiming_billions_of_points_fails_at_once(
    tmp_path: Path, compress: bool
) -> None:
    path = lying_header(
        tmp_path / ("scan.laz" if compress else "scan.las"), 3_000_000_000, compress=compress
    )
    with pytest.raises(InputError) as caught:
        convert([path], tmp_path / "out", ConvertOptions(crs="EPSG:7415"))
    assert str(caught.value) == (
        f"{path}: the header claims 3,000,000,000 points, more than the limit of "
        "1,000,000,000 points of one point cloud: split it into tiles"
    )
    assert not (tmp_path / "out").exists()


def test_real_point_clouds_pass_the_header_check(tmp_path: Path) -> None:
    from tiles.points import check_header

    check_header(ASSETS / "tree_scan.laz", sniff.LAZ, InputLimits())
    honest = lying_header(tmp_path / "honest.las", 1000, compress=False)
    check_header(honest, sniff.LAS, InputLimits())


@pytest.mark.parametrize(
    ("name", "kind"),
    [("model.glb", "zip"), ("scan.laz", "zip"), ("site.kmz", "zip"), ("zones.geojson", "gzip")],
)
def test_archives_are_refused_by_their_first_bytes_and_never_unpacked(
    tmp_path: Path, name: str, kind: str
) -> None:
    """A zip bomb (a member of 200 MB of zeros in about 200 KB) or a gzip stream: refused as
    what they are, whatever their name; zip and gzip are not inputs, so nothing unpacks them."""
    path = tmp_path / name
    if kind == "zip":
        with (
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            archive.open("inner.glb", "w", force_zip64=True) as member,
        ):
            for _ in range(200):
                member.write(b"\x00" * (1 << 20))
    else:
        path.write_bytes(zlib.compress(b"{" * (1 << 20))[2:-4].join([b"\x1f\x8b\x08\x00", b""]))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(UnsupportedFormatError) as caught:
        sniff.detect(path)
    assert ("ZIP archive" if kind == "zip" else "gzip") in str(caught.value)
    with pytest.raises(InputError, match="not a supported input"):
        convert([path], tmp_path / "out")
