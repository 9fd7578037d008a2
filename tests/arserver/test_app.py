"""The application's one error table: statuses by exception class, and 422 answers that name
the problem without sending a large input back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from arserver.app import STATUS_BY_ERROR, status_of
from arserver.errors import ArserverError, ConflictError, InputError, NotFoundError, TooLargeError
from arserver.ingest.lorawan import UplinkError
from arserver.live.area import AreaError
from arserver.live.frames import FrameError
from arserver.live.protocol import ProtocolError
from arserver.store.database import DatabaseError
from tests.arserver.support import auth
from tiles.errors import TilesError, UnknownCrsError


class _UnlistedError(ConflictError):
    """A subclass nobody put in the table."""


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TooLargeError("big"), 413),  # before its base InputError, whatever the table's order
        (InputError("bad"), 422),
        (NotFoundError("gone"), 404),
        (_UnlistedError("twice"), 409),
        (UnknownCrsError("EPSG:1"), 422),
        (DatabaseError("down"), 503),
        (ArserverError("other"), 500),
        (ValueError("not ours"), 500),
    ],
)
def test_each_error_takes_the_status_of_its_nearest_listed_class(
    error: Exception, status: int
) -> None:
    assert status_of(error) == status


@pytest.mark.parametrize("kind", [ProtocolError, AreaError, FrameError, UplinkError])
def test_every_package_error_derives_from_the_service_root(kind: type[Exception]) -> None:
    assert issubclass(kind, ArserverError)


def test_the_table_lists_only_the_roots_and_their_descendants() -> None:
    for kind in STATUS_BY_ERROR:
        assert issubclass(kind, ArserverError | TilesError), kind


def test_a_batch_over_the_limit_is_refused_without_being_echoed(client: TestClient) -> None:
    item = {"sensor": "s" * 90, "time": "2026-05-01T12:00:00Z", "value": 1.0}
    batch = {"observations": [item] * 10_001}
    response = client.post("/api/v1/observations", json=batch, headers=auth(client, "ingest"))
    assert response.status_code == 422
    assert len(response.content) < 2_000, len(response.content)
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "observations"]
    assert "10000" in problem["msg"]
    assert "input" not in problem


def test_many_problems_are_summarised(client: TestClient) -> None:
    sensor = {"id": "x", "name": "x", "datastreams": [{"kind": "BAD KIND", "unit": ""}] * 50}
    response = client.post("/api/v1/sensors", json=sensor, headers=auth(client, "gis"))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 21
    assert detail[-1]["type"] == "more"
    assert "more problems" in detail[-1]["msg"]
    assert detail[0]["input"] == "BAD KIND"  # a short value is still shown
