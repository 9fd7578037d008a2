"""Input readers. Each module offers ``supports(path)`` and ``read(path, ...)`` returning a
:class:`Source`: geometry still in source coordinates, with the CRS its metadata names, if any."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pyproj
from numpy.typing import NDArray

from tiles.georef import Placement
from tiles.model import FeatureModel


class Source(Protocol):
    """What the converter needs from any vector input."""

    path: Path
    crs: pyproj.CRS | None

    def sample_points(self) -> NDArray[np.float64]:
        """Source coordinates (n, 3) spanning the data, for choosing the ENU origin."""
        ...

    def build(self, placement: Placement) -> FeatureModel:
        """Meshes in the placement's ENU frame."""
        ...
