"""Security headers on every answer; API answers are never cached; tiles keep their caching;
CORS admits the configured origins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arserver.api.headers import STRICT_POLICY
from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.support import auth


def test_api_answers_carry_security_headers_and_are_not_cached(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/assets", headers=auth(client, "viewer")),
        client.get("/api/v1/alerts"),  # a refusal too
        client.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    assert client.get("/api/v1/alerts").headers["cache-control"] == "private, no-store"


def test_every_answer_without_a_policy_of_its_own_gets_the_strict_one(client: TestClient) -> None:
    for path in ("/openapi.json", "/no-such-page", "/healthz"):
        assert client.get(path).headers["content-security-policy"] == STRICT_POLICY, path


def test_the_api_docs_carry_their_own_policy(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; script-src 'self' 'sha256-")
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_tiles_keep_their_own_caching(client: TestClient) -> None:
    scene = client.get("/tiles/scene/none/tileset.json")
    assert scene.status_code == 200
    assert scene.headers["cache-control"] == "private, no-cache"
    assert scene.headers["x-content-type-options"] == "nosniff"


PORTAL = "https://kaart.gemeente.example"


@pytest.fixture
def portal_only(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", embedded_worker=False, cors_origins=[PORTAL])
    with TestClient(create_app(settings)) as client:
        yield client


def preflight(client: TestClient, origin: str) -> Any:
    return client.options(
        "/api/v1/assets",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_any_origin_may_call_the_api_by_default(client: TestClient) -> None:
    reply = preflight(client, "https://anywhere.example")
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in reply.headers


def test_a_configured_origin_is_allowed_and_another_is_not(portal_only: TestClient) -> None:
    allowed = preflight(portal_only, PORTAL)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PORTAL
    refused = preflight(portal_only, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = portal_only.get("/api/v1/assets", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    answered = portal_only.get("/api/v1/assets", headers={"Origin": PORTAL})
    assert answered.headers["access-control-allow-origin"] == PORTAL


def test_clients_may_read_retry_after(client: TestClient) -> None:
    reply = client.get("/healthz", headers={"Origin": "https://anywhere.example"})
    assert "retry-after" in reply.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    ("given", "origins"),
    [
        ("*", ["*"]),
        (
            "https://a.example, https://B.example:8443/",
            ["https://a.example", "https://b.example:8443"],
        ),
        ('["https://a.example"]', ["https://a.example"]),
    ],
)
def test_cors_origins_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, given: str, origins: list[str]
) -> None:
    monkeypatch.setenv("ARSERVER_CORS_ORIGINS", given)
    assert Settings().cors_origins == origins


@pytest.mark.parametrize("given", ["https://a.example/path", "a.example", "https://a.example?x"])
def test_an_origin_with_a_path_or_without_a_scheme_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("ARSERVER_CORS_ORIGINS", given)
    with pytest.raises(ValueError, match="scheme://host"):
        Settings()
