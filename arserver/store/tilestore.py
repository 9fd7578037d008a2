"""Published tilesets on local disk, laid out so that content can be cached forever.

    data_dir/tiles/{asset_id}/tileset.json            current entry point (revalidated)
    data_dir/tiles/{asset_id}/{revision}/content/...   one revision's content (immutable)
    data_dir/tiles/{asset_id}/{revision}/tileset.json  that revision's own tileset

Publishing moves a converted tileset in as a new revision and then atomically replaces the entry
point with a copy whose content URIs carry the revision; clients holding the old entry point keep
working until old revisions are removed. Paths from requests are resolved inside the asset's
folder only (no traversal).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from arserver.errors import NotFoundError

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TileStore:
    """Owns ``root`` (``data_dir/tiles``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def asset_dir(self, asset_id: str) -> Path:
        if not _SAFE_ID.match(asset_id):
            raise NotFoundError(f"no asset {asset_id!r}")
        return self.root / asset_id

    def resolve(self, asset_id: str, relative: str) -> Path:
        """The file for a request path, or :class:`NotFoundError`; never outside the asset."""
        base = self.asset_dir(asset_id).resolve()
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if any(p == ".." or "\\" in p or "\x00" in p for p in parts):
            raise NotFoundError(f"no file {relative!r} for asset {asset_id!r}")
        candidate = base.joinpath(*parts).resolve() if parts else base
        if base not in candidate.parents or not candidate.is_file():
            raise NotFoundError(f"no file {relative!r} for asset {asset_id!r}")
        return candidate

    def publish(self, asset_id: str, tileset_dir: Path, revision: str) -> None:
        """Move a finished tileset directory in as ``revision`` and make it current."""
        if not _SAFE_ID.match(revision):
            raise ValueError(f"unsafe revision name {revision!r}")
        target = self.asset_dir(asset_id)
        target.mkdir(parents=True, exist_ok=True)
        destination = target / revision
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(tileset_dir, destination)
        document = json.loads((destination / "tileset.json").read_text(encoding="utf-8"))
        _prefix_uris(document["root"], revision)
        handle, temporary = tempfile.mkstemp(prefix=".tileset.", suffix=".json", dir=target)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target / "tileset.json")

    def remove(self, asset_id: str) -> None:
        shutil.rmtree(self.asset_dir(asset_id), ignore_errors=True)


def _prefix_uris(tile: dict[str, Any], revision: str) -> None:
    content = tile.get("content")
    if content is not None and "uri" in content:
        content["uri"] = f"{revision}/{content['uri']}"
    for child in tile.get("children", []):
        _prefix_uris(child, revision)
