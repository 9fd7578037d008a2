"""MQTT ingest: The Things Stack, ChirpStack and our own JSON topic, through the real broker.

A persistent session (fixed client id, MQTT 5 with clean start off and a session expiry) and
QoS 1 subscriptions: the broker keeps messages for us while we are away. Messages are taken in
batches (as many as have arrived, up to ``batch_size``), stored in one transaction through the
observation write path, and only then acknowledged (paho's manual acknowledgement). A crash
before the commit means the broker delivers them again, and the duplicates are recognised. A bad
message is counted by cause and acknowledged; it never stops the consumer. While the database is
unreachable the batch is retried and nothing is acknowledged.

A message that makes storing fail in any other way (a bug, or the database refusing its data)
must not be retried forever, nor take the rest of its batch with it: the batch is stored again
message by message, and the one that still fails is counted ``malformed`` and acknowledged. An
error that looks like an outage while the database answers is blamed on the batch too, after a
few tries (a statement too large for the database, say). Should the consumer thread end anyway,
:attr:`MqttIngest.state` says ``stopped`` and ``/readyz`` fails.

The broker must keep sessions across its own restarts (Mosquitto: ``persistence true``) and
queue enough for an absent consumer (``max_queued_messages``); see docs/sensors.md.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from arserver.ingest.lorawan import Uplink, UplinkError, from_chirpstack, from_tts, items_for
from arserver.services.observations import IngestResult, ObservationWriter
from arserver.store.database import ping
from arserver.store.sensors import sensors_for_devices

log = logging.getLogger(__name__)

TTS_TOPIC = "v3/+/devices/+/up"
CHIRPSTACK_TOPIC = "application/+/device/+/event/up"
OWN_TOPIC = "arserver/observations"
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue for a week of absence
#: Tries of a batch that fails like an outage while the database answers, before the batch is
#: blamed (a lock held a while longer than the busy timeout gets these chances).
TRIES_WHILE_THE_DATABASE_ANSWERS = 3


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says that the database cannot be reached (then a batch waits and is
    tried again), rather than that it refused the data or that the code failed."""
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError):
        return True
    if isinstance(error, PoolTimeoutError):
        return True  # no connection free in the pool
    return isinstance(error, DBAPIError) and error.connection_invalidated


class _Outcome(Enum):
    STORED = "stored"
    STOPPED = "stopped"  # asked to stop while waiting for the database
    FAILED = "failed"  # the batch itself makes storing fail


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttIngest:
    """Consumes uplinks from ``url`` (``mqtt://[user:password@]host:port``) into the database."""

    def __init__(
        self,
        writer: ObservationWriter,
        url: str,
        client_id: str = "arserver-ingest",
        *,
        batch_size: int = 500,
        shared_group: str | None = None,
    ) -> None:
        """``shared_group``: subscribe as ``$share/GROUP/TOPIC`` (MQTT 5 shared subscriptions),
        so that each uplink goes to one consumer of the group; each consumer keeps its own
        ``client_id`` (and with it its persistent session)."""
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"ARSERVER_MQTT_URL must look like mqtt://host:1883, got {url!r}")
        self.writer = writer
        self.host = parsed.hostname
        self.port = parsed.port or 1883
        self.batch_size = batch_size
        prefix = f"$share/{shared_group}/" if shared_group else ""
        self.topics = [prefix + topic for topic in (TTS_TOPIC, CHIRPSTACK_TOPIC, OWN_TOPIC)]
        #: Set while the broker has confirmed our subscriptions (messages published from then on
        #: reach us, even across a restart of ours); cleared on disconnect.
        self.connected = threading.Event()
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._leaving = False
        self._received = 0
        self._last_received = 0.0
        self._handled = 0
        self._stop = threading.Event()
        self._consumer: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = self._on_unsubscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = max(self.batch_size * 2, 20)  # room for the next batch
        self._stop.clear()
        self._consumer = threading.Thread(
            target=self._run_consumer, name="mqtt-ingest", daemon=True
        )
        self._consumer.start()
        self._client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=properties
        )
        self._client.loop_start()

    def stop(self, *, end_session: bool = False) -> None:
        """Finish the batch in hand, then disconnect; unacknowledged messages stay with the
        broker for the next start (``end_session``: the broker forgets the session)."""
        self._stop.set()
        if self._consumer is not None:
            self._consumer.join(timeout=30)
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0
        self._client.disconnect(properties=properties)
        self._client.loop_stop()

    def leave(self, idle_s: float = 2.0, timeout_s: float = 600.0) -> int:
        """Retire this client id for good (fewer consumers in a shared group): connect,
        unsubscribe instead of subscribing, store and acknowledge what the broker still holds
        for this session until nothing has come for ``idle_s``, then end the session, so that
        the broker no longer gives it a share of the uplinks. Returns how many messages came.
        :class:`TimeoutError` if that takes longer than ``timeout_s`` (the session stays)."""
        self._leaving = True
        self.start()
        deadline = time.monotonic() + timeout_s
        self._last_received = time.monotonic()
        while not (
            self.connected.is_set()
            and time.monotonic() - self._last_received >= idle_s
            and self._handled == self._received
        ):
            if time.monotonic() > deadline or self.state == "stopped":
                self.stop()
                raise TimeoutError("the session could not be drained; it stays with the broker")
            time.sleep(0.05)
        self.stop(end_session=True)
        return self._received

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        if self._leaving:
            client.unsubscribe(self.topics)
            return
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_unsubscribe(self, *_args: Any) -> None:
        self.connected.set()

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error("the MQTT broker refused a subscription: %s", refused)
            return
        self.connected.set()

    @property
    def state(self) -> str:
        """``subscribed`` while the broker delivers to us, ``connecting`` while it does not,
        ``stopped`` once the consumer thread no longer runs (stopped, or ended by an exception
        such as ``SystemExit``); nothing is stored then."""
        if self._consumer is not None and not self._consumer.is_alive():
            return "stopped"
        return "subscribed" if self.connected.is_set() else "connecting"

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._received += 1
        self._last_received = time.monotonic()
        self._inbox.put(_Message(message.topic, bytes(message.payload), message.mid, message.qos))

    def _run_consumer(self) -> None:
        try:
            self._consume()
        except BaseException:  # SystemExit and the like: the thread ends, but not silently
            log.critical("the MQTT consumer stopped; nothing is stored", exc_info=True)

    def _consume(self) -> None:
        while not self._stop.is_set():
            try:
                batch = [self._inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                done = self._store_until_done(batch)
                if done:
                    for message in batch:
                        if message.qos > 0:
                            self._client.ack(message.mid, message.qos)
                    self._handled += len(batch)
            except Exception:
                # Unacknowledged, the messages come again after a reconnect; the consumer goes on.
                log.exception("could not finish a batch of %d MQTT messages", len(batch))

    def _store_until_done(self, batch: list[_Message]) -> bool:
        """Store the batch, retrying while the database is unreachable; False if stopped first
        (then nothing is acknowledged and the broker delivers the messages again). A batch that
        fails otherwise is stored again message by message; a message that still fails is
        counted ``malformed`` (and acknowledged with the rest)."""
        groups = [batch]
        while groups:
            group = groups.pop(0)
            outcome = self._retrying(partial(self.handle, group))
            if outcome is _Outcome.FAILED and len(group) > 1:
                log.warning("storing %d MQTT messages failed; one by one now", len(group))
                groups[:0] = [[message] for message in group]
            elif outcome is _Outcome.FAILED:
                log.error("an MQTT message on %s cannot be stored: malformed", group[0].topic)
                # Counted at once, so that counts follow the order of the messages.
                malformed = Counter({"malformed": 1})
                outcome = self._retrying(partial(self.writer.write, [], counted=malformed))
            if outcome is _Outcome.STOPPED:
                return False
        return True

    def _retrying(self, store: Callable[[], object]) -> _Outcome:
        """Call ``store`` until it returns, waiting while the database is unreachable; FAILED
        when it raises for another reason (logged), STOPPED if asked to stop meanwhile."""
        pause = 0.1
        tries_while_answering = 0
        while True:
            try:
                store()
                return _Outcome.STORED
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("storing MQTT messages failed")
                    return _Outcome.FAILED
                if self._database_answers():
                    tries_while_answering += 1
                    if tries_while_answering >= TRIES_WHILE_THE_DATABASE_ANSWERS:
                        log.exception("storing MQTT messages failed while the database answers")
                        return _Outcome.FAILED
                log.warning("could not store MQTT messages (%s); retrying", exc)
            if self._stop.wait(pause):
                return _Outcome.STOPPED
            pause = min(pause * 2, 5.0)

    def _database_answers(self) -> bool:
        try:
            ping(self.writer.engine)
        except SQLAlchemyError:
            return False
        return True

    def handle(self, batch: list[_Message]) -> IngestResult:
        """Store a batch of messages' observations in one transaction; what cannot be used is
        counted by cause (``malformed``, ``unknown_device``, ``no_mapped_fields``)."""
        causes: Counter[str] = Counter()
        items: list[Any] = []
        uplinks: list[Uplink] = []
        for message in batch:
            try:
                body = json.loads(message.payload)
            except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, too long
                causes["malformed"] += 1
                continue
            if message.topic == OWN_TOPIC:
                own = body.get("observations") if isinstance(body, dict) else None
                if isinstance(own, list):
                    items.extend(own)
                else:
                    causes["malformed"] += 1
                continue
            try:
                uplinks.append(
                    from_tts(body) if message.topic.startswith("v3/") else from_chirpstack(body)
                )
            except (UplinkError, TypeError, ValueError, OverflowError):
                causes["malformed"] += 1
        devices = sensors_for_devices(self.writer.engine, {u.dev_eui for u in uplinks})
        for uplink in uplinks:
            device = devices.get(uplink.dev_eui)
            if device is None:
                causes["unknown_device"] += 1
                continue
            mapped = items_for(uplink, *device)
            if not mapped:
                causes["no_mapped_fields"] += 1
            items.extend(mapped)
        return self.writer.write(items, counted=causes)
