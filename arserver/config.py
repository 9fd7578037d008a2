"""Settings of the service, from ``ARSERVER_*`` environment variables (pydantic-settings).

Built by the CLI and by ``create_app`` when they start, never at import time; tests build their
own. With nothing set: SQLite in the data directory, tiles on local disk, in-process bus and
worker (the embedded default).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where data lives and which real engines to use at scale."""

    model_config = SettingsConfigDict(
        env_prefix="ARSERVER_", extra="ignore", env_parse_none_str="none"
    )

    data_dir: Path = Field(default=Path("data"), description="Database, uploads and tiles.")
    database_url: str | None = Field(
        default=None,
        description="postgresql://... for PostgreSQL + PostGIS; default SQLite in data_dir.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0: live events between server processes (Redis streams).",
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://[user:password@]host:1883: consume sensor uplinks."
    )
    mqtt_client_id: str = Field(
        default="arserver-ingest",
        description="The broker keeps this session's queue while the server is away; one "
        "consuming process per id.",
    )
    max_upload_mib: int = Field(default=2048, gt=0, description="Largest accepted upload.")
    job_timeout_s: float = Field(default=3600.0, gt=0, description="Per-conversion time limit.")
    job_memory_mib: int = Field(default=8192, gt=0, description="Per-conversion memory limit.")
    embedded_worker: bool = Field(
        default=True, description="Run a conversion worker inside the server process."
    )
    stale_job_s: float = Field(
        default=120.0, gt=0, description="A running job without heartbeat this long is retried."
    )

    raw_retention_days: float | None = Field(
        default=90.0,
        gt=0,
        description="Raw observations older than this are rolled up into hourly aggregates and "
        "deleted ('none': keep everything raw).",
    )
    aggregate_retention_days: float | None = Field(
        default=3650.0,
        gt=0,
        description="Hourly aggregates older than this are deleted ('none': keep them).",
    )
    retention_interval_s: float = Field(
        default=3600.0, gt=0, description="How often the server applies retention."
    )

    live_retention_s: float = Field(
        default=120.0,
        gt=0,
        description="How long a disconnected live session can be resumed without a gap.",
    )
    live_max_queue_bytes: int = Field(
        default=1_000_000,
        gt=0,
        description="Updates that may wait for one live client (after conflation) before it is "
        "disconnected with code 4008.",
    )
    live_flush_interval_s: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Updates for one client that arrive within this interval go out in one "
        "frame (fewer, larger frames: less CPU per update, a little more latency).",
    )
    live_token_check_s: float = Field(
        default=30.0,
        gt=0,
        description="How often live connections are checked for revoked or expired tokens "
        "(revocations through the API or Redis close them at once).",
    )
    live_send_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A live client whose socket takes no data for this long is disconnected "
        "with code 4008.",
    )

    @property
    def raw_retention(self) -> timedelta | None:
        return timedelta(days=self.raw_retention_days) if self.raw_retention_days else None

    @property
    def aggregate_retention(self) -> timedelta | None:
        days = self.aggregate_retention_days
        return timedelta(days=days) if days else None

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL as SQLAlchemy wants it (psycopg 3 driver for PostgreSQL)."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'arserver.db').absolute()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
