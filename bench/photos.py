"""Benchmark: cleaning an inspection photo (``arserver.services.photos.clean_photo``) against
the floor of any re-encoding: Pillow decoding the same file and saving it in the format
clean_photo writes (JPEG at quality 85; PNG stays PNG), with no orientation, colour
management, metadata removal, scaling or thumbnail.

Inputs are made here: a phone-like 12-megapixel JPEG (4032 x 3024, noisy so that it does not
compress away) with EXIF GPS, a camera serial and orientation 6; the same as PNG; a 2-megapixel
JPEG. Medians of ``--repeats`` runs, one after the other in this process.

    python bench/photos.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arserver.services.photos import clean_photo

MAX_PIXELS = 50_000_000


def _photo(width: int, height: int, kind: str) -> bytes:
    rng = np.random.default_rng(7)
    gradient = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    pixels = np.clip(gradient + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    out = io.BytesIO()
    if kind == "JPEG":
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90
        exif[0x010F], exif[0x0110] = "Phone maker", "Phone 15"
        exif.get_ifd(0x8769)[0xA431] = "SN-4815162342"
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 22.0, 12.5), "E", (4.0, 53.0, 42.1)
        image.save(out, "JPEG", quality=92, exif=exif)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _bare(data: bytes) -> None:
    """Decode and save in the format clean_photo writes (PNG stays PNG, the rest JPEG)."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "PNG":
            image.save(io.BytesIO(), "PNG")
        else:
            image.convert("RGB").save(io.BytesIO(), "JPEG", quality=85)


def _median_s(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = [
        ("12 MP JPEG (phone)", _photo(4032, 3024, "JPEG")),
        ("12 MP PNG", _photo(4032, 3024, "PNG")),
        ("2 MP JPEG", _photo(1600, 1200, "JPEG")),
    ]
    print("| input | size | Pillow decode + save (s) | clean_photo (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, data in cases:
        bare = _median_s(partial(_bare, data), args.repeats)
        clean = _median_s(partial(clean_photo, data, max_pixels=MAX_PIXELS), args.repeats)
        print(
            f"| {name} | {len(data) / 1e6:.1f} MB | {bare:.3f} | {clean:.3f} | {clean / bare:.2f} |"
        )


if __name__ == "__main__":
    main()
