"""LoRaWAN network server uplinks to observation items.

- The Things Stack v3, topic ``v3/{application}@{tenant}/devices/{device}/up``:
  ``end_device_ids.dev_eui``, ``received_at``, ``uplink_message.decoded_payload``,
  ``uplink_message.f_cnt``, ``uplink_message.locations``.
- ChirpStack v4, topic ``application/{application_id}/device/{dev_eui}/event/up``:
  ``deviceInfo.devEui``, ``time``, ``object``, ``fCnt``, ``deduplicationId``.

A device's registration says which decoded field feeds which datastream kind. The same uplink
delivered twice (through several gateways, or again after a reconnect) has the same time, so it
is stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from arserver.errors import InputError


@dataclass(frozen=True)
class Uplink:
    dev_eui: str  # upper-case hex
    time: str  # ISO 8601 with time zone
    fields: dict[str, Any]  # the decoded payload
    position: list[float] | None  # [lon, lat] or [lon, lat, h]
    source_id: str  # identifies the uplink at its network server


class UplinkError(InputError):
    """A message that is not a usable uplink of the expected format."""


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UplinkError(f"{what} is missing or not an object")
    return value


def _dev_eui(value: Any, what: str) -> str:
    """A device EUI (16 hex digits) in upper case."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{16}", value):
        raise UplinkError(f"{what} must be 16 hex digits")
    return value.upper()


def _coordinate(value: Any, what: str) -> float:
    """A number (or a number as text) of a location; the observation check judges its range."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UplinkError(f"{what} must be a number")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise UplinkError(f"{what} must be a number") from None


def from_tts(message: Any) -> Uplink:
    """An uplink from The Things Stack v3."""
    body = _dict(message, "the message")
    ids = _dict(body.get("end_device_ids"), "end_device_ids")
    uplink = _dict(body.get("uplink_message"), "uplink_message")
    time = uplink.get("received_at") or body.get("received_at")
    if ids.get("dev_eui") is None or not isinstance(time, str):
        raise UplinkError("end_device_ids.dev_eui or received_at is missing")
    dev_eui = _dev_eui(ids.get("dev_eui"), "end_device_ids.dev_eui")
    fields = _dict(uplink.get("decoded_payload"), "uplink_message.decoded_payload")
    position = None
    locations = uplink.get("locations")
    user = (
        (locations.get("user") or locations.get("frm-payload"))
        if isinstance(locations, dict)
        else None
    )
    if isinstance(user, dict) and "latitude" in user and "longitude" in user:
        position = [
            _coordinate(user["longitude"], "longitude"),
            _coordinate(user["latitude"], "latitude"),
        ]
        if "altitude" in user:
            position.append(_coordinate(user["altitude"], "altitude"))
    return Uplink(dev_eui, time, fields, position, f"tts:{dev_eui}:{uplink.get('f_cnt')}")


def from_chirpstack(message: Any) -> Uplink:
    """An uplink event from ChirpStack v4."""
    body = _dict(message, "the message")
    device = _dict(body.get("deviceInfo"), "deviceInfo")
    time = body.get("time")
    if device.get("devEui") is None or not isinstance(time, str):
        raise UplinkError("deviceInfo.devEui or time is missing")
    dev_eui = _dev_eui(device.get("devEui"), "deviceInfo.devEui")
    fields = _dict(body.get("object"), "object (the decoded payload)")
    source = body.get("deduplicationId") or f"{dev_eui}:{body.get('fCnt')}"
    return Uplink(dev_eui, time, fields, None, f"chirpstack:{source}")


def items_for(uplink: Uplink, sensor_id: str, field_kinds: dict[str, str]) -> list[dict[str, Any]]:
    """Observation items for the fields the device registration maps to datastreams."""
    items = []
    for field, kind in field_kinds.items():
        if field in uplink.fields:
            item: dict[str, Any] = {
                "sensor": sensor_id,
                "kind": kind,
                "time": uplink.time,
                "value": uplink.fields[field],
                "id": uplink.source_id,
            }
            if uplink.position is not None:
                item["position"] = uplink.position
            items.append(item)
    return items
