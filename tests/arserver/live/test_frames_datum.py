"""Live frames in the client's datum: a headset positioned in ITRF2020 at 2026.9 that sends
its ENU origin in that datum gets overlay positions in it, within a centimetre of where PROJ
puts the same points; geographic frames likewise; ETRS89 stays as it was."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyproj
import pytest

from arserver.domain import Change
from arserver.live.frames import Frame, FrameError
from arserver.live.protocol import Limits, Session
from arserver.live.state import LiveState
from tiles.crs import EnuFrame

LAMP = (4.7610, 52.3095, 43.5)  # an asset feature at Schiphol Plaza, ETRS89
TO_ITRF = pyproj.Transformer.from_crs(7931, 9989, always_xy=True)


def in_itrf(lon: float, lat: float, h: float, epoch: float = 2026.9) -> tuple[float, float, float]:
    x, y, z, _ = TO_ITRF.transform([lon, lon], [lat, lat], [h, h], [epoch, epoch])
    return float(x[0]), float(y[0]), float(z[0])


def test_an_asset_at_the_origin_is_at_zero_in_an_itrf_enu_frame() -> None:
    origin = in_itrf(*LAMP)  # where the headset's GNSS says the lamp post is
    frame = Frame.parse({"type": "enu", "origin": list(origin), "datum": "ITRF2020",
                         "epoch": 2026.9})  # fmt: skip
    east, north, up = frame.position(*LAMP)
    assert max(abs(east), abs(north), abs(up)) < 0.01
    etrs89 = Frame.parse({"type": "enu", "origin": list(origin)})  # the same numbers as ETRS89
    wrong = etrs89.position(*LAMP)
    assert 0.9 < float(np.hypot(wrong[0], wrong[1])) < 0.96  # what ignoring the datum costs


@pytest.mark.parametrize(
    "offset", [(0.0005, 0.0, 0.0), (-0.0003, 0.0004, 5.0), (0.001, -0.001, -3.0)]
)
def test_other_points_land_where_proj_puts_them(offset: tuple[float, float, float]) -> None:
    origin = in_itrf(*LAMP)
    frame = Frame.parse({"type": "enu", "origin": list(origin), "datum": "ITRF2020",
                         "epoch": 2026.9})  # fmt: skip
    point = (LAMP[0] + offset[0], LAMP[1] + offset[1], LAMP[2] + offset[2])
    expected = EnuFrame(*origin).from_geodetic(*(np.array([v]) for v in in_itrf(*point)))
    got = frame.position(*point)
    assert max(abs(g - float(e[0])) for g, e in zip(got, expected, strict=True)) < 0.01


def test_a_geographic_frame_in_a_datum_and_one_without() -> None:
    itrf = Frame.parse({"type": "wgs84", "datum": "WGS84", "epoch": 2026.9}).position(*LAMP)
    expected = in_itrf(*LAMP)
    assert abs(itrf[0] - expected[0]) < 1e-9
    assert abs(itrf[1] - expected[1]) < 1e-9
    assert abs(itrf[2] - expected[2]) < 0.001
    assert Frame.parse({"type": "wgs84"}).position(*LAMP) == list(LAMP)
    assert Frame.parse({"type": "wgs84", "datum": "ETRS89"}).position(*LAMP) == list(LAMP)


@pytest.mark.parametrize(
    "frame",
    [{"type": "enu", "origin": [4.7, 52.3, 40], "datum": "NAD83"},
     {"type": "wgs84", "datum": "ITRF2020", "epoch": 1700},
     {"type": "wgs84", "datum": "ITRF2020", "epoch": "now"},
     {"type": "wgs84", "datum": 2020},
     {"type": "wgs84", "epoch": 2026.9}],
)  # fmt: skip
def test_bad_datums_and_epochs_are_refused(frame: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        Frame.parse(frame)


def test_a_subscription_in_a_datum_gets_its_updates_there_and_its_session_says_so() -> None:
    state = LiveState()
    session = Session("sid", "token-1", state, Limits())
    origin = in_itrf(*LAMP)
    frame = {"type": "enu", "origin": list(origin), "datum": "ITRF2020", "epoch": 2026.9}
    session.receive(json.dumps({
        "type": "subscribe", "id": "s1", "area": {"center": list(LAMP[:2]), "radius_m": 100},
        "layers": ["sensors"], "frame": frame,
    }), 1000.0)  # fmt: skip
    session.take(1000.0, 1000.0)
    change = Change("sensors", "sensor:lamp:no2", "no2", *LAMP, time="2026-11-28T10:00:00Z",
                    data={"value": 1.0})  # fmt: skip
    state.apply(change)
    (sub,) = session.subscriptions.values()
    session.offer(sub, change, sub.item_text(change, {}))
    texts, _ = session.take(1001.0, 1001.0)
    (update,) = [json.loads(t) for t in texts]
    position = update["items"][0]["position"] if "items" in update else update["item"]["position"]
    assert max(abs(v) for v in position) < 0.01
    assert sub.describe()["frame"] == frame
