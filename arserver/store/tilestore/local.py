"""Published tilesets in a local folder (``data_dir/tiles``), the default tile store.

A revision is written to a temporary folder beside the asset's (the converter's output is
moved there whole), renamed to its content-addressed name, and then the entry point is
replaced by an atomic rename: a crash leaves either the old entry point or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arserver.errors import NotFoundError
from arserver.store.tilestore import (
    ENTRY_POINT,
    SAFE_ID,
    Revision,
    StoredFile,
    check_asset_id,
    etag_of,
    manifest_of,
    media_type_of,
    pointer_document,
    request_parts,
    revision_name,
    sha256_of,
)

#: How many files' ETags are remembered (per path, size and modification time).
_ETAG_MEMORY = 100_000


class LocalTileStore:
    """Owns ``root``; see :mod:`arserver.store.tilestore` for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._etags: dict[tuple[str, int, int], str] = {}

    def asset_dir(self, asset_id: str) -> Path:
        """The asset's folder (it may not exist)."""
        check_asset_id(asset_id)
        return self.root / asset_id

    def check(self, asset_id: str) -> None:
        check_asset_id(asset_id)

    def file(self, asset_id: str, relative: str) -> StoredFile:
        base = self.asset_dir(asset_id).resolve()
        parts = request_parts(asset_id, relative)
        candidate = base.joinpath(*parts).resolve()
        if base not in candidate.parents or not candidate.is_file():
            raise NotFoundError(f"no file {relative!r} for asset {asset_id!r}")
        stat = candidate.stat()
        key = (str(candidate), stat.st_size, stat.st_mtime_ns)
        etag = self._etags.get(key)
        if etag is None:
            etag = etag_of(sha256_of(candidate))
            if len(self._etags) > _ETAG_MEMORY:
                self._etags.clear()
            self._etags[key] = etag
        return StoredFile(
            asset_id, "/".join(parts), stat.st_size, etag, media_type_of(candidate.name),
            candidate,
        )  # fmt: skip

    def read(self, file: StoredFile) -> bytes:
        assert file.path is not None
        return file.path.read_bytes()

    def chunks(self, file: StoredFile, start: int, end: int) -> Iterator[bytes]:
        assert file.path is not None
        with file.path.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                block = handle.read(min(left, 1 << 16))
                if not block:
                    return
                left -= len(block)
                yield block

    def entry_point(self, asset_id: str) -> bytes | None:
        try:
            return (self.asset_dir(asset_id) / ENTRY_POINT).read_bytes()
        except OSError:
            return None

    def publish(self, asset_id: str, tileset_dir: Path) -> str:
        manifest = manifest_of(tileset_dir)
        revision = revision_name(manifest)
        target = self.asset_dir(asset_id)
        target.mkdir(parents=True, exist_ok=True)
        destination = target / revision
        if destination.exists():  # the same content again: it is there already
            shutil.rmtree(tileset_dir, ignore_errors=True)
        else:
            staging = Path(tempfile.mkdtemp(prefix=".incoming.", dir=target))
            shutil.move(str(tileset_dir), staging / "revision")  # a rename on one file system
            os.replace(staging / "revision", destination)
            staging.rmdir()
        document = json.loads((destination / ENTRY_POINT).read_text(encoding="utf-8"))
        handle, temporary = tempfile.mkstemp(prefix=".tileset.", suffix=".json", dir=target)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(pointer_document(document, revision), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target / ENTRY_POINT)
        return revision

    def remove(self, asset_id: str) -> None:
        shutil.rmtree(self.asset_dir(asset_id), ignore_errors=True)

    def assets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and SAFE_ID.match(p.name))

    def files(self, asset_id: str) -> list[str]:
        folder = self.asset_dir(asset_id)
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def revisions(self, asset_id: str) -> list[Revision]:
        folder = self.asset_dir(asset_id)
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if not child.is_dir():
                continue
            newest = max(
                (p.stat().st_mtime for p in child.rglob("*")), default=child.stat().st_mtime
            )
            found.append(Revision(asset_id, child.name, datetime.fromtimestamp(newest, UTC)))
        return sorted(found, key=lambda r: r.name)

    def remove_revision(self, revision: Revision) -> None:
        folder = self.asset_dir(revision.asset_id) / revision.name
        if folder.parent == self.asset_dir(revision.asset_id):
            shutil.rmtree(folder, ignore_errors=True)

    def presign(self, file: StoredFile, expires: timedelta) -> str | None:
        return None
