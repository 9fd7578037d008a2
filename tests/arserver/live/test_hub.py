"""The live hub without HTTP: fake connections in memory, changes through a ``LocalBus``, and
the exact messages each client is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from arserver.domain import Change
from arserver.live.bus import LocalBus, RedisBus, token_revocations
from arserver.live.hub import Hub
from arserver.live.mirror import RedisSessionMirror
from arserver.live.protocol import (
    CLOSE_SESSION_TAKEN,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOKEN_REVOKED,
    CLOSE_UNAUTHORISED,
    Limits,
)
from tests.arserver.live.test_protocol import EDGES, WORLD, count_steps

pytestmark = pytest.mark.anyio

LON, LAT = 4.9, 52.37
BBOX = [4.89, 52.36, 4.91, 52.38]
TIMEOUT = 2.0  # for each awaited message: the hub answers in milliseconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def reading(sensor: str, value: float, t: int = 0, lon: float = LON, lat: float = LAT) -> Change:
    return Change(
        "sensors", f"sensor:{sensor}:no2", "no2", lon, lat, 2.0,
        time=f"2026-11-28T10:00:{t:02d}.000000+00:00",
        data={"sensor": sensor, "value": value, "unit": "ug/m3"},
    )  # fmt: skip


def alert(alert_id: str, t: int = 0) -> Change:
    return Change(
        "alerts", f"alert:{alert_id}", "no2", LON, LAT, 2.0,
        time=f"2026-11-28T10:00:{t:02d}.000000+00:00",
        data={"alert": alert_id, "status": "open"},
    )  # fmt: skip


def item(change: Change) -> dict[str, Any]:
    """The item a WGS 84 subscription receives for ``change``."""
    rendered: dict[str, Any] = {
        "key": change.key,
        "layer": change.layer,
        "kind": change.kind,
        "time": change.time,
        "position": [change.lon, change.lat, change.h],
        "data": change.data,
    }
    if change.removed:
        rendered["removed"] = True
    return rendered


def subscribe_message(sub_id: str = "a", **extra: Any) -> dict[str, Any]:
    return {
        "type": "subscribe", "id": sub_id, "area": {"bbox": BBOX}, "layers": ["sensors"],
        "max_rate_hz": None, **extra,
    }  # fmt: skip


class FakeConnection:
    """A client socket in memory. ``stall_after``: sends after that many messages never
    complete (a client that stopped reading); ``close_blocks``: the close frame is never
    taken either."""

    def __init__(self, stall_after: int | None = None, close_blocks: bool = False) -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.closed_event = asyncio.Event()
        self.stalled = asyncio.Event()  # set once a send hangs
        self.stall_after = stall_after
        self.close_blocks = close_blocks
        self._arrived = asyncio.Condition()
        self._read = 0

    # -- the hub's side (the Connection protocol) ---------------------------------------

    async def receive_text(self) -> str | None:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        if self.stall_after is not None and len(self.sent) >= self.stall_after:
            self.stalled.set()
            await asyncio.Event().wait()  # never completes; the hub must cancel it
        async with self._arrived:
            self.sent.append(json.loads(text))
            self._arrived.notify_all()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.closed_event.set()
        if self.close_blocks:
            await asyncio.Event().wait()

    # -- the test's side ----------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(json.dumps(message))

    def leave(self) -> None:
        self.inbox.put_nowait(None)

    async def next(self) -> dict[str, Any]:
        """The next message the hub sent that the test has not read yet."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.sent) > self._read), TIMEOUT
            )
        message = self.sent[self._read]
        self._read += 1
        return message

    def unread(self) -> list[dict[str, Any]]:
        return self.sent[self._read :]


class Running:
    """A started hub on a LocalBus, with the clients it serves."""

    def __init__(self, hub: Hub, bus: LocalBus) -> None:
        self.hub = hub
        self.bus = bus
        self.tasks: list[asyncio.Task[None]] = []

    def connect(
        self,
        connection: FakeConnection | None = None,
        owner: str = "token-1",
        resume: tuple[str, int] | None = None,
        authenticated_at: float | None = None,
    ) -> FakeConnection:
        connection = connection or FakeConnection()
        served = self.hub.serve(connection, owner, resume, authenticated_at=authenticated_at)
        self.tasks.append(asyncio.create_task(served))
        return connection

    async def subscribed(
        self, connection: FakeConnection | None = None, **extra: Any
    ) -> tuple[FakeConnection, str, dict[str, Any]]:
        """A connected client with one subscription: (connection, session id, snapshot)."""
        connection = self.connect(connection)
        welcome = await connection.next()
        assert welcome["type"] == "welcome"
        connection.send(subscribe_message(**extra))
        snapshot = await connection.next()
        assert snapshot["type"] == "snapshot"
        return connection, welcome["session"], snapshot

    async def ended(self, index: int = -1) -> None:
        """Wait for a connection's ``serve`` to return."""
        await asyncio.wait_for(asyncio.shield(self.tasks[index]), TIMEOUT)


async def start(
    current: tuple[Change, ...] = (), limits: Limits | None = None, **options: Any
) -> Running:
    bus = LocalBus()
    options.setdefault("flush_interval_s", 0.0)
    hub = Hub(limits, **options)
    await hub.start(bus, current)
    return Running(hub, bus)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    hub = await start()
    yield hub
    await stop(hub)


async def stop(running: Running) -> None:
    for task in running.tasks:
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
    await running.hub.stop()
    running.bus.close()


async def test_a_subscription_gets_a_snapshot_then_updates_with_increasing_seq() -> None:
    current = (
        reading("b", 2.0),
        reading("a", 1.0),
        reading("far", 9.0, lon=4.95),  # outside the box
        alert("x"),  # another layer
    )
    running = await start(current)
    try:
        connection = running.connect()
        welcome = await connection.next()
        assert welcome == {
            "type": "welcome",
            "session": welcome["session"],
            "last_seq": 0,
            "retention_s": 120.0,
            "max_queue_bytes": 1_000_000,
        }
        connection.send(subscribe_message())
        assert await connection.next() == {
            "seq": 1, "type": "snapshot", "id": "a", "reason": "subscribe", "frame": "wgs84",
            "items": [item(current[1]), item(current[0])],
        }  # fmt: skip
        first = reading("a", 3.0, t=1)
        running.bus.publish([first])
        assert await connection.next() == {
            "seq": 2,
            "type": "update",
            "id": "a",
            "items": [item(first)],
        }
        second = [reading("c", 4.0, t=2), reading("b", 5.0, t=2)]
        running.bus.publish(second)
        assert await connection.next() == {
            "seq": 3,
            "type": "update",
            "id": "a",
            "items": [item(c) for c in second],
        }
        assert connection.unread() == []
        assert running.hub.last_event_id is None  # the local bus has no positions
    finally:
        await stop(running)


async def test_changes_outside_the_area_or_of_other_layers_are_not_delivered(
    running: Running,
) -> None:
    connection, _, snapshot = await running.subscribed()
    assert snapshot["items"] == []
    wanted = reading("in", 1.0)
    running.bus.publish(
        [
            reading("west", 1.0, lon=4.885),
            reading("north", 1.0, lat=52.385),
            alert("in-the-box"),  # in the area, not on a subscribed layer
            Change("parking", "sensor:bay:parking_bay", "parking_bay", LON, LAT, None, "t"),
        ]
    )
    running.bus.publish([wanted])
    # Had any of the others been queued, it would be in this update or before it.
    assert await connection.next() == {
        "seq": 2,
        "type": "update",
        "id": "a",
        "items": [item(wanted)],
    }
    assert running.hub.stats.changes_dispatched == 5  # all went into the live state


async def test_each_subscription_gets_only_what_it_asked_for(running: Running) -> None:
    connection, _, _ = await running.subscribed()
    connection.send(
        subscribe_message("alerts", layers=["alerts"], area={"center": [LON, LAT], "radius_m": 50})
    )
    assert (await connection.next())["type"] == "snapshot"
    near, far = alert("near"), reading("s", 1.0)
    running.bus.publish([near, far])
    updates = {m["id"]: m for m in (await connection.next(), await connection.next())}
    assert updates == {
        "a": {"seq": updates["a"]["seq"], "type": "update", "id": "a", "items": [item(far)]},
        "alerts": {
            "seq": updates["alerts"]["seq"], "type": "update", "id": "alerts",
            "items": [item(near)],
        },
    }  # fmt: skip
    assert sorted(m["seq"] for m in updates.values()) == [3, 4]


async def test_a_kinds_filter_treats_a_thing_without_a_kind_alike_in_snapshots_and_updates() -> (
    None
):
    untyped = Change(
        "annotations", "annotation:n1", None, LON, LAT, None,
        "2026-11-28T10:00:00.000000+00:00", {"text": "loose paving"},
    )  # fmt: skip
    running = await start((untyped,))
    try:
        connection, _, snapshot = await running.subscribed(
            layers=["sensors", "annotations"], kinds=["no2"]
        )
        edited = dataclasses.replace(
            untyped, time="2026-11-28T10:00:01.000000+00:00", data={"text": "fixed"}
        )
        running.bus.publish([edited, reading("a", 1.0)])  # the reading: an update either way
        update = await connection.next()
        assert update["type"] == "update"
        in_snapshot = untyped.key in [i["key"] for i in snapshot["items"]]
        in_update = untyped.key in [i["key"] for i in update["items"]]
        assert in_snapshot == in_update
    finally:
        await stop(running)


async def test_several_changes_of_a_key_before_a_flush_reach_the_client_as_the_newest() -> None:
    running = await start(flush_interval_s=0.05)
    try:
        connection, _, _ = await running.subscribed()
        # Published back to back: every dispatch runs before the writer wakes.
        running.bus.publish([reading("a", 1.0, t=1)])
        running.bus.publish([reading("a", 2.0, t=2), reading("b", 7.0, t=2)])
        running.bus.publish([reading("a", 3.0, t=3)])
        running.bus.publish([reading("a", 0.5, t=0)])  # older than the state: news to no one
        assert await connection.next() == {
            "seq": 2, "type": "update", "id": "a",
            "items": [item(reading("b", 7.0, t=2)), item(reading("a", 3.0, t=3))],
        }  # fmt: skip
        assert running.hub.stats.changes_dispatched == 4  # the stale one is not counted
        assert running.hub.state.get("sensor:a:no2") == reading("a", 3.0, t=3)
    finally:
        await stop(running)


async def test_a_rate_limited_key_is_sent_when_due_without_another_event(
    running: Running,
) -> None:
    connection, _, _ = await running.subscribed(max_rate_hz=20)  # one per 50 ms and key
    running.bus.publish([reading("a", 1.0, t=1)])
    assert (await connection.next())["items"] == [item(reading("a", 1.0, t=1))]
    running.bus.publish([reading("a", 2.0, t=2)])
    running.bus.publish([reading("a", 3.0, t=3)])
    # Held back by the rate, then flushed by the hub's timer: conflated to the newest.
    assert await connection.next() == {
        "seq": 3,
        "type": "update",
        "id": "a",
        "items": [item(reading("a", 3.0, t=3))],
    }


async def test_a_client_whose_sends_stall_is_closed_with_4008_and_the_others_go_on() -> None:
    running = await start(send_timeout_s=0.2)
    try:
        reader, _, _ = await running.subscribed()
        stalled, _, _ = await running.subscribed(FakeConnection(stall_after=2))
        assert running.hub.stats.connections == 2
        assert running.hub.stats.sessions == 2
        running.bus.publish([reading("a", 1.0, t=1)])  # the stalled client's send never ends
        assert (await reader.next())["items"] == [item(reading("a", 1.0, t=1))]
        await asyncio.wait_for(stalled.closed_event.wait(), TIMEOUT)
        assert stalled.closed == (CLOSE_SLOW_CONSUMER, "sending to the client stalled")
        assert [m["type"] for m in stalled.sent] == ["welcome", "snapshot"]
        await running.ended(index=1)
        stats = running.hub.stats
        assert (stats.slow_consumers_closed, stats.connections, stats.sessions) == (1, 1, 1)
        running.bus.publish([reading("a", 2.0, t=2)])
        assert await reader.next() == {
            "seq": 3,
            "type": "update",
            "id": "a",
            "items": [item(reading("a", 2.0, t=2))],
        }
    finally:
        await stop(running)


async def test_a_stalled_client_that_never_takes_the_close_frame_is_still_let_go() -> None:
    running = await start(send_timeout_s=0.2)
    try:
        stalled, _, _ = await running.subscribed(FakeConnection(stall_after=2, close_blocks=True))
        running.bus.publish([reading("a", 1.0, t=1)])
        await running.ended()  # within send_timeout_s of the close
        assert stalled.closed == (CLOSE_SLOW_CONSUMER, "sending to the client stalled")
        assert running.hub.stats.slow_consumers_closed == 1
        assert running.hub.stats.connections == 0
    finally:
        await stop(running)


async def test_a_session_whose_queue_overflows_is_closed_with_4008() -> None:
    running = await start(limits=Limits(max_queue_bytes=2_000))
    try:
        fine, _, _ = await running.subscribed(area={"bbox": [4.0, 52.0, 4.5, 52.2]})
        greedy, _, _ = await running.subscribed()
        running.bus.publish([reading(f"s{k}", float(k)) for k in range(20)])  # ~4 kB of items
        await running.ended()
        assert greedy.closed == (
            CLOSE_SLOW_CONSUMER, "the client did not keep up with its updates"
        )  # fmt: skip
        assert [m["type"] for m in greedy.sent] == ["welcome", "snapshot"]
        assert running.hub.stats.slow_consumers_closed == 1
        assert running.hub.stats.sessions == 1
        fine.send({"type": "ping", "data": 7})
        assert await fine.next() == {"type": "pong", "data": 7}
    finally:
        await stop(running)


async def test_a_resumed_session_replays_what_was_missed_then_what_came_meanwhile(
    running: Running,
) -> None:
    first, session_id, _ = await running.subscribed()
    running.bus.publish([reading("a", 1.0, t=1)])
    update2 = await first.next()
    running.bus.publish([reading("b", 2.0, t=2)])
    update3 = await first.next()
    assert (update2["seq"], update3["seq"]) == (2, 3)
    first.leave()
    await running.ended()
    assert running.hub.stats.connections == 0
    assert running.hub.stats.sessions == 1  # kept for retention_s
    running.bus.publish([reading("c", 3.0, t=3)])  # while detached
    running.bus.publish([reading("c", 4.0, t=4)])

    second = running.connect(resume=(session_id, 1))  # the client saw only the snapshot
    assert await second.next() == {
        "type": "welcome", "session": session_id, "last_seq": 3, "retention_s": 120.0,
        "max_queue_bytes": 1_000_000, "recovered": True,
    }  # fmt: skip
    assert await second.next() == update2
    assert await second.next() == update3
    assert await second.next() == {
        "seq": 4,
        "type": "update",
        "id": "a",
        "items": [item(reading("c", 4.0, t=4))],
    }
    running.bus.publish([reading("a", 5.0, t=5)])
    assert (await second.next())["seq"] == 5
    assert running.hub.stats.sessions == 1


async def test_a_resume_past_what_the_session_remembers_gets_fresh_snapshots() -> None:
    running = await start((reading("a", 0.0),), limits=Limits(history_max_bytes=400))
    try:
        first, session_id, _ = await running.subscribed()
        for t in range(1, 5):
            running.bus.publish([reading("a", float(t), t=t)])
            assert (await first.next())["seq"] == t + 1
        first.leave()
        await running.ended()
        second = running.connect(resume=(session_id, 1))  # seq 2 is forgotten already
        welcome = await second.next()
        assert (welcome["session"], welcome["last_seq"], welcome["recovered"]) == (
            session_id, 5, False
        )  # fmt: skip
        assert await second.next() == {
            "seq": 6, "type": "snapshot", "id": "a", "reason": "resume", "frame": "wgs84",
            "items": [item(reading("a", 4.0, t=4))],
        }  # fmt: skip
    finally:
        await stop(running)


async def test_a_resume_that_cannot_be_honoured_starts_a_new_session(running: Running) -> None:
    first, session_id, _ = await running.subscribed()
    first.leave()
    await running.ended()
    for owner, resume in (("token-2", (session_id, 1)), ("token-1", ("no-such-session", 0))):
        other = running.connect(owner=owner, resume=resume)
        welcome = await other.next()
        assert welcome["recovered"] is False
        assert welcome["session"] not in (session_id, "no-such-session")
        assert welcome["last_seq"] == 0
    assert running.hub.stats.sessions == 3


async def test_a_detached_session_is_forgotten_after_its_retention() -> None:
    running = await start(limits=Limits(retention_s=0.05), send_timeout_s=0.2)
    try:
        first, session_id, _ = await running.subscribed()
        first.leave()
        await running.ended()
        assert running.hub.stats.sessions == 1
        await asyncio.wait_for(_until(lambda: running.hub.stats.sessions == 0), TIMEOUT)
        assert len(running.hub.index) == 0
        welcome = await running.connect(resume=(session_id, 1)).next()
        assert (welcome["recovered"], welcome["session"] != session_id) == (False, True)
    finally:
        await stop(running)


async def test_resuming_on_a_new_connection_closes_the_old_one_with_4009(
    running: Running,
) -> None:
    old, session_id, _ = await running.subscribed()
    new = running.connect(resume=(session_id, 1))
    welcome = await new.next()
    assert (welcome["session"], welcome["recovered"]) == (session_id, True)
    await asyncio.wait_for(old.closed_event.wait(), TIMEOUT)
    assert old.closed == (CLOSE_SESSION_TAKEN, "resumed elsewhere")
    await running.ended(index=0)
    assert running.hub.stats.connections == 1
    running.bus.publish([reading("a", 1.0, t=1)])
    assert await new.next() == {
        "seq": 2,
        "type": "update",
        "id": "a",
        "items": [item(reading("a", 1.0, t=1))],
    }
    assert old.unread() == []


async def test_a_resume_takes_over_from_a_stalled_connection_without_gap_or_duplicate() -> None:
    running = await start(send_timeout_s=0.2)
    try:
        old, session_id, _ = await running.subscribed(FakeConnection(stall_after=2))
        change = reading("a", 1.0, t=1)
        running.bus.publish([change])  # taken as seq 2; its send to the old socket stalls
        await asyncio.wait_for(old.stalled.wait(), TIMEOUT)
        new = running.connect(resume=(session_id, 1))
        welcome = await new.next()
        assert (welcome["session"], welcome["last_seq"], welcome["recovered"]) == (
            session_id, 2, True
        )  # fmt: skip
        assert await new.next() == {"seq": 2, "type": "update", "id": "a", "items": [item(change)]}
        await asyncio.wait_for(old.closed_event.wait(), TIMEOUT)
        assert old.closed == (CLOSE_SESSION_TAKEN, "resumed elsewhere")
        await running.ended(index=0)
        later = reading("a", 2.0, t=2)
        running.bus.publish([later])
        assert await new.next() == {"seq": 3, "type": "update", "id": "a", "items": [item(later)]}
        # The old connection's stalled send does not count against the new one.
        assert session_id not in running.hub._sending
        assert running.hub.stats.slow_consumers_closed == 0
    finally:
        await stop(running)


async def test_unsubscribe_confirms_and_takes_the_subscription_out_of_the_index(
    running: Running,
) -> None:
    connection, _, _ = await running.subscribed()
    assert len(running.hub.index) == 1
    connection.send({"type": "unsubscribe", "id": "a"})
    assert await connection.next() == {"seq": 2, "type": "unsubscribed", "id": "a"}
    assert len(running.hub.index) == 0
    running.bus.publish([reading("a", 1.0, t=1)])
    connection.send({"type": "ping", "data": None})
    # An update queued before the ping would go out in the same flush, right after the pong.
    assert await connection.next() == {"type": "pong", "data": None}
    assert connection.unread() == []


async def test_a_removed_thing_is_sent_as_removed_and_leaves_later_snapshots(
    running: Running,
) -> None:
    connection, _, _ = await running.subscribed(layers=["alerts"])
    opened = alert("x", t=1)
    resolved = Change(
        "alerts", "alert:x", "no2", LON, LAT, 2.0, "2026-11-28T10:00:02.000000+00:00",
        {"alert": "x", "status": "resolved"}, removed=True,
    )  # fmt: skip
    running.bus.publish([opened])
    assert (await connection.next())["items"] == [item(opened)]
    running.bus.publish([resolved])
    update = await connection.next()
    assert update["items"] == [item(resolved)]
    assert update["items"][0]["removed"] is True
    assert running.hub.state.get("alert:x") is None
    connection.send(subscribe_message("again", layers=["alerts"]))
    assert (await connection.next())["items"] == []


async def test_changes_published_from_another_thread_reach_the_hub_loop(
    running: Running,
) -> None:
    connection, _, _ = await running.subscribed()
    change = reading("a", 1.0, t=1)
    await asyncio.to_thread(running.bus.publish, [change])  # as a write path in a worker
    assert await connection.next() == {
        "seq": 2,
        "type": "update",
        "id": "a",
        "items": [item(change)],
    }


async def test_the_hub_follows_the_redis_bus_positions(redis_url: str) -> None:
    import redis

    from tests.arserver.live.test_bus import close_promptly

    bus = RedisBus(redis_url, stream=f"test:live:{uuid.uuid4().hex}")
    raw = redis.Redis.from_url(redis_url)
    hub = Hub(flush_interval_s=0.0)
    await hub.start(bus, ())
    running = Running(hub, LocalBus())
    try:
        assert hub.last_event_id == "0-0"  # following an empty stream from its start
        connection, _, _ = await running.subscribed()
        change = reading("a", 1.0, t=1)
        await asyncio.to_thread(bus.publish, [change])
        assert await connection.next() == {
            "seq": 2,
            "type": "update",
            "id": "a",
            "items": [item(change)],
        }
        entries: Any = raw.xrange(bus.stream)
        [(entry_id, _)] = entries
        assert hub.last_event_id == entry_id.decode()
    finally:
        await stop(running)
        await asyncio.to_thread(close_promptly, bus, raw)
        raw.close()


def test_a_hub_whose_loop_has_ended_ignores_the_bus() -> None:
    bus = LocalBus()

    async def main() -> Hub:
        hub = Hub()
        await hub.start(bus, ())
        return hub

    hub = asyncio.run(main())
    bus.publish([reading("a", 1.0)])  # the hub's listener must not raise into the publisher
    assert hub.state.get("sensor:a:no2") is None


async def test_stats_follow_connections_sessions_and_messages(running: Running) -> None:
    stats = running.hub.stats
    assert (stats.connections, stats.sessions, stats.messages_sent) == (0, 0, 0)
    one, _, _ = await running.subscribed()
    two, _, _ = await running.subscribed()
    assert (stats.connections, stats.sessions, stats.messages_sent) == (2, 2, 4)
    running.bus.publish([reading("a", 1.0), reading("b", 1.0)])
    await one.next()
    await two.next()
    assert (stats.changes_dispatched, stats.messages_sent) == (2, 6)
    one.leave()
    await running.ended(index=0)
    assert (stats.connections, stats.sessions) == (1, 2)  # the detached session is kept
    assert stats.slow_consumers_closed == 0


async def _until(condition: Any) -> None:
    """Yield to the loop until ``condition()`` holds (the caller bounds it with wait_for)."""
    while not condition():
        await asyncio.sleep(0.005)


# -- large areas --------------------------------------------------------------------------


async def test_a_whole_world_subscription_gets_everything_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current = tuple(
        reading(f"edge{k}", 1.0, lon=lon, lat=lat) for k, (lon, lat) in enumerate(EDGES)
    )
    current += (reading("home", 2.0), alert("x"))
    running = await start(current)
    steps = count_steps(monkeypatch, limit=10_000)  # the world has 2.6 billion cells
    try:
        near, _, _ = await running.subscribed()
        world = running.connect(owner="token-2")
        assert (await world.next())["type"] == "welcome"
        world.send({"type": "subscribe", "id": "w", "area": {"bbox": WORLD}, "max_rate_hz": None})
        snapshot = await world.next()
        assert snapshot["items"] == [item(c) for c in sorted(current, key=lambda c: c.key)]
        world.send(subscribe_message("marker"))
        assert (await world.next())["type"] == "snapshot"
        for _ in range(20):  # moves as fast as the client can send them
            world.send({"type": "move", "id": "w", "bbox": WORLD})
        world.send({"type": "unsubscribe", "id": "marker"})  # sequenced after the snapshots
        snapshots = 0
        while (message := await world.next())["type"] != "unsubscribed":
            assert (message["type"], message["id"], message["reason"]) == ("snapshot", "w", "move")
            assert len(message["items"]) == len(current)
            snapshots += 1
        assert 1 <= snapshots <= 20
        here, antimeridian = reading("home", 3.0, t=1), reading("edge0", 4.0, t=1, lon=180, lat=90)
        running.bus.publish([here, antimeridian])
        assert (await near.next())["items"] == [item(here)]
        assert (await world.next())["items"] == [item(here), item(antimeridian)]
        assert steps.cells <= 10_000
    finally:
        await stop(running)


# -- revocation ---------------------------------------------------------------------------


async def test_revoke_closes_a_tokens_connections_with_4003_and_forgets_its_sessions(
    running: Running,
) -> None:
    first, first_id, _ = await running.subscribed()
    second, _, _ = await running.subscribed()
    other = running.connect(owner="token-2")
    assert (await other.next())["type"] == "welcome"
    other.send(subscribe_message("o"))
    assert (await other.next())["type"] == "snapshot"
    away, _, _ = await running.subscribed()  # token-1 too, detached
    away.leave()
    await running.ended()
    assert running.hub.stats.sessions == 4
    assert running.hub.owners() == {"token-1", "token-2"}

    assert running.hub.revoke(["token-1", "token-9"]) == 2  # connections; the detached one goes too
    for connection in (first, second):
        await asyncio.wait_for(connection.closed_event.wait(), TIMEOUT)
        assert connection.closed == (CLOSE_TOKEN_REVOKED, "token revoked")
    await running.ended(index=0)
    await running.ended(index=1)
    assert [s.owner for s in running.hub.sessions.values()] == ["token-2"]
    assert len(running.hub.index) == 1
    assert running.hub.stats.revoked_closed == 2
    change = reading("a", 1.0, t=1)
    running.bus.publish([change])
    assert (await other.next())["items"] == [item(change)]
    assert first.unread() == second.unread() == []

    # The revoked token cannot resume, nor open a new session; another token starts afresh.
    again = running.connect(resume=(first_id, 1))
    await asyncio.wait_for(again.closed_event.wait(), TIMEOUT)
    assert (again.closed, again.sent) == ((CLOSE_TOKEN_REVOKED, "token revoked"), [])
    welcome = await running.connect(owner="token-2", resume=(first_id, 1)).next()
    assert (welcome["session"] != first_id, welcome["recovered"]) == (True, False)
    assert running.hub.revoke(["token-1"]) == 0


async def test_revoke_from_another_thread_is_done_on_the_hub_loop(running: Running) -> None:
    connection, _, _ = await running.subscribed()
    assert await asyncio.to_thread(running.hub.revoke, {"token-1"}) == 1
    await asyncio.wait_for(connection.closed_event.wait(), TIMEOUT)
    assert connection.closed == (CLOSE_TOKEN_REVOKED, "token revoked")
    assert running.hub.sessions == {}


async def test_revoke_closes_a_connection_whose_send_stalls_at_once() -> None:
    running = await start(send_timeout_s=3600.0)  # the sweeper would not close it in time
    try:
        stalled, _, _ = await running.subscribed(FakeConnection(stall_after=2))
        running.bus.publish([reading("a", 1.0, t=1)])
        await asyncio.wait_for(stalled.stalled.wait(), TIMEOUT)
        assert running.hub.revoke(["token-1"]) == 1
        await running.ended()
        assert stalled.closed == (CLOSE_TOKEN_REVOKED, "token revoked")
        assert running.hub.stats.slow_consumers_closed == 0
    finally:
        await stop(running)


async def test_a_revocation_on_the_bus_closes_connections_and_reaches_no_client(
    running: Running,
) -> None:
    revoked, _, _ = await running.subscribed(layers=None)
    other = running.connect(owner="token-2")
    assert (await other.next())["type"] == "welcome"
    other.send(subscribe_message("o", layers=None))
    assert (await other.next())["type"] == "snapshot"
    change = reading("a", 1.0, t=1)
    # From a write path's thread, in one batch with a change: the revocation goes first.
    await asyncio.to_thread(running.bus.publish, [change, *token_revocations(["token-1"])])
    await asyncio.wait_for(revoked.closed_event.wait(), TIMEOUT)
    assert revoked.closed == (CLOSE_TOKEN_REVOKED, "token revoked")
    assert revoked.unread() == []
    assert (await other.next())["items"] == [item(change)]
    assert running.hub.stats.changes_dispatched == 1
    assert running.hub.state.get("token:token-1") is None


class HeldMirror:
    """A session mirror whose ``seq_of`` waits until the test lets it go."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.answer = threading.Event()

    def record(self, session_id: str, meta: dict[str, Any], sent: Any) -> None:
        pass

    def seq_of(self, session_id: str) -> int | None:
        self.asked.set()
        self.answer.wait(TIMEOUT)
        return None

    def load(self, session_id: str) -> None:
        return None

    def close(self) -> None:
        pass


async def test_a_token_revoked_while_its_session_is_being_opened_is_refused() -> None:
    mirror = HeldMirror()
    running = await start(mirror=cast(RedisSessionMirror, mirror))
    try:
        first, session_id, _ = await running.subscribed()
        first.leave()
        await running.ended()
        resuming = running.connect(resume=(session_id, 1))  # asks the mirror, in a thread
        await asyncio.to_thread(mirror.asked.wait, TIMEOUT)
        assert running.hub.revoke(["token-1"]) == 0  # no connection yet: the session goes
        mirror.answer.set()
        await running.ended()
        assert (resuming.closed, resuming.sent) == ((CLOSE_TOKEN_REVOKED, "token revoked"), [])
        assert running.hub.sessions == {}
    finally:
        mirror.answer.set()
        await stop(running)


def test_revoke_before_the_hub_runs_refuses_the_token_later() -> None:
    hub = Hub(flush_interval_s=0.0)
    assert hub.revoke(["token-1"]) == 0

    async def main() -> tuple[int, str] | None:
        bus = LocalBus()
        await hub.start(bus, ())
        connection = FakeConnection()
        await asyncio.wait_for(hub.serve(connection, "token-1"), TIMEOUT)
        await hub.stop()
        return connection.closed

    assert asyncio.run(main()) == (CLOSE_TOKEN_REVOKED, "token revoked")


class ManualClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_revoked_token_ids_are_remembered_for_a_bounded_time_only() -> None:
    """Every token that expires with a connection open is revoked: the hub must not keep
    them all for the life of the process (authentication refuses them by then)."""
    clock = ManualClock()
    running = await start(revocation_memory_s=60.0, clock=clock)
    try:
        for n in range(100):
            running.hub.revoke([f"expired-{n}"])
            clock.now += 1.0
        assert running.hub.remembered_revocations == 59  # those of the last 60 s
        refused = running.connect(owner="expired-99", authenticated_at=clock())
        await running.ended()
        assert (refused.closed, refused.sent) == ((CLOSE_TOKEN_REVOKED, "token revoked"), [])
        running.hub.revoke(["expired-50"])  # again: remembered from now on
        clock.now += 59.0
        assert running.hub.remembered_revocations == 1
        clock.now += 1.0
        assert running.hub.remembered_revocations == 0
    finally:
        await stop(running)


async def test_a_connection_authenticated_before_a_forgotten_revocation_is_refused() -> None:
    clock = ManualClock()
    running = await start(revocation_memory_s=60.0, clock=clock)
    try:
        authenticated = clock()
        running.hub.revoke(["token-1"])
        clock.now += 61.0
        assert running.hub.remembered_revocations == 0
        late = running.connect(owner="token-1", authenticated_at=authenticated)
        await running.ended()
        assert (late.closed, late.sent) == ((CLOSE_UNAUTHORISED, "authenticate again"), [])
        assert running.hub.sessions == {}
        fresh = running.connect(owner="token-2", authenticated_at=clock())
        assert (await fresh.next())["type"] == "welcome"
    finally:
        await stop(running)
