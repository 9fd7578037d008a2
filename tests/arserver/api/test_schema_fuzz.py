"""Property-based checks of the whole HTTP API against its own OpenAPI schema (schemathesis).

Every operation is called with generated requests, valid and invalid, as an admin, as a
reader, with an invalid token and with none. Every answer must be a non-5xx whose status,
content type, headers and body the schema declares. Half of the generated requests name things
that exist (a converted asset, a sensor with observations and an open alert, a token) instead of
random ids, so that the answers with data are checked too. Bounded (a few dozen requests per
operation and identity) so that it fits the suite; the server is one in-process application on
SQLite, shared by the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from arserver.app import create_app
from arserver.config import Settings
from arserver.security.tokens import create_token
from tests.arserver.support import run_jobs, upload

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
IDENTITIES = ["admin", "viewer", "invalid", "anonymous"]
#: Generated requests per operation and identity.
EXAMPLES = 15
SAMPLE = Path(__file__).parents[3] / "assets" / "lamp_post.glb"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """One application with its lifespan running, and the ids of what it holds by path
    parameter name: a converted asset and one of its files, a sensor with observations (some
    with positions), an open alert, a token."""
    settings_ = Settings(data_dir=Path(tmp_path_factory.mktemp("fuzz")) / "data")
    app = create_app(settings_.model_copy(update={"embedded_worker": False}))
    with TestClient(app) as client:
        gis = {"Authorization": f"Bearer {create_token(app.state.engine, 'gis')[0]}"}
        asset = upload(client, SAMPLE, name="lamp post", origin="4.9,52.4,0").json()["id"]
        run_jobs(client, settings_)
        sensor = {"id": "s1", "name": "S1", "kind": "no2", "unit": "ug/m3", "location": [4.9, 52.4]}
        assert client.post("/api/v1/sensors", json=sensor, headers=gis).status_code == 201
        rule = {"name": "NO2 norm", "kind": "no2", "threshold": 40, "reset": 35}
        assert client.post("/api/v1/rules", json=rule, headers=gis).status_code == 201
        now = datetime.now(UTC)
        items: list[dict[str, Any]] = [
            {"sensor": "s1", "time": (now - timedelta(minutes=k)).isoformat(), "value": 50.0 + k}
            for k in range(5)
        ]
        items.append({**items[0], "time": now.isoformat(), "position": [4.9, 52.4, 1.0]})
        reply = client.post("/api/v1/observations", json={"observations": items}, headers=gis)
        assert reply.status_code == 200, reply.text
        alerts = client.get("/api/v1/alerts", headers=gis).json()["alerts"]
        assert alerts, "the seeded readings should have opened an alert"
        ids = {
            "asset_id": asset,
            "path": "tileset.json",
            "layer": "default",
            "sensor_id": "s1",
            "alert_id": str(alerts[0]["id"]),
            "token_id": create_token(app.state.engine, "viewer", "to revoke")[1].id,
        }
        yield app, ids


@pytest.fixture(scope="module")
def secrets_by_role(fuzzed: tuple[FastAPI, dict[str, str]]) -> dict[str, str]:
    app, _ = fuzzed
    return {
        role: create_token(app.state.engine, role, f"fuzz {role}")[0]
        for role in ("admin", "viewer")
    }


def headers_for(identity: str, secrets_by_role: dict[str, str]) -> dict[str, str]:
    if identity == "anonymous":
        return {}
    if identity == "invalid":
        return {"Authorization": "Bearer ars_not-a-token-of-this-server"}
    return {"Authorization": f"Bearer {secrets_by_role[identity]}"}


def failures_of(
    operation: APIOperation, headers: dict[str, str], existing: dict[str, str]
) -> list[str]:
    """The distinct failures of the checks over generated requests to ``operation``; with
    ``existing`` ids in the path for about half of them."""
    found: dict[str, str] = {}

    @given(case=operation.as_strategy(), name_existing=st.booleans())
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def call(case: schemathesis.Case, name_existing: bool) -> None:
        case.headers = {
            **{k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"},
            **headers,
        }
        if isinstance(case.query, dict):
            case.query.pop("access_token", None)
        if name_existing and case.path_parameters:
            case.path_parameters = {
                name: existing.get(name, value) for name, value in case.path_parameters.items()
            }
        try:
            case.call_and_validate(checks=CHECKS)
        except (AssertionError, Failure, FailureGroup) as exc:
            first = str(exc).strip().splitlines()
            found.setdefault(first[0] if first else type(exc).__name__, str(exc)[:2000])

    call()
    return [f"{operation.method.upper()} {operation.path}: {text}" for text in found.values()]


@pytest.mark.slow
@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_answer_is_declared_and_none_is_a_server_error(
    fuzzed: tuple[FastAPI, dict[str, str]], secrets_by_role: dict[str, str], identity: str
) -> None:
    app, existing = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = headers_for(identity, secrets_by_role)
    failures: list[str] = []
    for result in schema.get_all_operations():
        failures.extend(failures_of(result.ok(), headers, existing))
    assert not failures, "\n\n".join(failures)
