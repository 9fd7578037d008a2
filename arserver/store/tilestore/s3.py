"""Published tilesets in S3-compatible object storage (``ARSERVER_TILES_URL=s3://bucket/prefix``),
through obstore (the Rust ``object_store`` crate). Paths are relative to the store's prefix, as
obstore lists them.

Endpoint, region and credentials come from the usual environment variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ...)
or from the ``s3_*`` settings, which win. An ``http://`` endpoint (a store on the same network,
such as SeaweedFS or MinIO) is allowed as it is.

Every object carries its media type and, as user metadata ``sha256``, the digest its ETag is
made from (the same ETag the local store gives). A revision's objects are written first, in
parallel; the entry point ``{asset}/tileset.json`` is written last, by one PUT, which object
storage makes visible whole or not at all. The size and ETag of revision objects (which never
change) are remembered per process, so a revalidation (``If-None-Match``) costs no request to
the store; the entry point is read every time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import S3Store

from arserver.errors import NotFoundError, UnavailableError
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
)

if TYPE_CHECKING:
    from arserver.config import Settings

#: Objects written at once while publishing.
PARALLEL_PUTS = 16
#: Revision objects whose size and ETag are remembered.
META_MEMORY = 200_000
#: Chunks a streamed object is read in.
CHUNK_BYTES = 256 * 1024


class TileStorageError(UnavailableError):
    """The object storage could not be reached or refused a request."""


@dataclass(frozen=True)
class _Known:
    size: int
    etag: str


class S3TileStore:
    """Tilesets under ``prefix`` in one bucket; see :mod:`arserver.store.tilestore`."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3TileStore:
        url = settings.tiles_url or ""
        if not url.startswith("s3://") or len(url) <= len("s3://"):
            raise ValueError("tiles_url must be s3://bucket/prefix")
        config: dict[str, Any] = {}
        if settings.s3_endpoint_url:
            config["endpoint"] = settings.s3_endpoint_url
        if settings.s3_region:
            config["region"] = settings.s3_region
        if settings.s3_access_key_id:
            config["access_key_id"] = settings.s3_access_key_id
        if settings.s3_secret_access_key:
            config["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
        store = S3Store.from_url(
            url,
            config=config,  # type: ignore[arg-type]
            client_options={
                "allow_http": True,  # only used when the endpoint says http://
                "connect_timeout": timedelta(seconds=3),
                "timeout": timedelta(seconds=60),
            },
            retry_config={
                "max_retries": 3,
                "retry_timeout": timedelta(seconds=10),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=50),
                    "max_backoff": timedelta(seconds=2),
                    "base": 2.0,
                },
            },
        )
        return cls(store)

    # -- reading ------------------------------------------------------------------------

    def check(self, asset_id: str) -> None:
        check_asset_id(asset_id)

    def file(self, asset_id: str, relative: str) -> StoredFile:
        check_asset_id(asset_id)
        parts = request_parts(asset_id, relative)
        name = "/".join(parts)
        key = f"{asset_id}/{name}"
        media = media_type_of(parts[-1])
        if name != ENTRY_POINT:
            with self._lock:
                known = self._known.get(key)
                if known is not None:
                    self._known.move_to_end(key)
            if known is not None:
                return StoredFile(asset_id, name, known.size, known.etag, media)
        try:
            result = obstore.get(self.store, key)
        except FileNotFoundError:
            raise NotFoundError(f"no file {relative!r} for asset {asset_id!r}") from None
        except Exception as exc:
            raise _unavailable(exc) from None
        meta = result.meta
        digest = result.attributes.get("sha256")
        etag = etag_of(str(digest)) if digest else str(meta["e_tag"] or '""')
        file = StoredFile(asset_id, name, int(meta["size"]), etag, media, opened=result)
        with self._lock:
            if name != ENTRY_POINT:
                self._known[key] = _Known(file.size, etag)
                while len(self._known) > META_MEMORY:
                    self._known.popitem(last=False)
        return file

    def read(self, file: StoredFile) -> bytes:
        result = file.opened
        try:
            if result is None:
                result = obstore.get(self.store, f"{file.asset_id}/{file.relative}")
            return bytes(result.bytes())
        except FileNotFoundError:
            raise NotFoundError(f"no file {file.relative!r}") from None
        except Exception as exc:
            raise _unavailable(exc) from None

    def chunks(self, file: StoredFile, start: int, end: int) -> Iterator[bytes]:
        result = file.opened
        key = f"{file.asset_id}/{file.relative}"
        try:
            if result is None or (start, end) != (0, file.size):
                if start >= end:
                    return
                result = obstore.get(self.store, key, options={"range": (start, end)})
            for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
                yield bytes(chunk)
        except FileNotFoundError:
            raise NotFoundError(f"no file {file.relative!r}") from None
        except Exception as exc:
            raise _unavailable(exc) from None

    def entry_point(self, asset_id: str) -> bytes | None:
        check_asset_id(asset_id)
        try:
            return bytes(obstore.get(self.store, f"{asset_id}/{ENTRY_POINT}").bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise _unavailable(exc) from None

    def presign(self, file: StoredFile, expires: timedelta) -> str | None:
        return str(obstore.sign(self.store, "GET", f"{file.asset_id}/{file.relative}", expires))

    # -- writing ------------------------------------------------------------------------

    def publish(self, asset_id: str, tileset_dir: Path) -> str:
        check_asset_id(asset_id)
        manifest = manifest_of(tileset_dir)
        revision = revision_name(manifest)
        document = json.loads((tileset_dir / ENTRY_POINT).read_text(encoding="utf-8"))

        def put(item: tuple[str, Path, str]) -> None:
            relative, path, digest = item
            obstore.put(
                self.store, f"{asset_id}/{revision}/{relative}", path,
                attributes={"Content-Type": media_type_of(relative), "sha256": digest},
            )  # fmt: skip

        try:
            with ThreadPoolExecutor(PARALLEL_PUTS, thread_name_prefix="tiles-put") as pool:
                for _ in pool.map(put, manifest):
                    pass
            pointer = json.dumps(pointer_document(document, revision)).encode("utf-8")
            obstore.put(
                self.store, f"{asset_id}/{ENTRY_POINT}", pointer,
                attributes={"Content-Type": "application/json",
                            "sha256": hashlib.sha256(pointer).hexdigest()},
            )  # fmt: skip
        except Exception as exc:
            raise OSError(f"the tiles could not be stored: {_reason(exc)}") from None
        shutil.rmtree(tileset_dir, ignore_errors=True)
        return revision

    def remove(self, asset_id: str) -> None:
        check_asset_id(asset_id)
        self._delete_under(f"{asset_id}/")
        with self._lock:
            for key in [k for k in self._known if k.startswith(f"{asset_id}/")]:
                del self._known[key]

    def assets(self) -> list[str]:
        listing = obstore.list_with_delimiter(self.store)
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"]]
        return sorted(n for n in names if SAFE_ID.match(n))

    def files(self, asset_id: str) -> list[str]:
        check_asset_id(asset_id)
        found = []
        for batch in obstore.list(self.store, prefix=f"{asset_id}/"):
            for meta in batch:
                found.append(str(meta["path"])[len(asset_id) + 1 :])
        return sorted(found)

    def revisions(self, asset_id: str) -> list[Revision]:
        check_asset_id(asset_id)
        newest: dict[str, datetime] = {}
        for batch in obstore.list(self.store, prefix=f"{asset_id}/"):
            for meta in batch:
                rest = str(meta["path"])[len(asset_id) + 1 :]
                if "/" not in rest:  # the entry point itself
                    continue
                name = rest.split("/", 1)[0]
                moment = meta["last_modified"]
                if name not in newest or moment > newest[name]:
                    newest[name] = moment
        return [Revision(asset_id, n, newest[n].astimezone(UTC)) for n in sorted(newest)]

    def remove_revision(self, revision: Revision) -> None:
        check_asset_id(revision.asset_id)
        self._delete_under(f"{revision.asset_id}/{revision.name}/")

    def _delete_under(self, prefix: str) -> None:
        """Delete every object under ``prefix``, then the folders stores with a file system
        behind them (SeaweedFS) keep for them, deepest first (on S3 itself those deletes find
        nothing, which is no error)."""
        folders = {prefix}
        for batch in obstore.list(self.store, prefix=prefix):
            paths = [str(meta["path"]) for meta in batch]
            if paths:
                obstore.delete(self.store, paths)
            for path in paths:
                parts = path.split("/")[:-1]
                folders.update("/".join(parts[:n]) + "/" for n in range(1, len(parts) + 1))
        for folder in sorted(folders, key=lambda f: -f.count("/")):
            if folder.startswith(prefix):
                obstore.delete(self.store, folder)


def _reason(exc: Exception) -> str:
    """The first line of an object store error, without the URL of the store."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(": Error performing", 1)[0][:200]


def _unavailable(exc: Exception) -> TileStorageError:
    return TileStorageError(f"the tile storage is unavailable ({type(exc).__name__})")
