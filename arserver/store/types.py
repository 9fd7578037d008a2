"""Column types that make both backends read back the same Python values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back timezone-aware in UTC.

    PostgreSQL keeps ``timestamptz``; SQLite keeps the UTC wall time as text with no zone (which
    sorts and compares as time). Values to store must be timezone-aware: a naive datetime has no
    meaning here and is refused, so that no code path can store local time by mistake.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"a stored time must be a timezone-aware datetime, got {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:  # SQLite: the UTC wall time that was stored
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
