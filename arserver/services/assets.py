"""The write path for assets: upload accepted with its job, conversion progress, published or
failed, metadata changed, deleted with its tiles and upload.

:class:`AssetService` is the only code that changes an asset's row, its tiles or its upload, and
the only code that announces assets on the live bus (after the commit). The HTTP API and the
conversion worker both go through it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Engine

from arserver.domain import Change, asset_change
from arserver.live.bus import Bus
from arserver.services.feature_index import FEATURES_FILE, read_feature_index
from arserver.store import assets as rows
from arserver.store.assets import AssetRow, extent_of
from arserver.store.tilestore import TileStore
from arserver.store.uploads import remove_upload, store_upload, uploads_dir

if TYPE_CHECKING:  # a type only; the converter itself runs in worker child processes
    from tiles.convert import ConversionSummary

log = logging.getLogger(__name__)


class AssetService:
    """Assets of one database, tile store and upload folder (``data_dir/uploads``).

    ``bus``: where committed changes go (None: nowhere, e.g. a worker without Redis, whose
    process has no live hub to tell).
    """

    def __init__(
        self, engine: Engine, data_dir: Path, tiles: TileStore, bus: Bus | None = None
    ) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.tiles = tiles
        self.bus = bus

    # Reading (no events) -----------------------------------------------------------------

    def get(self, asset_id: str) -> AssetRow | None:
        return rows.get_asset(self.engine, asset_id)

    def source_path(self, asset: AssetRow) -> Path:
        """Where the asset's uploaded file is kept (a server path: never show it to clients)."""
        return uploads_dir(self.data_dir, asset["id"]) / str(asset["source_name"])

    # Writing -----------------------------------------------------------------------------

    def accept_upload(
        self, filename: str, source: BinaryIO, values: dict[str, Any], limit: int
    ) -> AssetRow:
        """Create a queued asset with ``values``, keep its file (at most ``limit`` bytes) and
        queue its conversion, all or nothing; returns the new asset."""
        asset_id = store_upload(self.engine, self.data_dir, filename, source, values, limit)
        row = self.get(asset_id)
        assert row is not None
        return row

    def start(self, asset_id: str) -> None:
        """A worker began converting the asset."""
        rows.set_state(
            self.engine, asset_id, status="processing", progress=0.0, stage="starting", error=None
        )

    def progress(self, asset_id: str, fraction: float, stage: str) -> None:
        """How far the conversion is (``fraction`` 0..1) and what it is doing."""
        rows.set_state(self.engine, asset_id, progress=fraction, stage=stage)

    def publish_tiles(self, asset: AssetRow, tileset_dir: Path, summary: ConversionSummary) -> str:
        """Store a converted tileset as a new revision (named by its content), mark the
        asset ready with its extent (``summary["wgs84_bbox"]``: west, south, east, north
        degrees) and, in the same transaction, its features from the tileset's
        ``features.json`` (replacing those of an earlier revision; none without a usable
        file), then announce it; returns the revision. :class:`OSError` if the tiles cannot
        be stored (the asset is unchanged then)."""
        index = read_feature_index(tileset_dir / FEATURES_FILE)  # before the tiles move
        revision = self.tiles.publish(asset["id"], tileset_dir)
        west, south, east, north = summary["wgs84_bbox"]
        rows.mark_ready(
            self.engine, asset["id"], index.features, status="ready", progress=1.0,
            stage="done", summary=summary, west=west, south=south, east=east, north=north,
        )  # fmt: skip
        self._announce(
            asset_change(
                asset["id"], asset["name"], asset["layer"], (west, south, east, north),
                datetime.now(UTC), public=bool(asset["public"]),
            )
        )  # fmt: skip
        return revision

    def fail(self, asset_id: str, error: str) -> None:
        """The conversion failed; ``error`` is shown to clients as it is (no server paths)."""
        rows.set_state(self.engine, asset_id, status="failed", stage="failed", error=error)

    def change(self, asset_id: str, values: dict[str, Any]) -> AssetRow | None:
        """Change metadata (name, layer, lifecycle, public); None if there is no such asset.
        A published asset's new metadata reaches the live overlay."""
        if values and not rows.update_asset(self.engine, asset_id, values):
            return None
        row = self.get(asset_id)
        if row is not None and values and row["status"] == "ready":
            self._announce(_change_of(row))
        return row

    def delete(self, asset_id: str) -> bool:
        """Delete the asset's row, jobs and features, then its tiles and upload, then take it
        off the live overlay; False if there is no such asset. A crash between the commit and
        the file removal leaves only unreferenced files."""
        deleted = rows.delete_asset(self.engine, asset_id)
        if deleted is None:
            return False
        self.tiles.remove(asset_id)
        remove_upload(self.data_dir, asset_id)
        self._announce(_change_of(deleted, removed=True))  # if it was on the live overlay
        return True

    def _announce(self, change: Change | None) -> None:
        if self.bus is not None and change is not None:
            self.bus.publish([change])  # after the commit; a bus never fails the write


def _change_of(row: AssetRow, *, removed: bool = False) -> Change | None:
    """The live event of an asset that has an extent (None for one never converted)."""
    extent = extent_of(row)
    if extent is None:
        return None
    return asset_change(
        row["id"], row["name"], row["layer"], extent, datetime.now(UTC),
        public=bool(row["public"]), removed=removed,
    )  # fmt: skip
