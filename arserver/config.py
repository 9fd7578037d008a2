"""Settings of the service, from ``ARSERVER_*`` environment variables (pydantic-settings).

Built by the CLI and by ``create_app`` when they start, never at import time; tests build their
own. With nothing set: SQLite in the data directory, tiles on local disk, in-process bus and
worker (the embedded default).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, NamedTuple
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: A web origin as browsers send it: scheme://host[:port], no path.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s?#]+$")
_CATEGORY = re.compile(r"^[a-z0-9_-]{1,50}$")
_FEED_KINDS = ("spdp", "datex2")


class ParkingFeed(NamedTuple):
    """One polled car-park feed: ``kind`` "spdp" (an index, static or dynamic document) or
    "datex2" (``url`` a table or combined publication, ``status_url`` an optional separate
    status publication); both URLs are http(s)."""

    kind: str
    url: str
    status_url: str | None = None


def _feed_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("a polled feed needs an http(s) URL")
    return url


def parse_parking_feed(entry: str) -> ParkingFeed:
    """``spdp:URL`` or ``datex2:URL[|STATUS_URL]`` as a :class:`ParkingFeed`; ValueError with
    the reason otherwise (never quoting the URL, which may hold a key)."""
    kind, sep, rest = entry.strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _FEED_KINDS:
        raise ValueError("a parking feed is spdp:URL or datex2:URL[|STATUS_URL]")
    url, bar, status = rest.partition("|")
    if bar and kind != "datex2":
        raise ValueError("only a datex2 feed has a separate status URL")
    return ParkingFeed(kind, _feed_url(url), _feed_url(status) if bar else None)


class Settings(BaseSettings):
    """Where data lives and which real engines to use at scale."""

    model_config = SettingsConfigDict(
        env_prefix="ARSERVER_",
        extra="ignore",
        env_parse_none_str="none",
        hide_input_in_errors=True,  # a refused value may be a secret or a URL with a password
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
    tiles_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix: tiles in S3-compatible object storage (endpoint, "
        "region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or the s3_* settings); default: data_dir/tiles.",
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="The object storage endpoint (instead of AWS_ENDPOINT_URL)."
    )
    s3_region: str | None = Field(default=None, description="Its region (instead of AWS_REGION).")
    s3_access_key_id: str | None = Field(
        default=None, description="Its access key id (instead of AWS_ACCESS_KEY_ID)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Its secret key (instead of AWS_SECRET_ACCESS_KEY)."
    )
    tiles_redirect_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 24 * 3600,
        description="With object storage: answer content requests with a redirect to a "
        "presigned URL valid this long, instead of streaming them (entry points and "
        "documents that carry a token are still served).",
    )
    mqtt_client_id: str = Field(
        default="arserver-ingest",
        description="The broker keeps this session's queue while the server is away; one "
        "consuming process per id (with several, give each its own and keep it across "
        "restarts: `serve --workers N` adds -1 ... -N).",
        pattern=r"^[A-Za-z0-9_.:@-]{1,64}$",
    )
    mqtt_shared_group: str | None = Field(
        default=None,
        description="Consume through the MQTT 5 shared subscription $share/GROUP/...: the "
        "broker gives each uplink to one of the processes subscribed with this group.",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    viewer_dir: Path = Field(
        default=Path(__file__).resolve().parents[1] / "viewer" / "dist",
        description="The built web viewer served at /viewer (`make viewer` builds it there).",
    )
    compress_responses: bool = Field(
        default=True,
        description="gzip answers of 1 KiB and more for clients that accept it (off behind a "
        "proxy that compresses).",
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
    mobile_retention_days: float | None = Field(
        default=30.0,
        gt=0,
        description="Positions of raw observations (mobile sensors) older than this are removed; "
        "the values stay ('none': positions live as long as their raw observations).",
    )
    audit_retention_days: float | None = Field(
        default=365.0,
        gt=0,
        description="Audit log entries older than this are deleted ('none': keep them all).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="A secret kept outside the database (at least 32 characters) that makes the "
        "audit chain an HMAC chain with a sealed head; none: plain SHA-256 (see privacy.md).",
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

    rate_writes_per_s: float = Field(
        default=200.0,
        ge=0,
        description="Writes (POST, PUT, PATCH, DELETE under /api/v1) per second and token, "
        "sustained, counted by each server process; more get 429 (0: no limit).",
    )
    rate_writes_burst: int = Field(
        default=1000, gt=0, description="Writes a token may make at once before that rate applies."
    )
    rate_auth_failures_per_min: float = Field(
        default=30.0,
        ge=0,
        description="Refused credentials (answers 401) per minute and client address (IPv6: "
        "per /64), counted by each server process; beyond it, requests from that address with "
        "a credential this process has not accepted before get 429 (0: no limit).",
    )
    rate_round_joins_per_hour: float = Field(
        default=30.0,
        ge=0,
        description="Joins of participation rounds (POST /api/v1/rounds/{id}/participants) "
        "per hour and client address (IPv6: per /56), as many at once, counted by each server "
        "process instead of the round link's write limit (0: no limit).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="A secret that Prometheus may present (Authorization: Bearer) for /metrics "
        "instead of an admin token; at least 16 characters; none: admin tokens only.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["*"],
        description="Origins whose web pages may call the API (comma-separated or a JSON list); "
        "* (any) is safe while the API authenticates with bearer tokens, never cookies.",
    )

    extent: Annotated[tuple[float, float, float, float] | None, NoDecode] = Field(
        default=(3.2, 50.7, 7.3, 53.7),
        description="The municipality's extent as west,south,east,north (WGS 84 degrees): "
        "inspections, comments and round areas outside it are refused ('none': anywhere). "
        "Default: the European Netherlands.",
    )
    inspection_categories: Annotated[list[str], NoDecode] = Field(
        default=["damage", "hazard", "obstruction", "vandalism", "missing", "other"],
        description="The categories an inspection can have (comma-separated or a JSON list; "
        "each 1-50 of a-z, 0-9, _ and -).",
    )
    max_photo_mib: float = Field(
        default=20.0, gt=0, le=200, description="Largest accepted inspection photo upload."
    )
    max_photo_megapixels: float = Field(
        default=50.0,
        gt=0,
        le=500,
        description="Photos that declare more pixels than this are refused before decoding "
        "(decompression bombs).",
    )
    photo_retention_days: float | None = Field(
        default=365.0,
        gt=0,
        description="Photos of inspections resolved or rejected longer ago than this are "
        "deleted ('none': keep them).",
    )
    resident_retention_days: float | None = Field(
        default=90.0,
        gt=0,
        le=3650,
        description="This long after a round ends, its residents' comments are no longer "
        "linked to their tokens (the pseudonym and the text stay for the round's record) and "
        "their tokens expire ('none': keep the link).",
    )
    alignment_lifetime_h: float = Field(
        default=12.0,
        gt=0,
        le=168,
        description="How long an alignment (POST /api/v1/align) can be named by a live "
        "subscription; it is deleted then (a headset's tracking frame rarely outlives a "
        "working day).",
    )
    alignments_per_caller: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="The most alignments one caller keeps; a newer one replaces the oldest.",
    )

    parking_bay_silent_after_h: float = Field(
        default=12.0,
        gt=0,
        le=24 * 365,
        description="A parking bay sensor silent this long counts as unknown, never as free.",
    )
    parking_bay_stuck_after_h: float = Field(
        default=72.0,
        gt=0,
        le=24 * 365,
        description="A parking bay sensor on one value this long counts as unknown (stuck).",
    )
    parking_counter_silent_after_min: float = Field(
        default=30.0,
        gt=0,
        le=60 * 24 * 30,
        description="A car park whose counter is silent this long is unknown.",
    )
    parking_feeds: Annotated[list[ParkingFeed], NoDecode] = Field(
        default_factory=list,
        description="Car-park feeds the server polls, comma-separated: spdp:URL (an SPDP v2 "
        "index, static or dynamic document) or datex2:URL[|STATUS_URL] (a DATEX II table or "
        "combined publication, and optionally its status publication); empty: no polling.",
    )
    parking_feed_interval_s: float = Field(
        default=300.0, ge=30, description="How often each parking feed is polled (at least 30 s)."
    )
    parking_feeds_allow_private: bool = Field(
        default=False,
        description="Let polled feeds (and the documents an SPDP index points to) reach "
        "loopback, link-local and private addresses; off, only public addresses are fetched.",
    )

    @field_validator("parking_feeds", mode="before")
    @classmethod
    def _feed_list(cls, value: object) -> object:
        """``spdp:URL,datex2:URL|STATUS_URL`` from the environment (blank entries ignored)."""
        if isinstance(value, str):
            value = [item for item in value.split(",") if item.strip()]
        if isinstance(value, list | tuple):
            feeds: list[object] = []
            for number, item in enumerate(value, start=1):
                try:
                    feeds.append(parse_parking_feed(item) if isinstance(item, str) else item)
                except ValueError as exc:
                    raise ValueError(f"parking feed {number}: {exc}") from None
            return feeds
        return value

    @field_validator("extent", mode="before")
    @classmethod
    def _extent_box(cls, value: object) -> object:
        """``w,s,e,n`` or ``[w, s, e, n]`` or ``none`` from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("", "none"):
                return None
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            try:
                west, south, east, north = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError("the extent is west,south,east,north in degrees") from None
            if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
                raise ValueError(
                    "the extent needs -180 <= west < east <= 180, -90 <= south < north <= 90"
                )
            return (west, south, east, north)
        return value

    @field_validator("inspection_categories", mode="before")
    @classmethod
    def _category_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            value = [item.strip() if isinstance(item, str) else item for item in value]
            value = [item for item in value if item != ""]
            if not value:
                raise ValueError("at least one inspection category is needed")
            for item in value:
                if not isinstance(item, str) or not _CATEGORY.match(item):
                    raise ValueError(
                        f"a category is 1-50 of a-z, 0-9, _ and -, got {str(item)[:60]!r}"
                    )
        return value

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the metrics token must be at least 16 characters long")
        return value

    @field_validator("audit_key", mode="after")
    @classmethod
    def _key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the audit key must be at least 32 characters long")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        """``a,b`` or ``["a", "b"]`` from the environment; each ``*`` or scheme://host[:port]."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            # Browsers send origins in lower case and without a trailing slash.
            value = [
                item.strip().rstrip("/").lower() if isinstance(item, str) else item
                for item in value
            ]
            value = [item for item in value if item != ""]
            for item in value:
                if isinstance(item, str) and item != "*" and not _ORIGIN.match(item):
                    raise ValueError(
                        f"an origin is * or scheme://host[:port] without a path, got {item[:100]!r}"
                    )
        return value

    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer whose bearer JWTs are accepted beside our tokens "
        "(its `iss`, e.g. https://idp.example.nl/realms/gemeente); none: our tokens only.",
    )
    oidc_audience: str | None = Field(
        default=None, description="The `aud` those JWTs must carry (required with an issuer)."
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="The issuer's JWKS URL; default: `jwks_uri` of "
        "<issuer>/.well-known/openid-configuration, read once when first needed.",
    )
    oidc_role_claim: str = Field(
        default="roles",
        description="The claim that holds a JWT's roles (dotted path, e.g. "
        "realm_access.roles; a string or a list of strings).",
    )
    oidc_roles: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object from claim value to arserver role, e.g. {"gis-staff": "gis"}; '
        "of several, the most capable role wins; none mapped: refused.",
    )
    oidc_leeway_s: float = Field(
        default=60.0, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    oidc_jwks_refetch_s: float = Field(
        default=60.0,
        gt=0,
        description="Shortest time between two JWKS fetches (an unknown key id fetches again "
        "at most this often).",
    )

    @property
    def raw_retention(self) -> timedelta | None:
        return timedelta(days=self.raw_retention_days) if self.raw_retention_days else None

    @property
    def aggregate_retention(self) -> timedelta | None:
        days = self.aggregate_retention_days
        return timedelta(days=days) if days else None

    @property
    def mobile_retention(self) -> timedelta | None:
        days = self.mobile_retention_days
        return timedelta(days=days) if days else None

    @property
    def audit_retention(self) -> timedelta | None:
        days = self.audit_retention_days
        return timedelta(days=days) if days else None

    @property
    def photo_retention(self) -> timedelta | None:
        days = self.photo_retention_days
        return timedelta(days=days) if days else None

    @property
    def resident_retention(self) -> timedelta | None:
        days = self.resident_retention_days
        return timedelta(days=days) if days else None

    @property
    def alignment_lifetime(self) -> timedelta:
        return timedelta(hours=self.alignment_lifetime_h)

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
