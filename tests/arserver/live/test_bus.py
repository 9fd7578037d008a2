"""The event buses on their own: ``LocalBus`` in one process, ``RedisBus`` through the real
Redis between instances that stand for separate processes."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis

from arserver.domain import Change
from arserver.live.bus import BusError, LocalBus, RedisBus
from tests.support import wait_until

LON, LAT = 4.9, 52.37


def reading(sensor: str, value: float, t: int = 0) -> Change:
    return Change(
        "sensors", f"sensor:{sensor}:no2", "no2", LON, LAT, None,
        time=f"2026-11-28T10:00:{t:02d}.000000+00:00",
        data={"sensor": sensor, "value": value, "unit": "ug/m3"},
    )  # fmt: skip


class Recorder:
    """A listener that keeps every call (from any thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Change], str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, changes: Sequence[Change], position: str | None) -> None:
        with self._lock:
            self.calls.append((list(changes), position))

    def batches(self) -> list[tuple[list[Change], str | None]]:
        with self._lock:
            return list(self.calls)

    def wait_for(self, count: int, what: str) -> list[tuple[list[Change], str | None]]:
        def enough() -> list[tuple[list[Change], str | None]] | None:
            batches = self.batches()
            return batches if len(batches) >= count else None

        return wait_until(enough, 5.0, what)


# -- LocalBus ---------------------------------------------------------------------------


def test_local_publish_calls_every_listener_with_the_batch_and_no_position() -> None:
    bus = LocalBus()
    first, second = Recorder(), Recorder()
    bus.subscribe(first)
    bus.subscribe(second)
    batch = [reading("a", 1.0), reading("b", 2.0)]
    bus.publish(batch)
    assert first.calls == [(batch, None)]
    assert second.calls == [(batch, None)]
    assert bus.position() is None
    assert bus.replay("0-0") == []


def test_local_unsubscribe_stops_delivery_to_that_listener_only() -> None:
    bus = LocalBus()
    gone, stays = Recorder(), Recorder()
    unsubscribe = bus.subscribe(gone)
    bus.subscribe(stays)
    bus.publish([reading("a", 1.0)])
    unsubscribe()
    unsubscribe()  # a second call is harmless
    bus.publish([reading("a", 2.0, t=1)])
    assert [c[0][0].data["value"] for c in gone.calls] == [1.0]
    assert [c[0][0].data["value"] for c in stays.calls] == [1.0, 2.0]


def test_a_failing_listener_is_logged_and_neither_stops_the_others_nor_the_publisher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = LocalBus()
    before, after = Recorder(), Recorder()

    def broken(changes: Sequence[Change], position: str | None) -> None:
        raise RuntimeError("hub exploded")

    bus.subscribe(before)
    bus.subscribe(broken)
    bus.subscribe(after)
    batch = [reading("a", 1.0)]
    with caplog.at_level(logging.ERROR, logger="arserver.live.bus"):
        bus.publish(batch)  # does not raise
    assert before.calls == [(batch, None)]
    assert after.calls == [(batch, None)]
    [record] = [r for r in caplog.records if r.name == "arserver.live.bus"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "a live listener failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_local_empty_batches_are_not_delivered_and_close_drops_every_listener() -> None:
    bus = LocalBus()
    listener = Recorder()
    bus.subscribe(listener)
    bus.publish([])
    assert listener.calls == []
    bus.close()
    bus.publish([reading("a", 1.0)])
    assert listener.calls == []


# -- RedisBus ---------------------------------------------------------------------------


@pytest.fixture
def stream() -> str:
    return f"test:live:{uuid.uuid4().hex}"


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def open_bus(redis_url: str, stream: str, raw: redis.Redis) -> Iterator[Callable[[], RedisBus]]:
    """Makes RedisBus instances on the test's stream (each stands for one process); closes
    them afterwards."""
    opened: list[RedisBus] = []

    def make() -> RedisBus:
        bus = RedisBus(redis_url, stream=stream)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        close_promptly(bus, raw)


def close_promptly(bus: RedisBus, raw: redis.Redis) -> None:
    """``close`` waits for the reader's XREAD (blocking up to 1 s) to return: append empty
    entries meanwhile so that it returns at once."""
    closing = threading.Thread(target=bus.close)
    closing.start()

    def closed() -> bool:
        if closing.is_alive():
            raw.xadd(bus.stream, {"c": "[]"})
            closing.join(0.01)
        return not closing.is_alive()

    wait_until(closed, 10.0, "closing the bus")


def entry_ids(raw: redis.Redis, stream: str) -> list[str]:
    entries: Any = raw.xrange(stream)
    return [entry_id.decode() for entry_id, _ in entries]


def test_a_batch_reaches_a_subscriber_of_another_instance_with_its_stream_position(
    open_bus: Callable[[], RedisBus], raw: redis.Redis, stream: str
) -> None:
    publisher, follower = open_bus(), open_bus()
    received = Recorder()
    follower.subscribe(received)
    batch = [reading("a", 1.5), reading("b", 2.5, t=1)]
    publisher.publish(batch)
    [(changes, position)] = received.wait_for(1, "the batch arriving")
    assert changes == batch  # every field survives the JSON round trip
    assert position == entry_ids(raw, stream)[0]


def test_the_publisher_hears_its_own_batches_in_the_one_stream_order(
    open_bus: Callable[[], RedisBus], raw: redis.Redis, stream: str
) -> None:
    one, other = open_bus(), open_bus()
    heard = Recorder()
    one.subscribe(heard)
    one.publish([reading("a", 1.0)])
    other.publish([reading("b", 2.0)])
    one.publish([reading("c", 3.0)])
    calls = heard.wait_for(3, "three batches")
    assert [(c[0][0].key, c[1]) for c in calls] == list(
        zip(["sensor:a:no2", "sensor:b:no2", "sensor:c:no2"], entry_ids(raw, stream), strict=True)
    )


def test_position_is_where_following_started_and_earlier_batches_are_not_delivered(
    open_bus: Callable[[], RedisBus], raw: redis.Redis, stream: str
) -> None:
    bus = open_bus()
    assert bus.position() is None  # not following yet
    fresh = open_bus()
    fresh.subscribe(Recorder())
    assert fresh.position() == "0-0"  # an empty stream: from its beginning
    bus.publish([reading("old", 1.0)])
    [old_id] = entry_ids(raw, stream)
    received = Recorder()
    bus.subscribe(received)
    assert bus.position() == old_id
    bus.subscribe(Recorder())  # a second listener does not move the start
    assert bus.position() == old_id
    bus.publish([reading("new", 2.0)])
    [(changes, position)] = received.wait_for(1, "the new batch")
    assert [c.key for c in changes] == ["sensor:new:no2"]
    assert position == entry_ids(raw, stream)[1]


def test_replay_returns_the_batches_after_a_position_oldest_first(
    open_bus: Callable[[], RedisBus], raw: redis.Redis, stream: str
) -> None:
    bus = open_bus()
    batches = [[reading("a", 1.0)], [reading("b", 2.0), reading("c", 3.0)], [reading("a", 4.0)]]
    for batch in batches:
        bus.publish(batch)
    ids = entry_ids(raw, stream)
    assert bus.replay(ids[0]) == [(ids[1], batches[1]), (ids[2], batches[2])]
    assert bus.replay("0-0") == list(zip(ids, batches, strict=True))
    assert bus.replay(ids[2]) == []
    assert open_bus().replay(ids[1]) == [(ids[2], batches[2])]  # any instance can replay


def test_a_malformed_entry_is_skipped_with_a_warning_and_the_reader_goes_on(
    open_bus: Callable[[], RedisBus],
    raw: redis.Redis,
    stream: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = open_bus()
    received = Recorder()
    bus.subscribe(received)
    with caplog.at_level(logging.WARNING, logger="arserver.live.bus"):
        raw.xadd(stream, {"c": "not json"})
        raw.xadd(stream, {"other": "[]"})  # no payload field
        raw.xadd(stream, {"c": '[{"layer": "sensors"}]'})  # not a Change
        bad = entry_ids(raw, stream)
        good = [reading("a", 1.0)]
        bus.publish(good)
        good_id = entry_ids(raw, stream)[-1]
        wait_until(lambda: any(changes for changes, _ in received.batches()), 5.0, "the good batch")
        # A malformed entry carries no change (its position may still be passed on).
        assert [(changes, position) for changes, position in received.batches() if changes] == [
            (good, good_id)
        ]
        assert all(position in bad for changes, position in received.batches() if not changes)
        assert bus.replay("0-0") == [(bad[0], []), (bad[1], []), (bad[2], []), (good_id, good)]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for entry_id in bad:
        assert f"ignoring a malformed live event {entry_id}" in warned
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_failing_listener_does_not_stop_the_reader(
    open_bus: Callable[[], RedisBus], caplog: pytest.LogCaptureFixture
) -> None:
    bus = open_bus()
    received = Recorder()

    def broken(changes: Sequence[Change], position: str | None) -> None:
        raise RuntimeError("hub exploded")

    bus.subscribe(broken)
    bus.subscribe(received)
    with caplog.at_level(logging.ERROR, logger="arserver.live.bus"):
        bus.publish([reading("a", 1.0)])
        bus.publish([reading("a", 2.0, t=1)])
        calls = received.wait_for(2, "both batches")
    assert [c[0][0].data["value"] for c in calls] == [1.0, 2.0]
    failures = [r for r in caplog.records if r.getMessage() == "a live listener failed"]
    assert len(failures) == 2
    assert all(r.exc_info is not None for r in failures)


def test_unsubscribe_stops_delivery_and_an_empty_batch_is_not_appended(
    open_bus: Callable[[], RedisBus], raw: redis.Redis, stream: str
) -> None:
    bus = open_bus()
    gone, stays = Recorder(), Recorder()
    unsubscribe = bus.subscribe(gone)
    bus.subscribe(stays)
    bus.publish([])
    assert raw.xlen(stream) == 0
    bus.publish([reading("a", 1.0)])
    stays.wait_for(1, "the first batch")
    wait_until(lambda: gone.batches(), 5.0, "the first batch for the listener that leaves")
    unsubscribe()
    bus.publish([reading("a", 2.0, t=1)])
    stays.wait_for(2, "the second batch")
    assert [c[0][0].data["value"] for c in gone.batches()] == [1.0]


def test_close_stops_the_reader_thread(redis_url: str, stream: str, raw: redis.Redis) -> None:
    bus = RedisBus(redis_url, stream=stream)
    bus.subscribe(Recorder())
    reader = bus._reader
    assert reader is not None
    assert reader.is_alive()
    started = time.monotonic()
    bus.close()  # the reader's XREAD blocks for at most 1 s
    assert not reader.is_alive()
    assert time.monotonic() - started < 2.0


def test_close_without_a_subscriber_returns_at_once(redis_url: str, stream: str) -> None:
    bus = RedisBus(redis_url, stream=stream)
    bus.publish([reading("a", 1.0)])
    started = time.monotonic()
    bus.close()
    assert time.monotonic() - started < 0.5


def test_an_unreachable_redis_is_a_bus_error_at_construction() -> None:
    url = "redis://:s3cret-pass@127.0.0.1:1/0"
    with pytest.raises(BusError, match=r"^cannot reach Redis at 127\.0\.0\.1:1: ") as e:
        RedisBus(url)
    assert isinstance(e.value.__cause__, redis.ConnectionError)
    assert "s3cret-pass" not in str(e.value)  # the address, never its password
