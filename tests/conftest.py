"""Shared fixtures. Reference data lives in tests/data/ (each set with its source and licence)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"
NSGI_INSIDE = DATA / "rdnaptrans2018" / "z001_inside.tsv"


@pytest.fixture(scope="session")
def nsgi_inside() -> np.ndarray:
    """The NSGI RDNAPTRANS(TM)2018 self-validation points inside the RD region (7,959 rows):
    fields point_id, etrs89_lat, etrs89_lon, etrs89_h, rd_x, rd_y, nap_h. A missing file is a
    failure, never a skip: it is part of the repository."""
    if not NSGI_INSIDE.is_file():
        pytest.fail(f"reference data {NSGI_INSIDE.relative_to(DATA.parent.parent)} is missing")
    data = np.genfromtxt(NSGI_INSIDE, names=True, delimiter="\t")
    assert data.size == 7959, "the validation set has changed"
    return data


@pytest.fixture(autouse=True)
def every_glb_a_test_writes_is_valid(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used ``tmp_path``: every GLB it left there passes the Khronos glTF
    validator with zero errors (the acceptance bar for everything the engine writes)."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    yield
    written = sorted(tmp_path.rglob("*.glb"))
    produced = [p for p in written if "content" in p.parts]
    if produced:
        from tests.validators.gltf import assert_valid_glb

        assert_valid_glb(produced)
