"""Helpers for service tests: tokens, uploads and conversions through a ``TestClient``; asset
rows; the installed command; a running server with live WebSocket clients."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Column, Engine, insert, select
from websockets.sync.client import ClientConnection, connect

from arserver.commands.server import start_server
from arserver.config import Settings
from arserver.domain import Change
from arserver.jobs.worker import Worker
from arserver.live.bus import Listener
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from arserver.store.schema import assets

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"


# -- the application through a TestClient ---------------------------------------------------


def engine_of(client: TestClient) -> Engine:
    """The database engine of a running application."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


#: The round of the resident tokens the helpers make (residents are always limited to one).
RESIDENT_ROUND = "r1"


def role_token(engine: Engine, role: str) -> str:
    """The secret of a new token of ``role`` (a resident's is limited to
    :data:`RESIDENT_ROUND`, as every resident token is to a round)."""
    scope = f"round:{RESIDENT_ROUND}" if role == "resident" else None
    return create_token(engine, role, scope=scope)[0]


def token(client: TestClient, role: str = "gis") -> str:
    """The secret of a new token of ``role``."""
    return role_token(engine_of(client), role)


def auth(client: TestClient, role: str = "gis") -> dict[str, str]:
    """Headers with a new token of ``role``."""
    return {"Authorization": f"Bearer {token(client, role)}"}


def upload(client: TestClient, path: Path, role: str = "gis", **fields: str) -> Any:
    """``POST /api/v1/assets`` with ``path`` as the file and ``fields`` as form fields."""
    with path.open("rb") as handle:
        return client.post(
            "/api/v1/assets",
            files={"file": (path.name, handle)},
            data=fields,
            headers=auth(client, role),
        )


def run_jobs(client: TestClient, settings: Settings) -> None:
    """Run every queued conversion to its end, in this process."""
    worker = Worker(engine_of(client), settings, name="test-worker")
    while worker.run_once():
        pass


# -- the database directly ------------------------------------------------------------------


def tokens_for(settings: Settings, *roles: str) -> list[str]:
    """Open (and so create or migrate) the database of ``settings`` and make one new token per
    role; their secrets, in order."""
    engine = open_database(settings)
    try:
        return [role_token(engine, role) for role in roles]
    finally:
        engine.dispose()


def insert_asset(
    engine: Engine,
    asset_id: str,
    *,
    status: str = "ready",
    public: bool = False,
    extent: tuple[float, float, float, float] | None = None,
    layer: str = "default",
) -> None:
    """An asset row as the upload would leave it (``ready``: converted, progress 1), with its
    WGS 84 ``extent`` (west, south, east, north) if given."""
    now = datetime.now(UTC)
    west, south, east, north = extent or (None, None, None, None)
    with engine.begin() as connection:
        connection.execute(
            insert(assets).values(
                id=asset_id, name=asset_id, layer=layer, heading=0.0, lifecycle="existing",
                public=public, status=status, progress=1.0 if status == "ready" else 0.0,
                created_at=now, updated_at=now, west=west, south=south, east=east, north=north,
            )
        )  # fmt: skip


# -- the installed command ------------------------------------------------------------------


def arserver_command() -> str:
    """The ``arserver`` console script of this environment."""
    exe = shutil.which("arserver", path=str(Path(sys.executable).parent))
    assert exe is not None, "the arserver command is not installed in this environment"
    return exe


# -- a running server and its live WebSocket ------------------------------------------------


def readings(*values: tuple[str, float]) -> list[dict[str, Any]]:
    """Observations of (sensor, value) now, each a microsecond older than the one before (so
    that none is a duplicate of another)."""
    now = datetime.now(UTC)
    return [
        {"sensor": s, "time": (now - timedelta(microseconds=k)).isoformat(), "value": v}
        for k, (s, v) in enumerate(values)
    ]


class Live:
    """A running server (in this process) with a gis, a viewer and an ingest token."""

    def __init__(self, settings: Settings) -> None:
        self.gis, self.viewer, self.ingest = tokens_for(settings, "gis", "viewer", "ingest")
        self.server, self.url = start_server(settings, 0)
        self.ws_url = self.url.replace("http://", "ws://") + "/api/v1/live"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def register(self, sensor_id: str, location: list[float], crs: str | None = None) -> None:
        body: dict[str, Any] = {
            "id": sensor_id, "name": sensor_id, "kind": "no2", "unit": "ug/m3",
            "location": location,
        }  # fmt: skip
        if crs:
            body["crs"] = crs
        reply = self.http.post(
            "/api/v1/sensors", json=body, headers={"Authorization": f"Bearer {self.gis}"}
        )
        assert reply.status_code == 201, reply.text

    def observe(self, *values: tuple[str, float]) -> None:
        items = readings(*values)
        reply = self.http.post(
            "/api/v1/observations",
            json={"observations": items},
            headers={"Authorization": f"Bearer {self.ingest}"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["accepted"] == len(items), reply.text

    def stats(self) -> dict[str, Any]:
        """``GET /api/v1/live/stats``."""
        reply = self.http.get(
            "/api/v1/live/stats", headers={"Authorization": f"Bearer {self.viewer}"}
        )
        stats: dict[str, Any] = reply.json()
        return stats

    def connect(self, query: str = "", **kwargs: Any) -> ClientConnection:
        return connect(
            f"{self.ws_url}?access_token={self.viewer}{query}", open_timeout=10, **kwargs
        )

    def close(self) -> None:
        self.http.close()
        self.server.stop()


def receive(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next message of ``kind`` (others before it are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] == kind:
            return message


def next_message(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    """The very next message, whatever its type."""
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def assert_names_no_server_path(message: str, settings: Settings) -> None:
    """``message`` (shown to clients) names no folder of the server's data directory."""
    data_dir = settings.data_dir
    for path in {str(data_dir), str(data_dir.absolute()), str(data_dir.resolve())}:
        assert path not in message, message
    assert "/uploads/" not in message, message
    assert "/work/" not in message, message


def failed_asset(client: TestClient, settings: Settings, path: Path, **fields: str) -> Any:
    """Upload ``path``, run the conversion, and return the asset, which must have failed."""
    response = upload(client, path, **fields)
    assert response.status_code == 202, response.text
    run_jobs(client, settings)
    asset = client.get(
        f"/api/v1/assets/{response.json()['id']}", headers=auth(client, "viewer")
    ).json()
    assert asset["status"] == "failed", asset
    assert asset["tileset"] is None
    return asset


def database_text(engine: Engine) -> str:
    """Every row of every table of the schema as text, one line per row: what a search of
    the database for a secret or a name must not find."""
    from sqlalchemy import select

    from arserver.store.schema import metadata

    lines = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                lines.append(f"{table.name}: " + "\t".join(str(v) for v in row))
    return "\n".join(lines)


class RecordingBus:
    """A bus that keeps what was published and, at each publish, the values of ``column``
    committed then (read through another connection, which sees only commits): a service's
    events must come after its commit."""

    def __init__(self, engine: Engine, column: Column[Any]) -> None:
        self.engine = engine
        self.column = column
        self.batches: list[list[Change]] = []
        self.committed: list[list[Any]] = []

    def publish(self, changes: Sequence[Change]) -> None:
        self.batches.append(list(changes))
        with self.engine.connect() as connection:
            self.committed.append(list(connection.execute(select(self.column)).scalars()))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return lambda: None

    def close(self) -> None:
        pass

    def position(self) -> str | None:
        return None

    def replay(self, after: str) -> list[tuple[str, list[Change]]]:
        return []


def stored_files(settings: Settings, asset_id: str) -> list[str]:
    """Every file the tile store of ``settings`` holds for the asset (local or S3)."""
    from arserver.store.tilestore import open_tile_store

    return open_tile_store(settings).files(asset_id)


def stored_entry_point(settings: Settings, asset_id: str) -> dict[str, Any] | None:
    """The asset's entry tileset as the tile store of ``settings`` holds it, or None."""
    from arserver.store.tilestore import open_tile_store

    text = open_tile_store(settings).entry_point(asset_id)
    return None if text is None else cast(dict[str, Any], json.loads(text))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment an ``arserver`` command needs to work on the same data as
    ``settings``: its data folder, database, and tile storage (object storage through the
    usual AWS_* variables, as an operator sets them)."""
    env = {**os.environ, "ARSERVER_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["ARSERVER_DATABASE_URL"] = settings.database_url
    if settings.tiles_url:
        env["ARSERVER_TILES_URL"] = settings.tiles_url
        secret = settings.s3_secret_access_key
        for name, value in (
            ("AWS_ENDPOINT_URL", settings.s3_endpoint_url),
            ("AWS_REGION", settings.s3_region),
            ("AWS_ACCESS_KEY_ID", settings.s3_access_key_id),
            ("AWS_SECRET_ACCESS_KEY", secret.get_secret_value() if secret else None),
        ):
            if value:
                env[name] = value
    return env
