"""The write path for observations: check, store, run the rules (one transaction, committed
before the reply), count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from arserver.ingest.validation import Rejection, check
from arserver.insight.rules import AlertChange, evaluate
from arserver.store.sensors import count_causes, store_readings, streams_of


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicate: int
    rejected: list[Rejection]
    alerts: list[AlertChange] = field(default_factory=list)


def ingest(engine: Engine, items: list[Any], now: datetime | None = None) -> IngestResult:
    """Store a batch in one transaction; duplicates (same sensor, kind and time) are counted, not
    stored again. Returns after the commit, so an acknowledged reading survives a crash."""
    moment = now or datetime.now(UTC)
    with engine.begin() as connection:
        wanted = {
            i["sensor"] for i in items if isinstance(i, dict) and isinstance(i.get("sensor"), str)
        }
        readings, rejected = check(items, streams_of(connection, wanted), moment)
        stored = store_readings(connection, readings)
        changes = evaluate(connection, stored)  # rules see the batch in the same transaction
        causes = Counter(r.cause for r in rejected)
        causes["accepted"] += len(stored)
        causes["duplicate"] += len(readings) - len(stored)
        count_causes(connection, +causes)
    return IngestResult(len(stored), len(readings) - len(stored), rejected, changes)
