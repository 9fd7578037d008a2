"""Databases for service tests: SQLite in a temporary folder, and a fresh PostgreSQL database
(with PostGIS, copied from one migrated once per session) on the real server at
127.0.0.1:5432 for each test that asks for it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from arserver.app import create_app
from arserver.config import Settings
from arserver.store.database import open_database

POSTGRES_ADMIN = os.environ.get(
    "ARSERVER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def _admin() -> Any:
    """An autocommit connection to the PostgreSQL server's admin database."""
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable(str(exc).strip().splitlines()[0])


def _url_of(name: str) -> str:
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def _database(template: str | None = None) -> Iterator[str]:
    """A new database (a copy of ``template``, or empty with PostGIS), dropped afterwards."""
    import psycopg

    name = f"arserver_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        copy = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            if template is None:
                with psycopg.connect(_url_of(name), autocommit=True) as db:
                    try:
                        db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                    except psycopg.Error as exc:
                        _unavailable(f"PostGIS is not installed ({exc})".strip())
            yield name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with PostGIS, migrated to the newest schema once per test session (so the
    migrations run on PostgreSQL in every session); each test gets a copy of it."""
    with _database() as name:
        folder = tmp_path_factory.mktemp("postgres-template")
        open_database(Settings(data_dir=folder, database_url=_url_of(name))).dispose()
        yield name


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """The URL of a new database of its own, migrated to the newest schema and empty
    otherwise; dropped afterwards."""
    with _database(template=postgres_template) as name:
        yield _url_of(name)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """The URL of a new database with nothing in it but PostGIS; dropped afterwards."""
    with _database() as name:
        yield _url_of(name)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The migrated database for ``settings``; its connections are closed afterwards."""
    opened = open_database(settings)
    yield opened
    opened.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The application for ``settings`` with its lifespan running (database opened)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


#: The backends a test that uses ``settings`` runs on, unless its module names fewer in
#: ``BACKENDS`` (for behaviour above the database: rate limits, sign-in, headers) or the test
#: parametrises ``settings`` itself.
ALL_BACKENDS = ("sqlite", "postgresql")
#: The backends of the tile-serving and job tests: SQLite with tiles on local disk (the
#: embedded default) and PostgreSQL with tiles in S3 (scaled out); PostgreSQL with local tiles
#: is what every other module runs on.
TILE_BACKENDS = ("sqlite", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "settings" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if "settings" in (
            [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        ):
            return
    backends = getattr(metafunc.module, "BACKENDS", ALL_BACKENDS)
    metafunc.parametrize("settings", backends, indirect=True)


#: The S3-compatible object storage of the tile tests (SeaweedFS, started by `make services`).
S3_ENDPOINT = os.environ.get("ARSERVER_TEST_S3", "http://127.0.0.1:8333")
S3_KEY = os.environ.get("ARSERVER_TEST_S3_KEY", "arserver-test")
S3_SECRET = os.environ.get("ARSERVER_TEST_S3_SECRET", "arserver-test-secret")
S3_BUCKET = "arserver-test"


def s3_settings(data_dir: Path, **values: Any) -> Settings:
    """Settings with tiles under a prefix of their own in the test bucket."""
    return Settings(
        data_dir=data_dir, tiles_url=f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}",
        s3_endpoint_url=S3_ENDPOINT, s3_region="us-east-1", s3_access_key_id=S3_KEY,
        s3_secret_access_key=S3_SECRET, **values,
    )  # fmt: skip


@pytest.fixture(scope="session")
def s3_bucket() -> str:
    """The test bucket, made by the first write to it (SeaweedFS creates a bucket its admin
    writes to), once the store answers."""
    import time

    import obstore
    from obstore.store import S3Store

    store = S3Store(
        S3_BUCKET, endpoint=S3_ENDPOINT, region="us-east-1", access_key_id=S3_KEY,
        secret_access_key=S3_SECRET, client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            obstore.put(store, ".made-by-the-tests", b"")
            return S3_BUCKET
        except Exception as exc:
            if time.monotonic() > deadline:
                reason = str(exc).splitlines()[0][:200]
                if os.environ.get("CI") == "true":
                    pytest.fail(f"S3 object storage is required under CI: {reason}")
                pytest.skip(f"S3 object storage not available at {S3_ENDPOINT}: {reason}")
            time.sleep(0.5)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Service settings on each backend: the same tests run against SQLite and PostgreSQL, and
    the tile tests with tiles in S3 object storage too (``s3``: PostgreSQL with its tiles in
    S3, the pairing of a scaled-out deployment)."""
    # Tests drive conversions themselves (Worker.run_once); one test covers the embedded worker.
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data", embedded_worker=False)
    elif request.param == "s3":
        request.getfixturevalue("s3_bucket")
        url = request.getfixturevalue("postgres_url")
        chosen = s3_settings(tmp_path / "data", embedded_worker=False, database_url=url)
        yield chosen
        from arserver.store.tilestore import open_tile_store

        store = open_tile_store(chosen)
        for asset_id in store.assets():  # the test's prefix goes with it
            store.remove(asset_id)
    else:
        url = request.getfixturevalue("postgres_url")
        yield Settings(data_dir=tmp_path / "data", database_url=url, embedded_worker=False)


REDIS_TEST_URL = os.environ.get("ARSERVER_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    """The real Redis, database 15, emptied for the test."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {exc}")
        pytest.skip(f"Redis not available: {exc}")
    finally:
        client.close()
    return REDIS_TEST_URL
