"""tiles/ is a library: importing it must not pull in the service, the web or a database."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "arserver",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "redis",
    "aiomqtt",
    "paho",
    "uvicorn",
)


def test_importing_tiles_pulls_in_no_service_web_or_database_module() -> None:
    code = (
        "import sys, tiles, tiles.crs, tiles.errors, tiles.convert, tiles.points\n"
        "t = tiles.crs.Transformer.from_crs('EPSG:7415', 'EPSG:4978')\n"
        "t.transform([155000.0], [463000.0], [0.0])\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
