"""Security headers on every answer; API answers are never cached; tiles keep their caching."""

from __future__ import annotations

from fastapi.testclient import TestClient

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


def test_the_api_docs_may_load_their_scripts(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_tiles_keep_their_own_caching(client: TestClient) -> None:
    scene = client.get("/tiles/scene/none/tileset.json")
    assert scene.status_code == 200
    assert scene.headers["cache-control"] == "private, no-cache"
    assert scene.headers["x-content-type-options"] == "nosniff"
