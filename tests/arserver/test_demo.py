"""`arserver demo` shows the ellipsoidal height of NAP 0 m at well-known places."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from arserver.demo import run_demo


def test_demo_shows_heights_of_about_41_to_46_m_and_converts_the_samples(tmp_path: Path) -> None:
    buffer = io.StringIO()
    run_demo(tmp_path, Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "Amsterdam, Dam" in text
    assert "42.98" in text
    assert "Groningen, Martinitoren" in text
    assert "40.75" in text
    assert "Maastricht, Vrijthof" in text
    assert "45.73" in text
    assert "40.8 to 45.7 m too low" in text
    assert "accuracy 0.001 m" in text
    for name in ("parking_zones", "cables_pipes", "buildings", "tree_scan", "lamp_post", "bench"):
        assert (tmp_path / "demo" / name / "tileset.json").is_file()
