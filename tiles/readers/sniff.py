"""Telling file formats apart by a look at their first bytes, and loading JSON documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiles.errors import TilesError


def json_head(path: Path, size: int = 4096) -> str:
    """The start of a ``.json`` file as text ("" for other files or unreadable ones), enough to
    see which JSON format it is (its top-level ``type`` comes early in practice)."""
    if path.suffix.lower() != ".json":
        return ""
    try:
        with path.open("rb") as handle:
            return handle.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def load_json(path: Path) -> Any:
    """The parsed JSON document; :class:`TilesError` for bytes that are not UTF-8 JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TilesError(f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TilesError(f"not valid JSON: {exc}") from exc
