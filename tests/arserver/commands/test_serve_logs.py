"""What a real ``arserver serve`` writes to its logs: every request is there (path, status, the
client's network), but no token secret, no password, no session id and no position of the
people using it; and every log record of the service goes through the same redaction."""

from __future__ import annotations

import json
import logging
import re
import subprocess
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
from tests.arserver.support import arserver_command, readings, tokens_for
from tests.support import free_port, wait_until

WRONG = "ars_this-is-not-a-token-but-looks-like-one-0123456789"
LON, LAT = "4.7538", "52.3166"
#: Where a mobile sensor was (in a write) and where the live subscriber stands and moves to.
TRACK = ("4.7561234", "52.3181234")
LIVE = ("4.7549876", "52.3170123")
MOVED = ("4.7552468", "52.3175791")
BROKER_PASSWORD = "mqtt-broker-password-8c1d"
ACCESS_LINE = re.compile(r'^INFO: +(\S+) - "(GET|POST) (\S+) HTTP/1\.1" (\d{3})', re.MULTILINE)
WEBSOCKET_LINE = re.compile(r'^INFO: +(\S+) - "WebSocket (\S+)" (\S+)', re.MULTILINE)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str, str]]:
    """A real ``arserver serve`` (its stdout and stderr in one file) whose MQTT broker (with a
    password) does not answer, a viewer token to send as ``?access_token=``, a gis token to
    send as ``Authorization: Bearer`` and an ingest token to write with."""
    settings = Settings(data_dir=tmp_path / "data")
    viewer, gis, ingest = tokens_for(settings, "viewer", "gis", "ingest")
    env = {
        "ARSERVER_DATA_DIR": str(settings.data_dir),
        "ARSERVER_MQTT_URL": f"mqtt://ingest:{BROKER_PASSWORD}@127.0.0.1:{free_port()}",
    }
    server = ServerProcess(env, tmp_path / "serve.log")
    server.start()
    try:
        yield server, viewer, gis, ingest
    finally:
        server.stop()


def test_the_logs_hold_requests_but_no_secret_and_no_position(
    served: tuple[ServerProcess, str, str, str],
) -> None:
    server, viewer, gis, ingest = served
    ws_url = server.url.replace("http://", "ws://") + "/api/v1/live"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # writes: a mobile sensor and where it was, with the token in the header and the query
        sensor = {"id": "bike-1", "name": "Bike", "kind": "pm25", "unit": "ug/m3"}
        reply = http.post(
            "/api/v1/sensors", json=sensor, headers={"Authorization": f"Bearer {gis}"}
        )
        assert reply.status_code == 201, reply.text
        [item] = readings(("bike-1", 12.5))
        item["position"] = [float(TRACK[0]), float(TRACK[1])]
        reply = http.post(
            f"/api/v1/observations?access_token={ingest}", json={"observations": [item]}
        )
        assert reply.json()["accepted"] == 1, reply.text
        # reads of it with the token in the query
        for path in ("observations", "trajectory"):
            reply = http.get(f"/api/v1/sensors/bike-1/{path}?access_token={viewer}")
            assert reply.status_code == 200, reply.text
            assert TRACK[0] in reply.text
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
        here = [float(LIVE[0]), float(LIVE[1])]
        subscribe = {
            "type": "subscribe", "id": "here", "area": {"center": here, "radius_m": 300},
            "layers": ["sensors"], "frame": {"type": "enu", "origin": [*here, 43.5]},
        }  # fmt: skip
        ws.send(json.dumps(subscribe))
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        moved = [float(MOVED[0]), float(MOVED[1])]
        ws.send(json.dumps({"type": "move", "id": "here", "center": moved}))
        last_seq = json.loads(ws.recv(timeout=10))["seq"]
    session = str(welcome["session"])
    resume = f"{ws_url}?access_token={viewer}&session={session}&last_seq={last_seq}"
    with connect(resume, open_timeout=10) as ws:
        resumed = json.loads(ws.recv(timeout=10))
        assert (resumed["type"], resumed["recovered"]) == ("welcome", True)
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

    used = (viewer, gis, ingest, WRONG, session, BROKER_PASSWORD, LON, LAT, *TRACK, *LIVE, *MOVED)
    for secret in used:
        assert secret not in log, f"{secret!r} is in the log:\n{log}"
    for value in (LON, LAT, *TRACK, *LIVE, *MOVED):  # not even to 10 m
        assert value[: value.index(".") + 5] not in log, value
    assert "Bearer" not in log
    assert "uthorization" not in log

    # the requests are all still there, with their path and status, from a network
    access = [(client, f"{method} {target}", int(status)) for client, method, target, status in
              ACCESS_LINE.findall(log)]  # fmt: skip
    assert {client for client, _, _ in access} == {"127.0.0.0/24"}, access
    requests = [(line, status) for _, line, status in access]
    assert ("GET /api/v1/live/stats?access_token=[redacted]", 200) in requests
    assert ("POST /api/v1/observations?access_token=[redacted]", 200) in requests
    assert ("GET /api/v1/sensors/bike-1/trajectory?access_token=[redacted]", 200) in requests
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
        (
            f"/api/v1/live?access_token=[redacted]&session=[redacted]&last_seq={last_seq}",
            "[accepted]",
        ),
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


def test_a_server_that_cannot_reach_redis_says_so_without_its_password(tmp_path: Path) -> None:
    """An error path: Redis with a password is down at start; the server stops, and its log
    explains why without the password."""
    password = "redis-password-5e7a"
    env = {
        **ServerProcess({}, tmp_path / "unused.log").env,
        "ARSERVER_DATA_DIR": str(tmp_path / "data"),
        "ARSERVER_REDIS_URL": f"redis://:{password}@127.0.0.1:{free_port()}/0",
    }
    done = subprocess.run(
        [arserver_command(), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    log = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode != 0, log
    assert "Redis" in log, log
    assert password not in log, log


def test_service_records_go_to_standard_error_through_the_redaction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not only uvicorn's: an ``arserver.*`` warning (and any other library's) is written by
    the root logger's redacting handler, once however often a server is configured."""
    from fastapi import FastAPI

    for _ in range(2):
        uvicorn_config(FastAPI(), "127.0.0.1", 0)
    logging.getLogger("arserver.live.mirror").warning(
        "session=%s of %s near %s,%s via redis://:pw@h/0", "Jx3abc", WRONG, LON, LAT
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "arserver.live.mirror" in line]
    assert lines == [
        "WARNING:arserver.live.mirror: session=[redacted] of [redacted] near [removed] "
        "via redis://[redacted]@h/0"
    ], err


def test_a_live_session_redis_cannot_read_is_logged_by_a_reference_not_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The session id resumes the session: logs name it by a short digest, which tells one
    session's lines apart and cannot be turned back into the id."""
    from arserver.live.mirror import RedisSessionMirror, session_ref

    session = "Jx3vQ9TgS2pLk0wE7yB1nA"
    mirror = RedisSessionMirror(f"redis://127.0.0.1:{free_port()}/0", retention_s=120)
    try:
        with caplog.at_level(logging.WARNING, logger="arserver.live.mirror"):
            assert mirror.load(session) is None
    finally:
        mirror.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "arserver.live.mirror"]
    assert messages == [f"cannot read live session {session_ref(session)} from Redis"]
    assert session not in caplog.text
    assert len(session_ref(session)) == 8
    assert session_ref(session) == session_ref(session) != session_ref(session + "x")
