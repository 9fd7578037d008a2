"""Alembic environment: always called with a live connection by ``database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from arserver.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Several servers and workers may start at once: one migrates, the others wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(7415)"))
    context.run_migrations()
