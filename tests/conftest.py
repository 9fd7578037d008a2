"""Shared fixtures. Reference data lives in ../shared/data beside the repository."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ARSERVER_SHARED_DATA", REPO.parent / "shared" / "data"))
NSGI_INSIDE = SHARED_DATA / "rdnaptrans2018" / "z001_inside.tsv"


def require_file(path: Path) -> Path:
    """The path, or a skip with the reason; under CI=true a missing file is a failure."""
    if not path.is_file():
        message = f"reference data {path} is not available"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def nsgi_inside() -> np.ndarray:
    """The NSGI RDNAPTRANS(TM)2018 self-validation points inside the RD region (7,959 rows):
    fields point_id, etrs89_lat, etrs89_lon, etrs89_h, rd_x, rd_y, nap_h."""
    data = np.genfromtxt(require_file(NSGI_INSIDE), names=True, delimiter="\t")
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
