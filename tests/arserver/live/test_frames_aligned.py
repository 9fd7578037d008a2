"""Aligned live frames: positions in a headset's own tracking frame, the inverse of the
alignment's matrix applied to ENU at its origin; a stored alignment named by id is put in by
the hub (:func:`with_alignment`) for its owner only; matrices that are no rotation, scale and
translation are refused."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from arserver.domain import Change
from arserver.live.frames import Frame, FrameError, with_alignment
from arserver.live.protocol import Limits, Session
from arserver.live.state import LiveState
from tiles.crs import EnuFrame

ORIGIN = (4.7610, 52.3095, 43.5)  # ETRS89


def alignment(yaw_deg: float, offset: tuple[float, float, float], scale: float = 1.0) -> np.ndarray:
    """A y-up headset frame (x right, y up, z backwards) turned ``yaw_deg`` from north, moved
    by ``offset`` metres: the 4x4 matrix from it to ENU."""
    yaw = math.radians(yaw_deg)
    matrix = np.eye(4)
    matrix[:3, :3] = scale * np.array(
        [
            [math.cos(yaw), 0.0, -math.sin(yaw)],
            [-math.sin(yaw), 0.0, -math.cos(yaw)],
            [0.0, 1.0, 0.0],
        ]
    )
    matrix[:3, 3] = offset
    return matrix


def aligned(matrix: np.ndarray, **extra: Any) -> Frame:
    return Frame.parse(
        {"type": "aligned", "origin": list(ORIGIN), "matrix": matrix.tolist(), **extra}
    )


@pytest.mark.parametrize(
    ("yaw", "offset", "scale"),
    [(37.0, (3.0, -4.0, 1.2), 1.0), (-120.0, (250.0, 80.0, -2.0), 1.0), (10.0, (0, 0, 0), 1.3)],
)
def test_a_point_comes_at_the_client_coordinates_the_alignment_maps_to_it(
    yaw: float, offset: tuple[float, float, float], scale: float
) -> None:
    matrix = alignment(yaw, offset, scale)
    frame = aligned(matrix)
    client = np.array([[2.0, 1.1, -6.0], [-15.0, 0.0, 30.0], [0.5, -1.5, 0.25]])
    enu = client @ matrix[:3, :3].T + matrix[:3, 3]
    lon, lat, h = EnuFrame(*ORIGIN).to_geodetic(*enu.T)
    for k in range(len(client)):
        got = frame.position(float(lon[k]), float(lat[k]), float(h[k]))
        assert np.abs(np.asarray(got) - client[k]).max() < 0.0005, (got, client[k])
    assert frame.name == "aligned"
    assert frame.reference == ORIGIN[:2]  # proximity is measured from the origin


def test_its_description_parses_back_to_the_same_frame() -> None:
    """A session restored elsewhere (from its Redis mirror) parses what ``describe`` gave."""
    frame = aligned(alignment(37.0, (3.0, -4.0, 1.2)), id="abc")
    described = frame.describe()
    assert described["type"] == "aligned"
    assert described["id"] == "abc"
    again = Frame.parse(json.loads(json.dumps(described)))
    assert again.key == frame.key
    assert again.position(*ORIGIN) == frame.position(*ORIGIN)


def bent(change: str) -> list[list[float]]:
    matrix = alignment(37.0, (3.0, -4.0, 1.2))
    if change == "shear":
        matrix[0, 1] += 0.2
    elif change == "mirror":
        matrix[:3, 0] *= -1
    elif change == "projective":
        matrix[3, 0] = 0.1
    elif change == "tiny":
        matrix[:3, :3] *= 1e-4
    elif change == "far":
        matrix[:3, 3] = [2e5, 0, 0]
    rows: list[list[float]] = matrix.tolist()
    return rows


@pytest.mark.parametrize(
    "value",
    [
        {"type": "aligned"},
        {"type": "aligned", "id": "x"},
        {"type": "aligned", "id": "x", "unavailable": True},
        {"type": "aligned", "id": 7, "origin": list(ORIGIN), "matrix": bent("none")},
        {"type": "aligned", "origin": list(ORIGIN)},
        {"type": "aligned", "matrix": bent("none")},
        {"type": "aligned", "origin": [200, 52, 0], "matrix": bent("none")},
        {"type": "aligned", "origin": list(ORIGIN), "matrix": bent("none"), "datum": "ITRF2020"},
        {"type": "aligned", "origin": list(ORIGIN), "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
        {"type": "aligned", "origin": list(ORIGIN), "matrix": [[1, 0, 0, "a"]] * 4},
        *({"type": "aligned", "origin": list(ORIGIN), "matrix": bent(change)}
          for change in ("shear", "mirror", "projective", "tiny", "far")),
    ],
)  # fmt: skip
def test_frames_that_cannot_be_used_are_refused_with_a_reason(value: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as refused:
        Frame.parse(value)
    assert str(refused.value)


def test_an_unknown_id_says_what_to_do() -> None:
    with pytest.raises(FrameError, match="align again"):
        Frame.parse({"type": "aligned", "id": "gone"})


STORED = {"origin": list(ORIGIN), "matrix": alignment(37.0, (3.0, -4.0, 1.2)).tolist()}


def lookup(owner: str, alignment_id: str) -> dict[str, Any] | None:
    return STORED if (owner, alignment_id) == ("token-1", "al1") else None


def subscribe(frame: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "subscribe", "id": "s1", "area": {"center": list(ORIGIN[:2]), "radius_m": 50},
         "layers": ["sensors"], "frame": frame}
    )  # fmt: skip


def test_the_hub_puts_in_its_owner_s_alignment_and_drops_what_the_client_claimed() -> None:
    claimed = subscribe({"type": "aligned", "id": "al1", "matrix": np.eye(4).tolist()})
    frame = json.loads(with_alignment(claimed, "token-1", lookup))["frame"]
    assert frame == {"type": "aligned", "id": "al1", **STORED}
    other = json.loads(with_alignment(claimed, "token-2", lookup))["frame"]
    assert other == {"type": "aligned", "id": "al1"}  # parsed as unknown


def test_a_failed_lookup_asks_to_try_again_and_other_messages_pass_unread() -> None:
    def broken(owner: str, alignment_id: str) -> dict[str, Any] | None:
        raise OSError("database away")

    frame = json.loads(with_alignment(subscribe({"type": "aligned", "id": "al1"}), "t", broken))
    with pytest.raises(FrameError, match="try again"):
        Frame.parse(frame["frame"])
    for text in ('{"type": "ping", "data": "aligned"}', "not json aligned", "[1]",
                 subscribe({"type": "enu", "origin": list(ORIGIN)})):  # fmt: skip
        assert with_alignment(text, "token-1", lookup) == text


def test_a_subscription_in_an_aligned_frame_gets_updates_in_it() -> None:
    state = LiveState()
    session = Session("sid", "token-1", state, Limits())
    session.receive(with_alignment(subscribe({"type": "aligned", "id": "al1"}), "token-1", lookup),
                    1000.0)  # fmt: skip
    session.take(1000.0, 1000.0)
    matrix = np.asarray(STORED["matrix"])
    where = np.array([4.0, 1.5, -2.0])  # in the headset's frame
    enu = matrix[:3, :3] @ where + matrix[:3, 3]
    lon, lat, h = (float(v[0]) for v in EnuFrame(*ORIGIN).to_geodetic(*(enu[:, None])))
    change = Change("sensors", "sensor:lamp:no2", "no2", lon, lat, h,
                    time="2026-11-28T10:00:00Z", data={"value": 1.0})  # fmt: skip
    state.apply(change)
    (sub,) = session.subscriptions.values()
    session.offer(sub, change, sub.item_text(change, {}))
    texts, _ = session.take(1001.0, 1001.0)
    (update,) = [json.loads(t) for t in texts]
    (item,) = update["items"]
    assert np.abs(np.asarray(item["position"]) - where).max() < 0.0005
