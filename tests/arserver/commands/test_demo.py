"""`arserver demo`: the heights table, then the server with every sample asset converted."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from arserver.commands.showcase import run_demo
from arserver.config import Settings
from tests.support import free_port


def test_demo_shows_heights_serves_and_imports_every_sample(tmp_path: Path) -> None:
    buffer = io.StringIO()
    assets = run_demo(
        Settings(data_dir=tmp_path),
        Console(file=buffer, width=250),
        port=free_port(),
        keep_serving=False,
    )
    text = buffer.getvalue()
    assert "Amsterdam, Dam" in text
    assert "42.98" in text  # NAP 0 m is about 43 m above the ellipsoid there
    assert "40.75" in text  # and 40.8 m in Groningen
    assert "40.8 to 45.7 m too low" in text
    assert [a["status"] for a in assets] == ["ready"] * 6, [a["error"] for a in assets]
    assert "/tiles/scene/demo/tileset.json?access_token=ars_" in text
    assert "/docs" in text
    assert "simulated sensors: 1067 observations" in text  # 24 h x 4 x 11 values, then 11 live
