"""Accepting an upload: the asset row, the file on disk and the queued conversion job appear
together or not at all."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, update

from arserver.errors import InputError, TooLargeError
from arserver.store import jobs as queue
from arserver.store.assets import create_asset
from arserver.store.schema import assets

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir(data_dir: Path, asset_id: str) -> Path:
    """Where an asset's source file is kept."""
    return data_dir / "uploads" / asset_id


def remove_upload(data_dir: Path, asset_id: str) -> None:
    shutil.rmtree(uploads_dir(data_dir, asset_id), ignore_errors=True)


def safe_filename(name: str) -> str:
    """A file name without folders or surprising characters (the extension survives)."""
    cleaned = _SAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    return cleaned[:200] or "upload"


def _copy(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy in chunks; :class:`InputError` past ``limit`` bytes or for an empty file."""
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise TooLargeError(
                    f"the upload is larger than the limit of {limit // (1 << 20)} MiB"
                )
            out.write(chunk)
    if size == 0:
        raise InputError("the uploaded file is empty")
    return size


def store_upload(
    engine: Engine,
    data_dir: Path,
    filename: str,
    source: BinaryIO,
    values: dict[str, Any],
    limit: int,
) -> str:
    """Create the asset with ``values``, keep its file and queue its conversion; returns the
    asset id. On any failure nothing remains: no row, no file, no job."""
    with engine.begin() as connection:
        asset_id = create_asset(connection, values)
        folder = uploads_dir(data_dir, asset_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = safe_filename(filename)
            size = _copy(source, folder / name, limit)
            connection.execute(
                update(assets)
                .where(assets.c.id == asset_id)
                .values(source_name=name, source_bytes=size)
            )
            queue.enqueue(connection, asset_id)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return asset_id
