"""The live protocol as a state machine: client messages and hub events in, server messages
out. No sockets, no asyncio, no clock of its own (callers pass ``now``, monotonic seconds), so
every rule below is unit-tested exactly. docs/live-protocol.md is the client's view.

A ``Session`` outlives its connection for ``retention_s``: while detached it keeps collecting
(conflated) updates, and it remembers what it sent, so a client that comes back with its session
id and last ``seq`` gets exactly what it missed.

Sequenced messages (``snapshot``, ``update``, ``enter``, ``leave``, ``unsubscribed``) carry the
connection's next ``seq`` when they are taken for sending; control messages (``welcome``,
``pong``, ``error``) carry none and are not replayed.

A snapshot is made when it is taken for sending, not when it is asked for, and a newer one for
the same subscription replaces one not sent yet: however many moves a client sends between two
sends, each subscription costs one snapshot (of its latest area), and a client that does not
read costs none.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from arserver.domain import LAYERS, Change
from arserver.errors import InputError
from arserver.live.area import Area, AreaError, distance_m
from arserver.live.frames import Frame, FrameError

#: Close codes (WebSocket application range), documented in docs/live-protocol.md.
CLOSE_SLOW_CONSUMER = 4008  # the client fell further behind than its queue allows
CLOSE_SESSION_TAKEN = 4009  # the session was resumed on another connection
CLOSE_UNAUTHORISED = 4001  # no valid token with a reading role
CLOSE_TOKEN_REVOKED = 4003  # the connection's token was revoked

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 16
DEFAULT_RATE_HZ = 2.0
MAX_RATE_HZ = 50.0
MAX_PROXIMITY_M = 2_000.0
PROXIMITY_LAYERS = frozenset({"alerts", "assets", "inspections", "annotations"})


@dataclass(frozen=True)
class Limits:
    """Per-session bounds. ``max_queue_bytes``: what may wait for a slow client after
    conflation before it is disconnected (code 4008). ``retention_s``: how long a detached
    session and the messages it sent are kept for a resume; ``history_max_bytes`` caps those
    messages (a resume that needs older ones is answered ``recovered: false``)."""

    max_queue_bytes: int = 1_000_000
    retention_s: float = 120.0
    # What a session remembers for a resume: 2,000 busy clients x 256 KiB is 0.5 GiB at most.
    history_max_bytes: int = 256 * 1024


class World(Protocol):
    """What a session may read of the hub: the live things in an area (for snapshots)."""

    def items_in(
        self, area: Area, layers: frozenset[str], kinds: frozenset[str] | None = None
    ) -> list[Change]: ...


@dataclass(eq=False)  # hashed by identity: the index files the object itself
class Subscription:
    session: Session
    id: str
    area: Area
    layers: frozenset[str]
    kinds: frozenset[str] | None
    frame: Frame
    min_interval_s: float
    proximity_m: float | None
    near: set[str] = field(default_factory=set)

    def wants(self, change: Change) -> bool:
        return (
            change.layer in self.layers
            and (self.kinds is None or change.kind is None or change.kind in self.kinds)
            and self.area.contains(change.lon, change.lat)
        )

    def item_text(self, change: Change, cache: dict[Any, str]) -> str:
        """``render`` as JSON text; ``cache`` (one per change, shared by every subscription
        it reaches) keeps one text per frame, so a change is encoded once for all clients that
        want it in the same frame (geographic, or ENU from the same origin, in one datum)."""
        key = self.frame.key
        text = cache.get(key)
        if text is None:
            text = cache[key] = _dumps(self.render(change))
        return text

    def render(self, change: Change) -> dict[str, Any]:
        """An item as the client sees it: position in the subscription's frame."""
        item: dict[str, Any] = {
            "key": change.key,
            "layer": change.layer,
            "kind": change.kind,
            "time": change.time,
            "position": self.frame.position(change.lon, change.lat, change.h),
            "data": change.data,
        }
        if change.removed:
            item["removed"] = True
        return item

    def describe(self) -> dict[str, Any]:
        """The subscribe message that makes this subscription again (to restore a session in
        another process)."""
        area = self.area
        message: dict[str, Any] = {
            "type": "subscribe",
            "id": self.id,
            "area": (
                {"bbox": [area.west, area.south, area.east, area.north]}
                if area.center is None
                else {"center": list(area.center), "radius_m": area.radius_m}
            ),
            "layers": sorted(self.layers),
            "kinds": None if self.kinds is None else sorted(self.kinds),
            "frame": self.frame.describe(),
            "max_rate_hz": None if self.min_interval_s == 0 else 1.0 / self.min_interval_s,
            "proximity_m": self.proximity_m,
        }
        return message

    @property
    def reference(self) -> tuple[float, float]:
        """Where proximity is measured from: the ENU origin, else the area's centre."""
        reference = self.frame.reference
        return reference if reference is not None else self.area.reference


@dataclass(eq=False)
class _Snapshot:
    """A snapshot to make for ``sub`` when it is taken for sending."""

    sub: Subscription
    reason: str


@dataclass
class IndexChanges:
    """Subscriptions the hub must (re)file or drop after a client message."""

    added: list[Subscription] = field(default_factory=list)
    removed: list[Subscription] = field(default_factory=list)


class ProtocolError(InputError):
    """A client message that cannot be followed; answered with an ``error`` message."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.ref = ref


def _dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class Session:
    """One client's live session (see the module docstring)."""

    def __init__(self, session_id: str, owner: str, world: World, limits: Limits) -> None:
        self.id = session_id
        self.owner = owner  # the token id that opened it: only it may resume the session
        self.world = world
        self.limits = limits
        self.subscriptions: dict[str, Subscription] = {}
        self.seq = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._control: list[str] = []
        self._sequenced: list[dict[str, Any] | _Snapshot] = []
        self._replay: list[str] = []
        # (subscription id, key) -> (item JSON text, item time); newest last
        self._pending: dict[tuple[str, str], tuple[str, str]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self._queued_bytes = 0
        self._history: deque[tuple[int, float, str]] = deque()
        self._history_bytes = 0

    # -- client messages ----------------------------------------------------------------

    def welcome(self, recovered: bool | None) -> None:
        """Queue the first message of a connection."""
        message: dict[str, Any] = {
            "type": "welcome",
            "session": self.id,
            "last_seq": self.seq,
            "retention_s": self.limits.retention_s,
            "max_queue_bytes": self.limits.max_queue_bytes,
        }
        if recovered is not None:
            message["recovered"] = recovered
        self._control.append(_dumps(message))

    def receive(self, text: str, now: float) -> IndexChanges:
        """Handle one client message; problems become ``error`` messages, never exceptions."""
        try:
            return self._receive(text, now)
        except ProtocolError as exc:
            error: dict[str, Any] = {"type": "error", "code": exc.code, "message": str(exc)}
            if exc.ref is not None:
                error["id"] = exc.ref
            self._control.append(_dumps(error))
            return IndexChanges()

    def _receive(self, text: str, now: float) -> IndexChanges:
        if len(text) > MAX_MESSAGE_BYTES:
            raise ProtocolError("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError("malformed", f"not JSON: {exc.msg}") from exc
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("malformed", "a message is a JSON object with a 'type'")
        kind = message["type"]
        if kind == "ping":
            self._control.append(_dumps({"type": "pong", "data": message.get("data")}))
            return IndexChanges()
        if kind == "subscribe":
            return self._subscribe(message, now)
        if kind == "move":
            return self._move(message, now)
        if kind == "unsubscribe":
            sub = self._known(message)
            del self.subscriptions[sub.id]
            self._drop_pending(sub.id)
            self._drop_snapshot(sub.id)
            self._sequenced.append({"type": "unsubscribed", "id": sub.id})
            return IndexChanges(removed=[sub])
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}")

    def _subscribe(self, message: dict[str, Any], now: float) -> IndexChanges:
        ref = message.get("id")
        if not isinstance(ref, str) or not 0 < len(ref) <= 64:
            raise ProtocolError("bad_subscription", "'id' must be a string of 1 to 64 characters")
        if ref not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError("too_many", f"at most {MAX_SUBSCRIPTIONS} subscriptions", ref)
        try:
            area = Area.parse(message.get("area"))
            frame = Frame.parse(message.get("frame"))
        except (AreaError, FrameError) as exc:
            raise ProtocolError("bad_subscription", str(exc), ref) from exc
        layers = _layers(message.get("layers"), ref)
        kinds = _kinds(message.get("kinds"), ref)
        rate = message.get("max_rate_hz", DEFAULT_RATE_HZ)
        if rate is not None and (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not 0 < rate <= MAX_RATE_HZ
        ):
            raise ProtocolError(
                "bad_subscription", f"max_rate_hz must be in (0, {MAX_RATE_HZ:g}] or null", ref
            )
        proximity = message.get("proximity_m")
        if proximity is not None and (
            isinstance(proximity, bool)
            or not isinstance(proximity, int | float)
            or not 0 < proximity <= MAX_PROXIMITY_M
        ):
            raise ProtocolError(
                "bad_subscription", f"proximity_m must be in (0, {MAX_PROXIMITY_M:g}]", ref
            )
        old = self.subscriptions.get(ref)
        sub = Subscription(
            self, ref, area, layers, kinds, frame,
            0.0 if rate is None else 1.0 / float(rate),
            None if proximity is None else float(proximity),
        )  # fmt: skip
        self.subscriptions[ref] = sub
        self._drop_pending(ref)
        self._snapshot(sub, "subscribe")
        self._proximity_refresh(sub)
        return IndexChanges(added=[sub], removed=[old] if old is not None else [])

    def _move(self, message: dict[str, Any], now: float) -> IndexChanges:
        sub = self._known(message)
        try:
            if "bbox" in message:
                area = Area.parse({"bbox": message["bbox"]})
            elif "center" in message:
                radius = message.get("radius_m", sub.area.radius_m)
                if radius is None:
                    raise AreaError("moving a box subscription to a center needs radius_m")
                area = Area.parse({"center": message["center"], "radius_m": radius})
            else:
                raise AreaError("move needs a center (and optional radius_m) or a bbox")
            frame = Frame.parse(message["frame"]) if "frame" in message else sub.frame
        except (AreaError, FrameError) as exc:
            raise ProtocolError("bad_move", str(exc), sub.id) from exc
        moved = Subscription(
            self, sub.id, area, sub.layers, sub.kinds, frame, sub.min_interval_s,
            sub.proximity_m, set(sub.near),
        )  # fmt: skip
        self.subscriptions[sub.id] = moved
        self._drop_pending(sub.id)
        self._snapshot(moved, "move")
        self._proximity_refresh(moved)
        return IndexChanges(added=[moved], removed=[sub])

    def _known(self, message: dict[str, Any]) -> Subscription:
        ref = message.get("id")
        sub = self.subscriptions.get(ref) if isinstance(ref, str) else None
        if sub is None:
            raise ProtocolError("unknown_subscription", f"no subscription {ref!r}", None)
        return sub

    def _snapshot(self, sub: Subscription, reason: str) -> None:
        """Queue a snapshot of ``sub``, made when it is taken (see the module docstring)."""
        self._drop_snapshot(sub.id)
        self._sequenced.append(_Snapshot(sub, reason))

    def _drop_snapshot(self, ref: str) -> None:
        """Forget a snapshot not sent yet for the subscription ``ref``, which is being replaced,
        moved or unsubscribed: the client never saw it, and a newer snapshot replaces all it
        holds. So every queued snapshot is of a subscription as it is now."""
        self._sequenced = [
            m for m in self._sequenced if not (isinstance(m, _Snapshot) and m.sub.id == ref)
        ]

    def _make_snapshot(self, queued: _Snapshot) -> dict[str, Any]:
        sub = queued.sub
        items = [sub.render(c) for c in self.world.items_in(sub.area, sub.layers, sub.kinds)]
        return {
            "type": "snapshot", "id": sub.id, "reason": queued.reason, "frame": sub.frame.name,
            "items": items,
        }  # fmt: skip

    def _proximity_refresh(self, sub: Subscription) -> None:
        """Enter/leave for everything whose distance to the subscriber changed sides."""
        if sub.proximity_m is None:
            return
        lon, lat = sub.reference
        around = Area.circle(lon, lat, sub.proximity_m)
        layers = sub.layers & PROXIMITY_LAYERS
        now_near = {c.key: c for c in self.world.items_in(around, layers, sub.kinds)}
        for key in sorted(sub.near - now_near.keys()):
            sub.near.discard(key)
            self._sequenced.append({"type": "leave", "id": sub.id, "key": key})
        for key, change in now_near.items():
            if key not in sub.near:
                sub.near.add(key)
                self._sequenced.append(self._enter(sub, change))

    def _enter(self, sub: Subscription, change: Change) -> dict[str, Any]:
        lon, lat = sub.reference
        return {
            "type": "enter", "id": sub.id, "key": change.key,
            "distance_m": round(distance_m(lon, lat, change.lon, change.lat), 2),
            "item": sub.render(change),
        }  # fmt: skip

    def _drop_pending(self, ref: str) -> None:
        for pending_key in [k for k in self._pending if k[0] == ref]:
            self._queued_bytes -= len(self._pending.pop(pending_key)[0])

    # -- hub events ---------------------------------------------------------------------

    def offer(self, sub: Subscription, change: Change, text: str) -> None:
        """A committed change the index matched to ``sub`` (``text``: its item as JSON, from
        ``sub.item_text``): queue it, replacing a queued older change of the same key
        (conflation). Past ``max_queue_bytes`` queued, the session closes with 4008."""
        if self.close_code is not None or self.subscriptions.get(sub.id) is not sub:
            return
        if not sub.wants(change):
            return
        slot = (sub.id, change.key)
        held = self._pending.get(slot)
        if held is not None:
            if held[1] > change.time:
                return  # a replayed older change never replaces a newer queued one
            del self._pending[slot]  # re-inserted at the end: newest last
            self._queued_bytes -= len(held[0])
        self._pending[slot] = (text, change.time)
        self._queued_bytes += len(text)
        if sub.proximity_m is not None and change.layer in PROXIMITY_LAYERS:
            lon, lat = sub.reference
            inside = not change.removed and (
                distance_m(lon, lat, change.lon, change.lat) <= sub.proximity_m
            )
            if inside and change.key not in sub.near:
                sub.near.add(change.key)
                self._sequenced.append(self._enter(sub, change))
            elif not inside and change.key in sub.near:
                sub.near.discard(change.key)
                self._sequenced.append({"type": "leave", "id": sub.id, "key": change.key})
        if self._queued_bytes > self.limits.max_queue_bytes:
            self.close(CLOSE_SLOW_CONSUMER, "the client did not keep up with its updates")

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._pending.clear()
            self._queued_bytes = 0

    def revoke(self) -> None:
        """The session's token was revoked: close with 4003 (whatever closed it before) and
        drop everything not sent yet, so nothing more goes out."""
        self.close_code = CLOSE_TOKEN_REVOKED
        self.close_reason = "token revoked"
        self._control, self._sequenced, self._replay = [], [], []
        self._pending.clear()
        self._queued_bytes = 0

    # -- sending ------------------------------------------------------------------------

    @property
    def has_output(self) -> bool:
        return bool(self._control or self._sequenced or self._replay or self._pending)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def take(self, now: float, wall: float) -> tuple[list[str], float | None]:
        """Messages to send now, in order, and the monotonic time at which rate-limited
        updates become due (None: nothing waits). Sequenced messages get their ``seq`` here
        and are remembered for a resume (``wall``: the wall-clock time, for the window)."""
        out = self._control + self._replay  # control first: a welcome precedes the replay
        self._replay, self._control = [], []
        for message in self._sequenced:
            if isinstance(message, _Snapshot):  # of a current subscription: see _drop_snapshot
                message = self._make_snapshot(message)
            out.append(self._sequence(message, wall))
        self._sequenced = []
        groups: dict[str, list[str]] = {}
        due: float | None = None
        for slot in list(self._pending):
            sub = self.subscriptions.get(slot[0])
            if sub is None:
                self._queued_bytes -= len(self._pending.pop(slot)[0])
                continue
            last = self._last_sent.get(slot)
            if last is not None and now - last < sub.min_interval_s:
                ready_at = last + sub.min_interval_s
                due = ready_at if due is None else min(due, ready_at)
                continue
            text = self._pending.pop(slot)[0]
            self._queued_bytes -= len(text)
            self._last_sent[slot] = now
            groups.setdefault(slot[0], []).append(text)
        for ref, texts in groups.items():
            # Items are encoded already (once per change and frame): join, do not re-encode.
            self.seq += 1
            text = (
                f'{{"seq":{self.seq},"type":"update","id":{_dumps(ref)},'
                f'"items":[{",".join(texts)}]}}'
            )
            self._remember(self.seq, wall, text)
            out.append(text)
        if len(self._last_sent) > 4 * max(len(self._pending), 1024):
            self._forget_rates(now)
        return out, due

    def _sequence(self, message: dict[str, Any], wall: float) -> str:
        self.seq += 1
        text = _dumps({"seq": self.seq, **message})
        self._remember(self.seq, wall, text)
        return text

    def _remember(self, seq: int, wall: float, text: str) -> None:
        self._history.append((seq, wall, text))
        self._history_bytes += len(text)
        self._trim_history(wall)

    def _trim_history(self, wall: float) -> None:
        while self._history and (
            self._history[0][1] < wall - self.limits.retention_s
            or self._history_bytes > self.limits.history_max_bytes
        ):
            self._history_bytes -= len(self._history.popleft()[2])

    def _forget_rates(self, now: float) -> None:
        longest = max((s.min_interval_s for s in self.subscriptions.values()), default=0.0)
        self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < longest}

    # -- resuming -----------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent: every change offered so far went out or was superseded."""
        return not self.has_output

    def sent_after(self, seq: int) -> list[tuple[int, float, str]]:
        """Remembered messages with a seq above ``seq`` as (seq, wall time, text)."""
        return [entry for entry in self._history if entry[0] > seq]

    def seen(self) -> dict[tuple[str, str], str]:
        """(subscription id, key) -> the newest item time among remembered messages: what the
        client has been sent already."""
        newest: dict[tuple[str, str], str] = {}
        for _, _, text in self._history:
            message = json.loads(text)
            for item in message.get("items", ()):
                slot = (message["id"], item["key"])
                if item["time"] > newest.get(slot, ""):
                    newest[slot] = item["time"]
        return newest

    def restore(
        self, seq: int, history: list[tuple[int, float, str]], subscriptions: list[dict[str, Any]]
    ) -> list[Subscription]:
        """Become a session another process served: its seq, the messages it remembered, and
        its subscriptions (without sending snapshots). Returns the subscriptions to index."""
        self.seq = seq
        self._history = deque(sorted(history))
        self._history_bytes = sum(len(text) for _, _, text in self._history)
        restored = []
        for message in subscriptions:
            changes = self._subscribe(message, 0.0)
            restored.extend(changes.added)
        self._sequenced = []  # the snapshots and enters _subscribe queued: the client has them
        return restored

    def resume(self, last_seq: int, wall: float) -> bool:
        """A new connection continues this session after ``last_seq``. True when every
        later message is still remembered: they are sent again, with their own seqs, before
        anything new. Otherwise False: each subscription gets a fresh snapshot instead."""
        self._trim_history(wall)
        self._control = []  # control messages were for the old connection
        if last_seq == self.seq:
            return True
        if 0 <= last_seq < self.seq and self._history and self._history[0][0] <= last_seq + 1:
            self._replay = [text for seq, _, text in self._history if seq > last_seq]
            return True
        self._sequenced = [m for m in self._sequenced if not isinstance(m, _Snapshot)]
        self._pending.clear()
        self._queued_bytes = 0
        for sub in self.subscriptions.values():
            self._snapshot(sub, "resume")
        return False


def _layers(value: Any, ref: str) -> frozenset[str]:
    if value is None:
        return frozenset(LAYERS)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in LAYERS for v in value)
    ):
        raise ProtocolError(
            "bad_subscription", f"layers must be a non-empty list of {', '.join(LAYERS)}", ref
        )
    return frozenset(value)


def _kinds(value: Any, ref: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProtocolError("bad_subscription", "kinds must be a list of kind names", ref)
    return frozenset(value)
