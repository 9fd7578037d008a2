"""The sensor register's refusals, checked before anything is stored (so on one backend): the
personal-data rule and fields out of their range or form."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.arserver.api.test_register import CAMERA, register

BACKENDS = ("sqlite",)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"privacy_statement": None}, "privacy_statement"),
        ({"legal_ground": None}, "legal_ground"),
        ({"privacy_statement": None, "legal_ground": None}, "legal_ground"),
    ],
)
def test_personal_data_needs_a_privacy_statement_and_a_legal_ground(
    client: TestClient, change: dict[str, Any], named: str
) -> None:
    refused = register(client, {**CAMERA, **change})
    assert refused.status_code == 422
    assert named in refused.text
    assert "personal data" in refused.text


@pytest.mark.parametrize(
    "change",
    [
        {"legal_ground": "because"},
        {"kvk": "1234"},
        {"privacy_statement": "javascript:alert(1)"},
        {"themes": ["x" * 51]},
        {"removed_at": "2026-02-01T00:00:00Z"},  # before placed_at
        {"area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
    ],
)
def test_bad_register_fields_are_refused(client: TestClient, change: dict[str, Any]) -> None:
    assert register(client, {**CAMERA, **change}).status_code == 422
