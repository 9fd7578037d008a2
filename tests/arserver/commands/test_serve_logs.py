"""What a real ``arserver serve`` writes to its logs: every request is there (path, status, the
client's network), but no token secret, no session id and no position of the people using it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from arserver.commands.server import log_config, uvicorn_config
from arserver.config import Settings
from arserver.security.redaction import LogRedactionFilter
from tests.arserver.processes import ServerProcess
from tests.arserver.support import tokens_for
from tests.support import wait_until

WRONG = "ars_this-is-not-a-token-but-looks-like-one-0123456789"
LON, LAT = "4.7538", "52.3166"
ACCESS_LINE = re.compile(r'^INFO: +(\S+) - "(GET|POST) (\S+) HTTP/1\.1" (\d{3})', re.MULTILINE)
WEBSOCKET_LINE = re.compile(r'^INFO: +(\S+) - "WebSocket (\S+)" (\S+)', re.MULTILINE)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str]]:
    """A real ``arserver serve`` (its stdout and stderr in one file), a viewer token to send
    as ``?access_token=`` and a gis token to send as ``Authorization: Bearer``."""
    settings = Settings(data_dir=tmp_path / "data")
    viewer, gis = tokens_for(settings, "viewer", "gis")
    server = ServerProcess({"ARSERVER_DATA_DIR": str(settings.data_dir)}, tmp_path / "serve.log")
    server.start()
    try:
        yield server, viewer, gis
    finally:
        server.stop()


def test_the_logs_hold_requests_but_no_secret_and_no_position(
    served: tuple[ServerProcess, str, str],
) -> None:
    server, viewer, gis = served
    ws_url = server.url.replace("http://", "ws://") + "/api/v1/live"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get(f"/api/v1/live/stats?access_token={viewer}").status_code == 200
        reply = http.get("/api/v1/live/stats", headers={"Authorization": f"Bearer {gis}"})
        assert reply.status_code == 200
        latest = f"/api/v1/observations/latest?center={LON},{LAT}&radius_m=200"
        assert http.get(f"{latest}&access_token={viewer}").status_code == 200
        bbox = f"/api/v1/observations/latest?bbox={LON}%2C{LAT}%2C4.7600%2C52.3200"
        assert http.get(bbox, headers={"Authorization": f"Bearer {gis}"}).status_code == 200
        # refused: a wrong token in the query, in the header, and on a write
        assert http.get(f"/api/v1/live/stats?access_token={WRONG}").status_code == 401
        reply = http.get("/api/v1/live/stats", headers={"Authorization": f"Bearer {WRONG}"})
        assert reply.status_code == 401
        reply = http.post("/api/v1/sensors", json={}, headers={"Authorization": f"Bearer {WRONG}"})
        assert reply.status_code == 401
        # rejected for its position, which the error answer may echo but the log may not
        bad = http.get(
            f"/api/v1/observations/latest?center={LON},x&radius_m=1",
            headers={"Authorization": f"Bearer {gis}"},
        )
        assert bad.status_code in (400, 422), bad.text

    with connect(f"{ws_url}?access_token={viewer}&center={LON},{LAT}", open_timeout=10) as ws:
        welcome = json.loads(ws.recv(timeout=10))
    assert welcome["type"] == "welcome"
    session = str(welcome["session"])
    resume = f"{ws_url}?access_token={viewer}&session={session}&last_seq=0"
    with connect(resume, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ws_url}?access_token={WRONG}", open_timeout=10)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(ws_url, additional_headers={"Authorization": f"Bearer {WRONG}"}, open_timeout=10)

    # every line the server wrote, once the last handshake is in it; then all it writes on exit
    wait_until(
        lambda: len(WEBSOCKET_LINE.findall(server.log.read_text("utf-8"))) >= 4,
        what="the WebSocket handshakes in the log",
    )
    server.stop()
    log = server.log.read_text("utf-8")

    for secret in (viewer, gis, WRONG, session, LON, LAT):
        assert secret not in log, f"{secret!r} is in the log:\n{log}"
    assert "Bearer" not in log
    assert "uthorization" not in log

    # the requests are all still there, with their path and status, from a network
    access = [(client, f"{method} {target}", int(status)) for client, method, target, status in
              ACCESS_LINE.findall(log)]  # fmt: skip
    assert {client for client, _, _ in access} == {"127.0.0.0/24"}, access
    requests = [(line, status) for _, line, status in access]
    assert ("GET /api/v1/live/stats?access_token=[redacted]", 200) in requests
    assert ("GET /api/v1/live/stats", 200) in requests
    assert (
        "GET /api/v1/observations/latest?center=[removed]&radius_m=[removed]"
        "&access_token=[redacted]",
        200,
    ) in requests
    assert ("GET /api/v1/observations/latest?bbox=[removed]", 200) in requests
    assert ("GET /api/v1/live/stats?access_token=[redacted]", 401) in requests
    assert ("GET /api/v1/live/stats", 401) in requests
    assert ("POST /api/v1/sensors", 401) in requests
    wrong_center = "GET /api/v1/observations/latest?center=[removed]&radius_m=[removed]"
    assert (wrong_center, bad.status_code) in requests

    handshakes = [(client, target, outcome) for client, target, outcome in
                  WEBSOCKET_LINE.findall(log)]  # fmt: skip
    assert {client for client, _, _ in handshakes} == {"127.0.0.0/24"}, handshakes
    assert [(target, outcome) for _, target, outcome in handshakes] == [
        ("/api/v1/live?access_token=[redacted]&center=[removed]", "[accepted]"),
        ("/api/v1/live?access_token=[redacted]&session=[redacted]&last_seq=0", "[accepted]"),
        ("/api/v1/live?access_token=[redacted]", "403"),
        ("/api/v1/live", "403"),
    ]


def test_the_redaction_is_on_uvicorns_handlers_and_loggers() -> None:
    import logging

    from fastapi import FastAPI

    config = log_config()
    assert all(handler["filters"] == ["redact"] for handler in config["handlers"].values())
    assert config["filters"]["redact"]["()"] is LogRedactionFilter
    for _ in range(3):  # each server configures logging again; the loggers get one filter each
        uvicorn_config(FastAPI(), "127.0.0.1", 0)
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        assert sum(isinstance(f, LogRedactionFilter) for f in logger.filters) == 1
        assert all(
            any(isinstance(f, LogRedactionFilter) for f in handler.filters)
            for handler in logger.handlers
        )
