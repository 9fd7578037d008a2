"""Every statement of one SensorThings request runs under a time budget on both backends: a
query still running when it is spent is stopped, and the request fails with a clear 503
message instead of holding the database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from arserver.errors import BusyError
from arserver.store.sta.reader import reading

ENDLESS = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < 1000000000) SELECT count(*) FROM c",
    "postgresql": "SELECT count(*) FROM generate_series(1, 1000000000)",
}


def test_a_query_past_its_budget_is_stopped(engine: Engine) -> None:
    with (
        pytest.raises(BusyError, match=r"longer than 0\.05 s"),
        reading(engine, budget_s=0.05) as c,
    ):
        c.execute(text(ENDLESS[engine.dialect.name])).scalar_one()
    with reading(engine) as connection:  # the connection is fine afterwards
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
