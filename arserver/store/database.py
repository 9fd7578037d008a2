"""Opening the database: SQLite (WAL) in the data directory by default, PostgreSQL + PostGIS
with ``ARSERVER_DATABASE_URL``; both migrated to the newest schema on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from arserver.config import Settings
from arserver.errors import ArserverError
from arserver.store.audit import bind_key as bind_audit_key
from arserver.store.spatial import install_sqlite_functions

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseError(ArserverError):
    """The database cannot be reached or brought to the current schema."""


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers never block the writer; FULL: an acknowledged commit survives power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    install_sqlite_functions(connection)  # the spatial functions PostGIS has built in


def create_database_engine(settings: Settings) -> Engine:
    """An engine for the configured database (not yet migrated; see :func:`open_database`)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe for concurrent starts on
    PostgreSQL thanks to an advisory lock)."""
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot reach the database at {engine.url!r}: {reason}") from exc
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot migrate the database at {engine.url!r}: {exc}") from exc


def ping(engine: Engine) -> None:
    """One round trip to the database; :class:`sqlalchemy.exc.SQLAlchemyError` if it fails."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def schema_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def open_database(settings: Settings) -> Engine:
    """The engine for ``settings``, with the schema created or migrated: every command calls
    this first, so ``arserver token create`` works before the first ``serve``. The engine
    carries ``settings.audit_key`` for the audit log (:func:`arserver.store.audit.bind_key`)."""
    engine = create_database_engine(settings)
    migrate(engine)
    key = settings.audit_key
    bind_audit_key(engine, key.get_secret_value() if key is not None else None)
    return engine
