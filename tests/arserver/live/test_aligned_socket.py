"""A headset aligned through ``POST /api/v1/align`` subscribes in its own tracking frame by the
alignment's id, against a running server: a sensor placed in RD New + NAP arrives at the
client coordinates of the headset's (known) frame to the centimetre; another caller cannot
use that id."""

from __future__ import annotations

import json
import math

import numpy as np
from websockets.sync.client import connect

from tests.arserver.support import Live, receive
from tiles.crs import EnuFrame, Transformer

SENSOR_RD = (121_404.0, 487_406.0, 1.8)  # a lamp-post sensor, RD New + NAP
CORNERS_RD = [  # surveyed points the inspector pointed at, RD New + NAP
    (121_400.0, 487_400.0, 0.4), (121_412.0, 487_401.0, 0.5), (121_398.0, 487_411.0, 3.1),
    (121_409.0, 487_412.0, 0.6),
]  # fmt: skip
YAW = math.radians(-64.0)
#: The headset's frame (x right, y up, z backwards) in ENU at the origin, and where it began.
TO_ENU = np.array(
    [
        [math.cos(YAW), 0.0, -math.sin(YAW)],
        [-math.sin(YAW), 0.0, -math.cos(YAW)],
        [0.0, 1.0, 0.0],
    ]
)
OFFSET = np.array([1.5, 2.0, 1.6])


def etrs89(points: list[tuple[float, float, float]]) -> np.ndarray:
    x, y, z = (list(v) for v in zip(*points, strict=True))
    lon, lat, h = Transformer.from_crs("EPSG:7415", "EPSG:4937").transform(x, y, z)
    assert h is not None
    return np.column_stack([lon, lat, h])


def test_a_sensor_arrives_in_the_headset_s_own_frame_by_the_alignment_s_id(live: Live) -> None:
    origin = etrs89(CORNERS_RD[:1])[0]
    frame = EnuFrame(*origin)
    corners = etrs89(CORNERS_RD)
    enu = np.column_stack(frame.from_geodetic(*corners.T))
    client = (enu - OFFSET) @ TO_ENU  # enu = TO_ENU @ client + OFFSET
    body = {
        "up": "y",
        "origin": [float(v) for v in origin],
        "pairs": [
            {"client": [float(v) for v in c], "world": list(w), "crs": "EPSG:7415"}
            for c, w in zip(client, CORNERS_RD, strict=True)
        ],
    }
    answer = live.http.post(
        "/api/v1/align", json=body, headers={"Authorization": f"Bearer {live.viewer}"}
    )
    assert answer.status_code == 200, answer.text
    alignment = answer.json()
    assert alignment["rms_m"] < 0.001
    assert alignment["expires_at"]

    live.register("lamp", list(SENSOR_RD), crs="EPSG:7415")
    live.observe(("lamp", 12.0))
    sensor_enu = np.column_stack(frame.from_geodetic(*etrs89([SENSOR_RD]).T))[0]
    expected = TO_ENU.T @ (sensor_enu - OFFSET)
    subscribe = {
        "type": "subscribe", "id": "here", "layers": ["sensors"],
        "area": {"center": [float(origin[0]), float(origin[1])], "radius_m": 60},
        "frame": {"type": "aligned", "id": alignment["id"]},
    }  # fmt: skip
    with live.connect() as ws:
        receive(ws, "welcome")
        ws.send(json.dumps(subscribe))
        snapshot = receive(ws, "snapshot")
        assert snapshot["frame"] == "aligned"
        [item] = snapshot["items"]
        assert np.abs(np.asarray(item["position"]) - expected).max() < 0.01, item["position"]
        live.observe(("lamp", 13.0))
        [moved] = receive(ws, "update")["items"]
        assert moved["position"] == item["position"]

    with connect(f"{live.ws_url}?access_token={live.gis}", open_timeout=10) as ws:
        receive(ws, "welcome")
        ws.send(json.dumps(subscribe))
        refused = receive(ws, "error")
        assert refused["code"] == "bad_subscription"
        assert "not known" in refused["message"]
