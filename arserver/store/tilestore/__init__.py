"""Where published tilesets live: one small interface, two backends.

Both keep the same layout, under a root folder or under an object storage prefix::

    {asset_id}/tileset.json            the entry point: the pointer to the current revision
    {asset_id}/{revision}/...          one revision's files (its own tileset.json, content)

A revision is named by a digest of its files (content-addressed) and never changes once
written; the entry point is a copy of the revision's tileset.json with its content URIs
prefixed by the revision. Publishing writes every file of the revision first and then
replaces the entry point in one step, so a reader sees the old revision or the new one,
never half of one; a publish that stops midway leaves the old revision served and an
unreferenced revision that :func:`collect_garbage` removes. Paths from requests are checked
here: nothing outside an asset is ever reached.

* :class:`~arserver.store.tilestore.local.LocalTileStore`: ``data_dir/tiles`` (the default);
* :class:`~arserver.store.tilestore.s3.S3TileStore`: ``ARSERVER_TILES_URL=s3://bucket/prefix``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from arserver.errors import NotFoundError

if TYPE_CHECKING:
    from arserver.config import Settings

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENTRY_POINT = "tileset.json"
MEDIA_TYPES = {
    ".json": "application/json",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".ktx2": "image/ktx2",
    ".subtree": "application/octet-stream",
}


def media_type_of(name: str) -> str:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


@dataclass(frozen=True)
class StoredFile:
    """A file of a published tileset: ``relative`` to its asset, ``size`` bytes, ``etag`` (a
    strong ETag: the quoted first 32 hex digits of its SHA-256), ``media_type``, ``path``
    when it is a local file (None in object storage), and ``opened``: a read of it the backend
    began while finding it (its body not read yet; the first read or chunks use it)."""

    asset_id: str
    relative: str
    size: int
    etag: str
    media_type: str
    path: Path | None = None
    opened: Any = field(default=None, compare=False, repr=False)

    @property
    def entry_point(self) -> bool:
        return self.relative == ENTRY_POINT


@dataclass(frozen=True)
class Revision:
    """A revision folder of an asset: its name, and when its newest file was written."""

    asset_id: str
    name: str
    written_at: datetime


class TileStore(Protocol):
    """What the service needs of tile storage. Blocking calls: run them off the event loop."""

    def check(self, asset_id: str) -> None:
        """:class:`NotFoundError` for an id no asset can have."""

    def file(self, asset_id: str, relative: str) -> StoredFile:
        """The file at ``relative`` (a request path) of the asset, or :class:`NotFoundError`."""

    def read(self, file: StoredFile) -> bytes:
        """The whole file (documents: the entry point, child tilesets)."""

    def chunks(self, file: StoredFile, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of the file, in pieces."""

    def entry_point(self, asset_id: str) -> bytes | None:
        """The asset's current entry point, or None when it has none."""

    def publish(self, asset_id: str, tileset_dir: Path) -> str:
        """Store the tileset in ``tileset_dir`` (which is consumed) as a new revision, then
        make it current; returns the revision's name."""

    def remove(self, asset_id: str) -> None:
        """Delete every file of the asset."""

    def assets(self) -> list[str]:
        """The ids of the assets that have files."""

    def files(self, asset_id: str) -> list[str]:
        """Every stored file of the asset, relative to it, sorted."""

    def revisions(self, asset_id: str) -> list[Revision]:
        """The asset's revision folders."""

    def remove_revision(self, revision: Revision) -> None:
        """Delete one revision's files."""

    def presign(self, file: StoredFile, expires: timedelta) -> str | None:
        """A URL that serves the file without arserver for ``expires``, or None when this
        backend has none."""


def check_asset_id(asset_id: str) -> None:
    if not SAFE_ID.match(asset_id):
        raise NotFoundError(f"no asset {asset_id!r}")


def request_parts(asset_id: str, relative: str) -> list[str]:
    """The parts of a request path inside an asset, or :class:`NotFoundError` for one that
    would leave it (``..``, backslashes, NUL) or names nothing."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or "\\" in p or "\x00" in p for p in parts):
        raise NotFoundError(f"no file {relative!r} for asset {asset_id!r}")
    return parts


def etag_of(digest: str) -> str:
    return f'"{digest[:32]}"'


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_of(tileset_dir: Path) -> list[tuple[str, Path, str]]:
    """Every file of a tileset folder: (relative POSIX path, path, SHA-256 hex), sorted."""
    files = sorted(p for p in tileset_dir.rglob("*") if p.is_file())
    return [(p.relative_to(tileset_dir).as_posix(), p, sha256_of(p)) for p in files]


def revision_name(manifest: list[tuple[str, Path, str]]) -> str:
    """The content-addressed name of a revision: ``r`` and 24 hex digits of the SHA-256 of
    its files' paths and digests."""
    digest = hashlib.sha256()
    for relative, _, sha in manifest:
        digest.update(f"{relative}\0{sha}\n".encode())
    return "r" + digest.hexdigest()[:24]


def pointer_document(document: dict[str, Any], revision: str) -> dict[str, Any]:
    """The entry point of a revision: its tileset with every content URI prefixed by the
    revision (a new document; ``document`` is unchanged)."""
    pointer = copy.deepcopy(document)
    _prefix_uris(pointer["root"], revision)
    return pointer


def _prefix_uris(tile: dict[str, Any], revision: str) -> None:
    for content in [tile.get("content"), *tile.get("contents", [])]:
        uri = content.get("uri") if isinstance(content, dict) else None
        if isinstance(uri, str) and _relative_reference(uri):
            content["uri"] = f"{revision}/{uri}"
    for child in tile.get("children", []):
        _prefix_uris(child, revision)


def _relative_reference(uri: str) -> bool:
    """Whether ``uri`` is a relative path reference (no scheme, not from the host's root)."""
    head = uri.split("/", 1)[0]
    return not uri.startswith("/") and ":" not in head


def referenced_revisions(entry_point: bytes | None) -> set[str]:
    """The revision folders an entry point's content URIs name (the first path part of each
    relative URI)."""
    if entry_point is None:
        return set()
    try:
        document = json.loads(entry_point)
    except ValueError:
        return set()
    found: set[str] = set()

    def walk(tile: dict[str, Any]) -> None:
        for content in [tile.get("content") or {}, *tile.get("contents", [])]:
            uri = content.get("uri") if isinstance(content, dict) else None
            if isinstance(uri, str) and _relative_reference(uri) and "/" in uri:
                found.add(uri.removeprefix("./").split("/", 1)[0])
        for child in tile.get("children", []):
            if isinstance(child, dict):
                walk(child)

    root = document.get("root") if isinstance(document, dict) else None
    if isinstance(root, dict):
        walk(root)
    return found


def open_tile_store(settings: Settings) -> TileStore:
    """The tile store ``settings`` ask for: ``tiles_url`` ``s3://bucket/prefix``, or the local
    ``data_dir/tiles``."""
    if settings.tiles_url:
        from arserver.store.tilestore.s3 import S3TileStore

        return S3TileStore.from_settings(settings)
    from arserver.store.tilestore.local import LocalTileStore

    return LocalTileStore(settings.data_dir / "tiles")


@dataclass(frozen=True)
class GarbageReport:
    """What :func:`collect_garbage` removed: revision folders no entry point names, and the
    files of assets that no longer exist."""

    revisions: list[Revision]
    assets: list[str]


def collect_garbage(
    store: TileStore,
    known_assets: set[str],
    older_than: timedelta,
    now: datetime,
    *,
    dry_run: bool = False,
) -> GarbageReport:
    """Remove the revisions of each asset that its entry point does not name and that were
    last written before ``now - older_than`` (younger ones may be a publish under way, or
    still read by clients that loaded the entry point before it moved on), and every file of
    assets not in ``known_assets`` whose revisions are all that old. Safe to run while
    publishes and requests go on, and from several processes. ``dry_run``: remove nothing,
    report what would go."""
    cutoff = now - older_than
    removed: list[Revision] = []
    gone: list[str] = []
    for asset_id in store.assets():
        revisions = store.revisions(asset_id)
        if asset_id not in known_assets:
            if all(r.written_at < cutoff for r in revisions):
                if not dry_run:
                    store.remove(asset_id)
                gone.append(asset_id)
            continue
        current = referenced_revisions(store.entry_point(asset_id))
        for revision in revisions:
            if revision.name not in current and revision.written_at < cutoff:
                if not dry_run:
                    store.remove_revision(revision)
                removed.append(revision)
    return GarbageReport(removed, gone)
