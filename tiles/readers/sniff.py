"""Telling file formats apart by a look at their first bytes."""

from __future__ import annotations

from pathlib import Path


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
