"""The live WebSocket against a running server with real clients: snapshot then updates in
the client's ENU frame (to the centimetre), tokens, resume without gap or duplicate, and a
client that stops reading."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from arserver.config import Settings
from tests.arserver.support import ASSETS, Live, next_message, receive
from tiles.crs import EnuFrame, Transformer

RD_SENSOR = (121_000.0, 487_000.0, 1.5)  # Amsterdam, RD New + NAP
RD_ORIGIN = (120_990.0, 486_990.0, 0.0)  # the headset's origin, 10 m west and south of it


def etrs89(x: float, y: float, nap: float) -> tuple[float, float, float]:
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform([x], [y], [nap])
    assert h is not None
    return float(lon[0]), float(lat[0]), float(h[0])


def until_closed(ws: ClientConnection) -> ConnectionClosed:
    """Read until the server closes the connection; the closing exception."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=1)
        except ConnectionClosed as closed:
            return closed
        except TimeoutError:
            continue
    raise AssertionError("the connection stayed open")


def test_an_rd_nap_point_arrives_at_its_enu_offset_to_the_centimetre(live: Live) -> None:
    live.register("amsterdam-1", list(RD_SENSOR), crs="EPSG:7415")
    live.observe(("amsterdam-1", 30.0))
    origin = etrs89(*RD_ORIGIN)
    expected = EnuFrame(*origin).from_geodetic(*etrs89(*RD_SENSOR))
    with live.connect() as ws:
        welcome = receive(ws, "welcome")
        assert welcome["last_seq"] == 0
        assert welcome["session"]
        ws.send(
            json.dumps(
                {
                    "type": "subscribe", "id": "here",
                    "area": {"center": origin[:2], "radius_m": 100}, "layers": ["sensors"],
                    "frame": {"type": "enu", "origin": list(origin)},
                }
            )
        )  # fmt: skip
        snapshot = receive(ws, "snapshot")
        [item] = snapshot["items"]
        assert item["data"]["value"] == 30.0
        for got, want in zip(item["position"], expected, strict=True):
            assert abs(got - float(want)) < 0.01
        east, north, up = item["position"]
        assert abs(east - 10) < 0.15
        assert abs(north - 10) < 0.15
        assert abs(up - 1.5) < 0.01
        live.observe(("amsterdam-1", 31.0))
        update = receive(ws, "update")
        assert update["seq"] == snapshot["seq"] + 1
        assert [(i["data"]["value"], i["position"]) for i in update["items"]] == [
            (31.0, item["position"])
        ]


def test_a_token_with_a_reading_role_is_required(live: Live) -> None:
    for query in ("", "?access_token=nonsense", f"?access_token={live.ingest}"):
        with pytest.raises(InvalidStatus) as refused:
            connect(live.ws_url + query, open_timeout=10)
        assert refused.value.response.status_code == 403
    with connect(live.ws_url, additional_headers={"Authorization": f"Bearer {live.viewer}"}) as ws:
        assert receive(ws, "welcome")["type"] == "welcome"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_client_that_reconnects_gets_exactly_what_it_missed(live: Live) -> None:
    for k in range(3):
        live.register(f"s{k}", [4.9 + k * 1e-4, 52.37])
    subscribe = {
        "type": "subscribe", "id": "a", "area": {"bbox": [4.89, 52.36, 4.91, 52.38]},
        "max_rate_hz": None,
    }  # fmt: skip
    with live.connect() as ws:
        session = receive(ws, "welcome")["session"]
        ws.send(json.dumps(subscribe))
        receive(ws, "snapshot")
        seen = []
        for k in range(3):
            live.observe((f"s{k}", float(k)))
            seen.append(receive(ws, "update"))
    # The client processed up to the second update only; more happened while it was away.
    last_seq = seen[1]["seq"]
    live.observe(("s0", 10.0), ("s1", 11.0))
    with live.connect(f"&session={session}&last_seq={last_seq}") as ws:
        welcome = receive(ws, "welcome")
        assert welcome["recovered"] is True
        assert welcome["session"] == session
        got = [receive(ws, "update")]
        values = {(i["key"], i["data"]["value"]) for i in got[0]["items"]}
        while len(values) < 3:
            got.append(receive(ws, "update"))
            values |= {(i["key"], i["data"]["value"]) for i in got[-1]["items"]}
        assert [m["seq"] for m in got] == list(range(last_seq + 1, last_seq + 1 + len(got)))
        assert values == {("sensor:s2:no2", 2.0), ("sensor:s0:no2", 10.0), ("sensor:s1:no2", 11.0)}
        assert got[0] == seen[2]  # the missed message itself, same seq, same content
        # and nothing twice: a value observed now is the very next message
        live.observe(("s2", 12.0))
        marker = next_message(ws)
        assert (marker["type"], marker["seq"]) == ("update", got[-1]["seq"] + 1)
        assert [(i["key"], i["data"]["value"]) for i in marker["items"]] == [
            ("sensor:s2:no2", 12.0)
        ]
    with live.connect("&session=unknown&last_seq=3") as ws:
        welcome = receive(ws, "welcome")
        assert welcome["recovered"] is False
        assert welcome["session"] != session


class StalledClient:
    """A WebSocket client that subscribes and then never reads again: the handshake and its one
    frame come from websockets' sans-I/O protocol, the socket is ours (receive buffer 4 KiB)."""

    def __init__(self, url: str, subscribe: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url))
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        self.sock.settimeout(10)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while not self.protocol.events_received():  # the 101 response
            self.protocol.receive_data(self.sock.recv(65536))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
        self.protocol.send_text(subscribe.encode())
        self._flush()

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def close_code(self) -> int | None:
        """Read everything that was sent, then close; the close code at the end, if a close
        frame came."""
        with self.sock:
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except OSError:
                    return None
                if not data:
                    return None
                self.protocol.receive_data(data)
                for event in self.protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                        return Close.parse(event.data).code


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[Live]:
    """A server that disconnects a client whose socket takes nothing for 2 s."""
    running = Live(Settings(data_dir=tmp_path, embedded_worker=False, live_send_timeout_s=2.0))
    yield running
    running.close()


def test_a_client_that_stops_reading_is_closed_and_the_others_go_on(impatient: Live) -> None:
    live = impatient
    count = 150
    for k in range(count):
        live.register(f"s{k}", [4.9 + k * 1e-5, 52.37])
    subscribe = json.dumps(
        {"type": "subscribe", "id": "a", "area": {"bbox": [4.89, 52.36, 4.91, 52.38]},
         "max_rate_hz": None}
    )  # fmt: skip
    stalled = StalledClient(f"{live.ws_url}?access_token={live.viewer}", subscribe)
    try:
        with live.connect() as reader:
            receive(reader, "welcome")
            reader.send(subscribe)
            receive(reader, "snapshot")
            closed = 0
            for round_ in range(1000):
                live.observe(*((f"s{k}", float(round_ % 100)) for k in range(count)))
                assert receive(reader, "update")["items"]  # the reading client keeps up
                stats = live.stats()
                closed = stats["slow_consumers_closed"]
                if closed:
                    break
            assert closed == 1, "the stalled client was never disconnected"
            assert stats["connections"] == 1
            assert stats["sessions"] == 1  # the stalled session's memory is released
            live.observe(("s0", 1.0))
            assert receive(reader, "update")["items"]
        assert stalled.close_code() == 4008  # after the backlog it had not read
    finally:
        stalled.sock.close()


@pytest.fixture
def converting(tmp_path: Path) -> Iterator[Live]:
    """A server with its embedded conversion worker."""
    running = Live(Settings(data_dir=tmp_path, embedded_worker=True))
    yield running
    running.close()


def test_a_published_asset_appears_comes_near_and_goes_when_deleted(converting: Live) -> None:
    live = converting
    zones = ASSETS / "parking_zones.geojson"
    with live.connect() as ws:
        receive(ws, "welcome")
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "site", "area": {"bbox": [4.70, 52.28, 4.80, 52.34]},
                 "layers": ["assets"], "proximity_m": 2000}
            )
        )  # fmt: skip
        assert receive(ws, "snapshot")["items"] == []
        with zones.open("rb") as handle:
            created = live.http.post(
                "/api/v1/assets",
                files={"file": (zones.name, handle)},
                data={"name": "Zones", "layer": "parking_zones"},
                headers={"Authorization": f"Bearer {live.gis}"},
            )
        assert created.status_code == 202, created.text
        asset_id = created.json()["id"]
        entered = receive(ws, "enter", timeout=60)  # within 2 km of the box's centre
        assert entered["key"] == f"asset:{asset_id}"
        update = receive(ws, "update")
        [item] = update["items"]
        assert item["kind"] == "parking_zones"
        assert item["data"]["tileset"] == f"/tiles/{asset_id}/tileset.json"
        west, south, east, north = item["data"]["extent"]
        assert west < item["position"][0] < east
        assert south < item["position"][1] < north
        deleted = live.http.delete(
            f"/api/v1/assets/{asset_id}", headers={"Authorization": f"Bearer {live.gis}"}
        )
        assert deleted.status_code == 204
        assert receive(ws, "leave")["key"] == f"asset:{asset_id}"
        gone = receive(ws, "update")
        assert gone["items"][0]["removed"] is True


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_alert_opens_is_acknowledged_and_resolves_on_the_overlay(live: Live) -> None:
    live.register("air-1", [4.9, 52.37])
    rule = {"name": "NO2", "kind": "no2", "threshold": 40, "reset": 35}
    gis = {"Authorization": f"Bearer {live.gis}"}
    assert live.http.post("/api/v1/rules", json=rule, headers=gis).status_code == 201
    with live.connect() as ws:
        receive(ws, "welcome")
        ws.send(
            json.dumps(
                {"type": "subscribe", "id": "a", "area": {"center": [4.9, 52.37], "radius_m": 50},
                 "layers": ["alerts"], "max_rate_hz": None}
            )
        )  # fmt: skip
        receive(ws, "snapshot")
        live.observe(("air-1", 55.0))
        [opened] = receive(ws, "update")["items"]
        assert opened["data"]["status"] == "open"
        assert opened["data"]["value"] == 55.0
        acknowledged = live.http.post(
            f"/api/v1/alerts/{opened['data']['alert']}/acknowledge", headers=gis
        )
        assert acknowledged.status_code == 200
        [item] = receive(ws, "update")["items"]
        assert item["data"]["status"] == "acknowledged"
        live.observe(("air-1", 20.0))
        [resolved] = receive(ws, "update")["items"]
        assert resolved["data"]["status"] == "resolved"
        assert resolved["removed"] is True


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_resuming_while_the_old_connection_is_open_takes_the_session_over(live: Live) -> None:
    live.register("s0", [4.9, 52.37])
    subscribe = {"type": "subscribe", "id": "a", "area": {"bbox": [4.89, 52.36, 4.91, 52.38]},
                 "max_rate_hz": None}  # fmt: skip
    with live.connect() as old:
        session = receive(old, "welcome")["session"]
        old.send(json.dumps(subscribe))
        snapshot = receive(old, "snapshot")
        with live.connect(f"&session={session}&last_seq={snapshot['seq']}") as new:
            welcome = receive(new, "welcome")
            assert welcome["recovered"] is True
            closed = until_closed(old)
            assert closed.rcvd is not None
            assert closed.rcvd.code == 4009
            live.observe(("s0", 5.0))
            update = receive(new, "update")
            assert update["seq"] == snapshot["seq"] + 1
