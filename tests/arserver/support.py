"""Helpers for service tests: tokens, uploads and conversions through a ``TestClient``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from arserver.config import Settings
from arserver.jobs.worker import Worker
from arserver.security.tokens import create_token

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"


def engine_of(client: TestClient) -> Engine:
    """The database engine of a running application."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def auth(client: TestClient, role: str = "gis") -> dict[str, str]:
    """Headers with a new token of ``role``."""
    secret, _ = create_token(engine_of(client), role)
    return {"Authorization": f"Bearer {secret}"}


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
