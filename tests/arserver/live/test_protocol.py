"""The live protocol state machine, exactly: subscribe, move, unsubscribe, conflation, rate
limits, proximity, resume and overflow, with no sockets and a clock the test holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arserver.domain import Change
from arserver.live.area import Area
from arserver.live.index import SubscriptionIndex
from arserver.live.protocol import (
    CLOSE_SLOW_CONSUMER,
    MAX_SUBSCRIPTIONS,
    Limits,
    Session,
    Subscription,
)
from arserver.live.state import LiveState

LON, LAT = 4.7610, 52.3095  # Schiphol Plaza


def reading(sensor: str, value: float, lon: float = LON, lat: float = LAT, t: int = 0) -> Change:
    return Change(
        "sensors", f"sensor:{sensor}:no2", "no2", lon, lat, 43.0,
        time=f"2026-11-28T10:00:{t:02d}.000000+00:00",
        data={"sensor": sensor, "value": value, "unit": "ug/m3"},
    )  # fmt: skip


def alert(alert_id: str, lon: float, lat: float, status: str = "open", t: int = 0) -> Change:
    return Change(
        "alerts", f"alert:{alert_id}", "no2", lon, lat, 43.0,
        time=f"2026-11-28T10:00:{t:02d}.000000+00:00",
        data={"alert": alert_id, "status": status}, removed=status == "resolved",
    )  # fmt: skip


class Harness:
    """A session over a live state, with the hub's matching done by hand."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.state = LiveState()
        self.session = Session("sid", "token-1", self.state, limits or Limits())
        self.now = 1000.0

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.session.receive(text, self.now)

    def publish(self, change: Change) -> None:
        if self.state.apply(change):
            for sub in list(self.session.subscriptions.values()):
                self.session.offer(sub, change, sub.item_text(change, {}))

    def take(self) -> list[dict[str, Any]]:
        texts, _ = self.session.take(self.now, self.now)
        return [json.loads(t) for t in texts]

    def subscribe(self, **extra: Any) -> list[dict[str, Any]]:
        message = {
            "type": "subscribe", "id": "s1",
            "area": {"center": [LON, LAT], "radius_m": 200}, "layers": ["sensors", "alerts"],
            **extra,
        }  # fmt: skip
        self.send(message)
        return self.take()


def test_subscribe_answers_with_a_snapshot_of_what_is_in_the_area() -> None:
    h = Harness()
    h.publish(reading("near", 30.0))
    h.publish(reading("far", 31.0, lon=LON + 0.01))  # about 680 m east
    h.publish(Change("parking", "sensor:bay:parking_bay", "parking_bay", LON, LAT, None, "t"))
    [snapshot] = h.subscribe()
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 1
    assert snapshot["id"] == "s1"
    assert [i["key"] for i in snapshot["items"]] == ["sensor:near:no2"]
    assert snapshot["items"][0]["position"] == [LON, LAT, 43.0]


def test_updates_are_grouped_per_subscription_with_increasing_seq() -> None:
    h = Harness()
    h.subscribe()
    h.publish(reading("a", 1.0))
    h.publish(reading("b", 2.0))
    h.publish(reading("outside", 3.0, lat=LAT + 0.01))
    [update] = h.take()
    assert update["type"] == "update"
    assert update["seq"] == 2
    assert [(i["key"], i["data"]["value"]) for i in update["items"]] == [
        ("sensor:a:no2", 1.0),
        ("sensor:b:no2", 2.0),
    ]
    h.now += 1
    h.publish(reading("a", 5.0, t=1))
    assert [m["seq"] for m in h.take()] == [3]


def test_a_newer_value_replaces_a_queued_one_and_older_ones_are_dropped() -> None:
    h = Harness()
    h.subscribe()
    h.publish(reading("a", 1.0, t=1))
    h.publish(reading("a", 2.0, t=2))
    h.publish(reading("a", 0.5, t=0))  # late: older than what the state holds
    [update] = h.take()
    assert [i["data"]["value"] for i in update["items"]] == [2.0]


def test_the_rate_limit_holds_a_key_back_and_says_when_it_is_due() -> None:
    h = Harness()
    h.subscribe(max_rate_hz=2)
    h.publish(reading("a", 1.0, t=1))
    assert len(h.take()) == 1
    h.now += 0.1
    h.publish(reading("a", 2.0, t=2))
    h.publish(reading("b", 9.0, t=2))
    texts, due = h.session.take(h.now, h.now)
    assert [i["key"] for i in json.loads(texts[0])["items"]] == ["sensor:b:no2"]
    assert due == pytest.approx(1000.5)
    h.publish(reading("a", 3.0, t=3))  # conflated while held back
    h.now = 1000.5
    [update] = h.take()
    assert [i["data"]["value"] for i in update["items"]] == [3.0]


def test_unlimited_rate_sends_every_value() -> None:
    h = Harness()
    h.subscribe(max_rate_hz=None)
    for t in range(3):
        h.publish(reading("a", float(t), t=t))
        h.now += 0.01
        assert len(h.take()) == 1


def test_kinds_and_layers_filter_updates() -> None:
    h = Harness()
    h.subscribe(kinds=["pm25"])
    h.publish(reading("a", 1.0))
    assert h.take() == []


def test_move_sends_a_new_snapshot_and_updates_follow_the_new_area() -> None:
    h = Harness()
    h.publish(reading("east", 7.0, lon=LON + 0.01))
    [first] = h.subscribe()
    assert first["items"] == []
    h.send({"type": "move", "id": "s1", "center": [LON + 0.01, LAT]})
    [moved] = h.take()
    assert moved["type"] == "snapshot"
    assert moved["reason"] == "move"
    assert [i["key"] for i in moved["items"]] == ["sensor:east:no2"]
    h.publish(reading("home", 1.0))  # the old area: no longer wanted
    assert h.take() == []


def test_proximity_enter_and_leave_as_the_subscriber_moves_and_alerts_change() -> None:
    h = Harness()
    h.publish(alert("a1", LON + 0.0005, LAT))  # about 34 m east
    messages = h.subscribe(proximity_m=50)
    assert [m["type"] for m in messages] == ["snapshot", "enter"]
    assert messages[1]["key"] == "alert:a1"
    assert 30 < messages[1]["distance_m"] < 40
    h.send({"type": "move", "id": "s1", "center": [LON - 0.001, LAT]})  # now about 100 m away
    assert [m["type"] for m in h.take()] == ["snapshot", "leave"]
    h.send({"type": "move", "id": "s1", "center": [LON, LAT]})
    assert [m["type"] for m in h.take()] == ["snapshot", "enter"]
    h.publish(alert("a1", LON + 0.0005, LAT, status="resolved", t=5))
    kinds = [(m["type"], m.get("key")) for m in h.take()]
    assert ("leave", "alert:a1") in kinds
    assert ("update", None) in kinds  # the removal itself, for the overlay


def test_unsubscribe_confirms_and_stops_updates() -> None:
    h = Harness()
    h.subscribe()
    sub = h.session.subscriptions["s1"]
    h.send({"type": "unsubscribe", "id": "s1"})
    assert h.take() == [{"seq": 2, "type": "unsubscribed", "id": "s1"}]
    h.session.offer(sub, reading("a", 1.0), "{}")
    assert h.take() == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "subscribe", "id": "", "area": {"bbox": [4, 52, 5, 53]}}, "bad_subscription"),
        ({"type": "subscribe", "id": "x", "area": {"bbox": [5, 52, 4, 53]}}, "bad_subscription"),
        ({"type": "subscribe", "id": "x", "area": {"bbox": [4, 52, "5", 53]}}, "bad_subscription"),
        ({"type": "subscribe", "id": "x", "area": {"center": [4, 52]}}, "bad_subscription"),
        (
            {"type": "subscribe", "id": "x", "area": {"center": [4, 52], "radius_m": 1e9}},
            "bad_subscription",
        ),
        (
            {
                "type": "subscribe",
                "id": "x",
                "area": {"center": [4, 52], "radius_m": 9},
                "layers": ["secrets"],
            },
            "bad_subscription",
        ),
        (
            {
                "type": "subscribe",
                "id": "x",
                "area": {"center": [4, 52], "radius_m": 9},
                "frame": {"type": "enu"},
            },
            "bad_subscription",
        ),
        (
            {
                "type": "subscribe",
                "id": "x",
                "area": {"center": [4, 52], "radius_m": 9},
                "max_rate_hz": 0,
            },
            "bad_subscription",
        ),
        ({"type": "move", "id": "nope", "center": [4, 52]}, "unknown_subscription"),
        ({"type": "unsubscribe", "id": "nope"}, "unknown_subscription"),
        ("x" * 70_000, "too_large"),
    ],
)
def test_bad_messages_get_an_error_and_the_session_goes_on(
    message: dict[str, Any] | str, code: str
) -> None:
    h = Harness()
    h.send(message)
    [error] = h.take()
    assert error["type"] == "error"
    assert error["code"] == code
    assert "seq" not in error
    assert h.subscribe()[0]["type"] == "snapshot"  # still usable


def test_subscriptions_are_limited() -> None:
    h = Harness()
    for k in range(MAX_SUBSCRIPTIONS + 1):
        h.send({"type": "subscribe", "id": f"s{k}", "area": {"bbox": [4, 52, 5, 53]}})
    errors = [m for m in h.take() if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["too_many"]


def test_resume_replays_exactly_the_missed_messages() -> None:
    h = Harness()
    h.subscribe(max_rate_hz=None)
    for t in range(1, 5):
        h.publish(reading("a", float(t), t=t))
        h.take()  # seq 2..5 sent, the client saw up to 3
    h.publish(reading("a", 9.0, t=9))  # arrived while away, never sent
    assert h.session.resume(last_seq=3, wall=h.now) is True
    messages = h.take()
    assert [m["seq"] for m in messages] == [4, 5, 6]
    assert [m["items"][0]["data"]["value"] for m in messages] == [3.0, 4.0, 9.0]


def test_resume_beyond_the_window_gives_a_fresh_snapshot() -> None:
    h = Harness(Limits(retention_s=10))
    h.subscribe(max_rate_hz=None)
    h.publish(reading("a", 1.0, t=1))
    h.take()
    h.now += 60
    assert h.session.resume(last_seq=1, wall=h.now) is False
    [snapshot] = h.take()
    assert snapshot["type"] == "snapshot"
    assert snapshot["reason"] == "resume"
    assert snapshot["seq"] == 3


def test_a_client_that_falls_too_far_behind_is_closed_with_4008() -> None:
    h = Harness(Limits(max_queue_bytes=5_000))
    h.subscribe()
    for k in range(100):  # distinct keys: conflation cannot help
        h.publish(reading(f"s{k}", 1.0))
    assert h.session.close_code == CLOSE_SLOW_CONSUMER
    assert h.session.queued_bytes == 0  # what it held is released


def test_conflation_keeps_a_busy_key_within_bounds() -> None:
    h = Harness(Limits(max_queue_bytes=5_000))
    h.subscribe()
    for t in range(1000):  # one key, many values, nobody reading
        h.publish(reading("a", float(t), t=t % 60))
    assert h.session.close_code is None
    assert h.session.queued_bytes < 1_000


def test_the_area_index_matches_only_nearby_subscriptions() -> None:
    h = Harness()
    h.subscribe()
    index: SubscriptionIndex[Subscription] = SubscriptionIndex()
    sub = h.session.subscriptions["s1"]
    index.add(sub)
    assert list(index.candidates(LON, LAT)) == [sub]
    assert list(index.candidates(LON + 0.5, LAT)) == []
    city = Area.box(4.0, 52.0, 5.5, 53.0)  # a planner's whole region: the large list
    h.send({"type": "subscribe", "id": "city", "area": {"bbox": [4.0, 52.0, 5.5, 53.0]}})
    big = h.session.subscriptions["city"]
    assert big.area == city
    index.add(big)
    assert set(index.candidates(LON + 0.5, LAT)) == {big}
    index.remove(sub)
    assert list(index.candidates(LON, LAT)) == [big]


# -- large areas: the work is bounded by what an area can match, not by its size ----------

WORLD = [-180.0, -90.0, 180.0, 90.0]


class Steps:
    """The area-dependent steps the live code takes: grid cells walked (``Area.cells``) and
    points tested (``Area.contains``). Past ``limit`` of either it fails at once, so that an
    unbounded walk (2.6 billion cells for the world) fails the test instead of running on."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cells = 0
        self.points = 0

    def reset(self) -> None:
        self.cells = self.points = 0

    def cell(self) -> None:
        self.cells += 1
        assert self.cells <= self.limit, f"walked more than {self.limit} cells"

    def point(self) -> None:
        self.points += 1
        assert self.points <= self.limit, f"tested more than {self.limit} points"


def count_steps(monkeypatch: pytest.MonkeyPatch, limit: int) -> Steps:
    steps = Steps(limit)
    cells, contains = Area.cells, Area.contains

    def counted_cells(area: Area) -> Any:
        for cell in cells(area):
            steps.cell()
            yield cell

    def counted_contains(area: Area, lon: float, lat: float) -> bool:
        steps.point()
        return contains(area, lon, lat)

    monkeypatch.setattr(Area, "cells", counted_cells)
    monkeypatch.setattr(Area, "contains", counted_contains)
    return steps


#: Live things at the edges of the world as well as at home.
EDGES = [
    (180.0, 90.0), (-180.0, -90.0), (180.0, -90.0), (-180.0, 90.0), (179.9999, 0.0),
    (-179.9999, 0.0), (0.0, 89.9999), (0.0, -89.9999), (12.0, 84.8), (179.5, 85.2),
]  # fmt: skip


def spread_state() -> tuple[LiveState, list[Change]]:
    state = LiveState()
    changes = [reading(f"edge{k}", 1.0, lon, lat) for k, (lon, lat) in enumerate(EDGES)]
    changes += [
        reading(f"nl{k}", 2.0, 3.4 + (k % 40) * 0.09, 50.8 + (k // 40) * 0.11) for k in range(800)
    ]
    changes.append(alert("pole", 0.0, 90.0))
    for change in changes:
        state.apply(change)
    return state, changes


class Indexed(Harness):
    """A session whose subscriptions are filed in an index, as the hub does."""

    def __init__(self, state: LiveState) -> None:
        super().__init__()
        self.state = state
        self.session = Session("sid", "token-1", state, Limits())
        self.index: SubscriptionIndex[Subscription] = SubscriptionIndex()

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        changes = self.session.receive(text, self.now)
        for sub in changes.removed:
            self.index.remove(sub)
        for sub in changes.added:
            self.index.add(sub)


@pytest.mark.parametrize(
    "area",
    [
        {"bbox": WORLD},
        {"bbox": [-180, 80, 180, 90]},  # the north polar cap
        {"bbox": [-180, -90, 180, -80]},  # the south polar cap
        {"bbox": [179, -90, 180, 90]},  # the strip west of the antimeridian...
        {"bbox": [-180, -90, -179, 90]},  # ...and east of it: a box crossing it is two boxes
        {"center": [179.9, 85.0], "radius_m": 50_000},  # near the pole and the antimeridian
        {"center": [0.0, -85.0], "radius_m": 50_000},
        {"bbox": [3.3, 50.7, 7.3, 53.6]},  # the whole Netherlands
    ],
)
def test_a_large_area_costs_what_it_can_match_not_its_size(
    monkeypatch: pytest.MonkeyPatch, area: dict[str, Any]
) -> None:
    state, changes = spread_state()
    layers = frozenset({"sensors", "alerts"})
    wanted = Area.parse(area)
    expected = sorted(c.key for c in changes if wanted.contains(c.lon, c.lat) and c.layer in layers)
    h = Indexed(state)
    steps = count_steps(monkeypatch, limit=10_000)
    h.send({"type": "subscribe", "id": "big", "area": area, "layers": sorted(layers)})
    [snapshot] = h.take()
    assert [i["key"] for i in snapshot["items"]] == expected
    # A snapshot walks the occupied cells at most and tests each live thing once at most;
    # the index files a large area in its list without walking a cell.
    assert steps.cells <= state.occupied_cells <= len(state)
    assert steps.points <= len(state)
    sub = h.session.subscriptions["big"]
    for lon, lat in EDGES:
        if wanted.contains(lon, lat):
            assert sub in set(h.index.candidates(lon, lat))


def test_moving_between_huge_areas_stays_bounded_and_sends_the_latest_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, changes = spread_state()
    h = Indexed(state)
    steps = count_steps(monkeypatch, limit=10_000)
    h.send({"type": "subscribe", "id": "big", "area": {"bbox": WORLD}})
    [snapshot] = h.take()
    assert len(snapshot["items"]) == len(changes)  # every live thing
    steps.reset()
    for _ in range(50):  # a client repeating moves faster than it reads
        h.send({"type": "move", "id": "big", "bbox": [-180, 80, 180, 90]})
        h.send({"type": "move", "id": "big", "bbox": WORLD})
    assert steps.cells == 0  # filing and unfiling huge areas walks no cell
    assert steps.points == 0  # and no snapshot is made until one is sent
    [moved] = h.take()  # one snapshot, of the latest area
    assert (moved["seq"], moved["reason"]) == (2, "move")
    assert len(moved["items"]) == len(changes)
    assert steps.points <= len(state)
    assert len(h.index) == 1
    h.publish(reading("edge0", 5.0, 180.0, 90.0, t=1))
    [update] = h.take()
    assert [i["key"] for i in update["items"]] == ["sensor:edge0:no2"]


def test_a_subscription_replaced_or_unsubscribed_before_its_snapshot_went_out_gets_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    count_steps(monkeypatch, limit=10_000)
    h.publish(reading("a", 1.0))
    h.send({"type": "subscribe", "id": "s1", "area": {"bbox": WORLD}})
    h.send({"type": "subscribe", "id": "s1", "area": {"center": [LON, LAT], "radius_m": 50}})
    h.send({"type": "subscribe", "id": "s2", "area": {"bbox": WORLD}})
    h.send({"type": "unsubscribe", "id": "s2"})
    messages = h.take()
    assert [(m["seq"], m["type"], m["id"]) for m in messages] == [
        (1, "snapshot", "s1"),
        (2, "unsubscribed", "s2"),
    ]
    assert [i["key"] for i in messages[0]["items"]] == ["sensor:a:no2"]


def test_the_live_state_keeps_only_occupied_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    state = LiveState()
    count_steps(monkeypatch, limit=10_000)
    for t in range(50):  # a mobile sensor crossing 50 cells
        state.apply(reading("bus", 1.0, LON + t * 0.01, LAT, t=t))
    state.apply(reading("still", 1.0))
    assert (len(state), state.occupied_cells) == (2, 2)
    state.apply(alert("gone", LON, LAT + 0.1))
    state.apply(alert("gone", LON, LAT + 0.1, status="resolved", t=1))
    assert (len(state), state.occupied_cells) == (2, 2)
    everything = state.items_in(Area.box(*WORLD), frozenset({"sensors"}))
    assert [c.key for c in everything] == ["sensor:bus:no2", "sensor:still:no2"]
