"""Alembic migrations for SQLite and PostgreSQL; run by :func:`arserver.store.database.migrate`."""
