"""``/metrics`` needs an admin token or the scrape secret ``ARSERVER_METRICS_TOKEN``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.support import auth

#: SQLite only: who may read the metrics does not depend on the database.
BACKENDS = ("sqlite",)

SCRAPE = "scrape-secret-of-prometheus-0123"


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data", embedded_worker=False, metrics_token=SecretStr(SCRAPE)
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_admin_token_reads_the_metrics(client: TestClient) -> None:
    client.get("/healthz")
    reply = client.get("/metrics", headers=auth(client, "admin"))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert 'arserver_http_requests_total{method="GET",route="/healthz",status="200"}' in reply.text


def test_other_roles_and_anonymous_callers_do_not(client: TestClient) -> None:
    for role in ("gis", "viewer", "ingest"):
        assert client.get("/metrics", headers=auth(client, role)).status_code == 403
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert "arserver_" not in anonymous.text


def test_prometheus_reads_them_with_the_scrape_secret(scraped: TestClient) -> None:
    reply = scraped.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert reply.status_code == 200
    assert "arserver_http_requests_total" in reply.text
    assert scraped.get(f"/metrics?access_token={SCRAPE}").status_code == 200


def test_a_wrong_scrape_secret_is_refused(scraped: TestClient) -> None:
    for wrong in (SCRAPE[:-1], SCRAPE + "x", SCRAPE.upper(), ""):
        headers = {"Authorization": f"Bearer {wrong}"}
        assert scraped.get("/metrics", headers=headers).status_code == 401, wrong


def test_the_scrape_secret_opens_nothing_else(scraped: TestClient) -> None:
    headers = {"Authorization": f"Bearer {SCRAPE}"}
    assert scraped.get("/api/v1/alerts", headers=headers).status_code == 401
    assert scraped.get("/api/v1/tokens", headers=headers).status_code == 401


def test_without_a_scrape_secret_no_bearer_text_opens_the_metrics(client: TestClient) -> None:
    assert client.app.state.settings.metrics_token is None  # type: ignore[attr-defined]
    for text in ("none", "None", "null"):
        assert (
            client.get("/metrics", headers={"Authorization": f"Bearer {text}"}).status_code == 401
        )


def test_a_short_scrape_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, metrics_token=SecretStr("short-secret"))
    assert "at least 16 characters" in str(refused.value)
    assert "short-secret" not in str(refused.value)


def request_series(text: str) -> list[str]:
    """The ``arserver_http_requests_total`` series of a metrics page."""
    return [line for line in text.splitlines() if line.startswith("arserver_http_requests_total{")]


def test_invented_methods_and_random_paths_add_no_series(client: TestClient) -> None:
    headers = auth(client, "admin")
    before = len(request_series(client.get("/metrics", headers=headers).text))
    for n in range(50):
        client.request(f"BREW{n}", "/healthz")
        client.request(f"BREW{n}", f"/made/up/{n}")
        client.get(f"/no/such/path/{n}")
        client.get(f"/api/v1/sensors/s{n}", headers=headers)
    text = client.get("/metrics", headers=headers).text
    series = request_series(text)
    assert not any("BREW" in line or "/made/up" in line or "/no/such" in line for line in series)
    assert not any("/api/v1/sensors/s" in line for line in text.splitlines())
    assert 'method="other",route="unmatched",status="404"' in text
    assert 'route="/api/v1/sensors/{sensor_id}"' in text
    assert len(series) - before <= 6  # a few (method, route, status), not 200
