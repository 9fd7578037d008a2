"""Positions of the people using the overlay stay in memory: after a real ``arserver serve``
followed a live overlay and answered area queries at distinctive positions, none of them is in
any file it wrote (database, WAL, logs), in its metrics, or (with Redis) in Redis once the
session's retention window is over.

The positions are searched for in every form code could write them: decimal text, rounded or
cut to 4..10 decimals (10 m and finer), as fixed-point integers (degrees times 10^6..10^9), as
IEEE 754 doubles and floats (how SQLite stores a REAL, big-endian, and how most binary formats
do, little-endian), and as RD New metres."""

from __future__ import annotations

import json
import math
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from arserver.config import Settings
from tests.arserver.processes import ServerProcess
from tests.arserver.support import readings, receive, tokens_for
from tests.support import wait_until
from tiles.crs import Transformer

#: Where the subscriber stands, the box it looks at, where it moves to, and its ENU origin.
CENTER = (4.8765432101, 52.1234567891)
MOVED = (4.8698765432, 52.1287654321)
BBOX = (4.8712398765, 52.1198712345, 4.8823987651, 52.1276512398)
ORIGIN = (4.8765432101, 52.1234567891, 43.2109876)
#: A fixed sensor inside the area (its own position is stored, legitimately).
SENSOR = (4.8771000000, 52.1240000000)
LIVE_RETENTION_S = 3.0


def _decimal_forms(value: float) -> set[bytes]:
    forms = {repr(value).encode()}
    for places in range(4, 11):
        forms.add(f"{value:.{places}f}".encode())  # rounded
        whole, _, fraction = repr(value).partition(".")
        forms.add(f"{whole}.{fraction[:places]}".encode())  # cut
    return forms


def _scaled_forms(value: float) -> set[bytes]:
    forms = set()
    for exponent in range(6, 10):
        for number in {math.floor(value * 10**exponent), round(value * 10**exponent)}:
            forms.add(str(number).encode())
            if abs(number) < 2**31:
                forms |= {struct.pack(">i", number), struct.pack("<i", number)}
            forms |= {struct.pack(">q", number), struct.pack("<q", number)}
    return forms


def _binary_forms(value: float) -> set[bytes]:
    forms = set()
    for places in range(4, 11):
        rounded = round(value, places)
        forms |= {struct.pack(">d", rounded), struct.pack("<d", rounded)}
    forms |= {struct.pack(">d", value), struct.pack("<d", value)}
    forms |= {struct.pack(">f", value), struct.pack("<f", value)}
    return forms


def _rd_forms(lon: float, lat: float) -> set[bytes]:
    x, y, _ = Transformer.from_crs("EPSG:4326", "EPSG:28992").transform([lon], [lat], None)
    forms = set()
    for metres in (float(x[0]), float(y[0])):
        forms |= {f"{metres:.1f}".encode(), f"{metres:.2f}".encode()}
        forms.add(str(math.floor(metres)).encode())
    return forms


def needles() -> dict[bytes, str]:
    """Every byte string that would show one of the subscriber's positions: {form: which}."""
    found: dict[bytes, str] = {}
    points = {"center": CENTER, "moved": MOVED, "origin": ORIGIN[:2]}
    points |= {"bbox south-west": BBOX[:2], "bbox north-east": BBOX[2:]}
    for name, (lon, lat) in points.items():
        for value in (lon, lat):
            for form in _decimal_forms(value) | _scaled_forms(value) | _binary_forms(value):
                found[form] = f"{name} {value}"
        for form in _rd_forms(lon, lat):
            found[form] = f"{name} in RD New"
    for form in _decimal_forms(ORIGIN[2]):
        if len(form) >= 7:  # 43.2109: a height alone is no position, but it is this one
            found[form] = f"origin height {ORIGIN[2]}"
    return found


NEEDLES = needles()


def hits(where: str, data: bytes) -> list[str]:
    """``where: which position (the form found) ...context...`` for every needle in ``data``."""
    found = []
    for form, what in NEEDLES.items():
        at = data.find(form)
        if at >= 0:
            context = data[max(at - 60, 0) : at + len(form) + 60]
            found.append(f"{where}: {what} as {form!r} in ...{context!r}...")
    return found


def scan_files(folder: Path) -> list[str]:
    return [
        found
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        for found in hits(str(path.relative_to(folder)), path.read_bytes())
    ]


def test_the_needles_find_the_forms_code_would_write() -> None:
    """The search is not blind: each form a careless line would write is found."""
    lon, lat = CENTER
    careless = [
        f"subscribed at {lon},{lat}".encode(),
        f"center={lon:.5f}".encode(),
        f"lat {lat:.6f}".encode(),
        json.dumps({"center": [round(lon, 7), round(lat, 7)]}).encode(),
        str(round(lon * 1e7)).encode(),  # E7 fixed point
        struct.pack(">d", lon),  # a SQLite REAL
        struct.pack("<f", lat),  # a float32 buffer
    ]
    for text in careless:
        assert hits("test", text), text
    assert not hits("test", f"sensor at {SENSOR[0]},{SENSOR[1]}".encode())


@dataclass
class Session:
    """A real server, its tokens and what a subscriber sent it."""

    server: ServerProcess
    data_dir: Path
    viewer: str
    gis: str
    ingest: str
    admin: str
    metrics_token: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, timeout=30)

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def ws(self, query: str = "") -> ClientConnection:
        url = self.server.url.replace("http://", "ws://") + "/api/v1/live"
        return connect(f"{url}?access_token={self.viewer}{query}", open_timeout=10)

    def observe(self, value: float) -> None:
        reply = self.http.post(
            "/api/v1/observations",
            json={"observations": readings(("scan-1", value))},
            headers=self.bearer(self.ingest),
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["accepted"] == 1, reply.text

    def metrics(self) -> str:
        """``/metrics``, open or behind a token (the metrics token or an admin's)."""
        for headers in ({}, self.bearer(self.metrics_token), self.bearer(self.admin)):
            reply = self.http.get("/metrics", headers=headers)
            if reply.status_code == 200:
                return reply.text
        raise AssertionError(f"/metrics answered {reply.status_code} to every token")


def start(tmp_path: Path, env: dict[str, str]) -> Session:
    settings = Settings(data_dir=tmp_path / "data")
    viewer, gis, ingest, admin = tokens_for(settings, "viewer", "gis", "ingest", "admin")
    metrics_token = "scan-metrics-" + secrets.token_urlsafe(16)
    server = ServerProcess(
        {
            "ARSERVER_DATA_DIR": str(settings.data_dir),
            "ARSERVER_LIVE_RETENTION_S": str(LIVE_RETENTION_S),
            "ARSERVER_METRICS_TOKEN": metrics_token,
            **env,
        },
        tmp_path / "serve.log",
    )
    server.start()
    return Session(server, settings.data_dir, viewer, gis, ingest, admin, metrics_token)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Session]:
    session = start(tmp_path, {})
    yield session
    session.http.close()
    session.server.stop()


@pytest.fixture
def with_redis(tmp_path: Path, redis_url: str) -> Iterator[Session]:
    session = start(tmp_path, {"ARSERVER_REDIS_URL": redis_url})
    yield session
    session.http.close()
    session.server.stop()


def follow_the_overlay(s: Session) -> str:
    """Everything a subscriber does with its positions: area queries (centre, box, in the query
    and with the token there too), live subscriptions by centre and by box in an ENU frame, a
    move, a disconnect and a resume; the metrics text afterwards."""
    body = {
        "id": "scan-1", "name": "scan", "kind": "no2", "unit": "ug/m3", "location": list(SENSOR),
    }  # fmt: skip
    reply = s.http.post("/api/v1/sensors", json=body, headers=s.bearer(s.gis))
    assert reply.status_code == 201, reply.text
    s.observe(21.0)

    lon, lat = CENTER
    near = s.http.get(
        f"/api/v1/observations/latest?center={lon},{lat}&radius_m=250&access_token={s.viewer}"
    )
    assert near.status_code == 200, near.text
    assert [item["sensor"] for item in near.json()["latest"]] == ["scan-1"]
    box = ",".join(str(v) for v in BBOX)
    inside = s.http.get(f"/api/v1/observations/latest?bbox={box}", headers=s.bearer(s.viewer))
    assert inside.status_code == 200, inside.text

    with s.ws(f"&center={lon},{lat}") as ws:
        session = receive(ws, "welcome")["session"]
        ws.send(
            json.dumps(
                {
                    "type": "subscribe", "id": "here", "area": {"center": list(CENTER),
                    "radius_m": 250}, "layers": ["sensors"],
                    "frame": {"type": "enu", "origin": list(ORIGIN)},
                }
            )
        )  # fmt: skip
        snapshot = receive(ws, "snapshot")
        assert ["scan-1" in json.dumps(item) for item in snapshot["items"]] == [True], snapshot
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "box", "area": {"bbox": list(BBOX)},
                 "layers": ["sensors", "alerts"]}
            )
        )  # fmt: skip
        receive(ws, "snapshot")
        ws.send(json.dumps({"type": "move", "id": "here", "center": list(MOVED)}))
        assert receive(ws, "snapshot")["reason"] == "move"
        s.observe(22.0)  # still in the box
        last_seq = receive(ws, "update")["seq"]
    with s.ws(f"&session={session}&last_seq={last_seq}") as ws:
        welcome = receive(ws, "welcome")
        assert (welcome["session"], welcome["recovered"]) == (session, True)
        s.observe(23.0)
        receive(ws, "update")
    return s.metrics()


def test_no_file_or_metric_of_the_server_holds_a_subscriber_position(embedded: Session) -> None:
    metrics = follow_the_overlay(embedded)
    embedded.server.stop()
    found = hits("/metrics", metrics.encode())
    found += scan_files(embedded.data_dir)
    found += hits("server output", embedded.server.log.read_bytes())
    assert not found, "\n".join(found)
    # The scan did read the database the server wrote (and the sensor's own position in it).
    database = (embedded.data_dir / "arserver.db").read_bytes()
    wal = embedded.data_dir / "arserver.db-wal"
    if wal.exists():
        database += wal.read_bytes()
    assert struct.pack(">d", SENSOR[0]) in database


def _redis_dump(client: redis.Redis) -> dict[bytes, bytes]:
    """{key: everything its value holds, as bytes} for every key of the database."""
    dump = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            value = client.xrange(key)
        else:
            value = kind
        dump[key] = repr(value).encode()
    return dump


def test_redis_holds_no_subscriber_position_and_the_session_mirror_expires(
    with_redis: Session, redis_url: str
) -> None:
    """The session mirror (what another process needs to resume the session) holds the
    subscriptions, areas and origin included, only encrypted with a key derived from the
    session id, under a key named by another hash of it, with the retention window as
    time-to-live: no position of a subscriber can be read from Redis, and then it is gone."""
    from arserver.live.mirror import PREFIX

    metrics = follow_the_overlay(with_redis)
    client = redis.Redis.from_url(redis_url)
    try:
        dump = _redis_dump(client)
        mirrored = [key for key in dump if key.startswith(PREFIX.encode())]
        assert mirrored, "no session was mirrored"
        found = [
            hit for key, value in dump.items() for hit in hits(f"Redis {key!r}", key + b" " + value)
        ]
        assert not found, "\n".join(found)
        for key in mirrored:
            ttl_ms = client.pttl(key)
            assert 0 < ttl_ms <= LIVE_RETENTION_S * 1000, (key, ttl_ms)
        with_redis.server.stop()

        def forgotten() -> bool:
            return not any(k.startswith(PREFIX.encode()) for k in _redis_dump(client))

        wait_until(forgotten, timeout_s=LIVE_RETENTION_S + 20, what="the session mirror to expire")
    finally:
        client.close()
    found = hits("/metrics", metrics.encode())
    found += scan_files(with_redis.data_dir)
    found += hits("server output", with_redis.server.log.read_bytes())
    assert not found, "\n".join(found)
