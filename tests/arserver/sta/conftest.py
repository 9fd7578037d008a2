"""One seeded SensorThings service per backend (SQLite and PostgreSQL) for the whole session:
the STA is read-only, so every test reads the same data and none changes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.conftest import _database, _url_of
from tests.arserver.sta.seed import Sta, seed


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def sta(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sta]:
    folder = tmp_path_factory.mktemp(f"sta-{request.param}")
    with ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            template = request.getfixturevalue("postgres_template")
            url = _url_of(stack.enter_context(_database(template=template)))
        settings = Settings(
            data_dir=folder / "data", database_url=url, embedded_worker=False,
            raw_retention_days=None,  # the seed applies retention itself, at its own "now"
        )  # fmt: skip
        client = stack.enter_context(TestClient(create_app(settings)))
        seed(client)
        yield Sta(client)
