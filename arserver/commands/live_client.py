"""The live client of ``arserver watch``, for field tests: subscribes to an area over
``/api/v1/live``, hands on every message, and on a dropped connection reconnects and resumes its
session from the last seq it handed on (so the output has no gap and no repeat)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from arserver.commands.client import ClientError, ServerClient


def describe(message: dict[str, Any]) -> str:
    """One readable line per message (and one more per item of a snapshot or update): its seq,
    its type and subscription, and each item's key, value, unit and position (degrees and
    ellipsoidal metres, or ENU metres if the subscription asked for a frame)."""
    kind = message.get("type")
    head = f"{message['seq']:>6} " if "seq" in message else "       "
    if kind in ("snapshot", "update"):
        items = message.get("items", [])
        lines = [f"{head}{kind} {message.get('id')}: {len(items)} item(s)"]
        for item in items:
            data = item.get("data", {})
            value = data.get("value", data.get("status", ""))
            unit = data.get("unit", "")
            position = ", ".join(f"{v:.3f}" for v in item.get("position", []))
            gone = " (removed)" if item.get("removed") else ""
            lines.append(f"         {item['key']} = {value} {unit} at [{position}]{gone}")
        return "\n".join(lines)
    if kind in ("enter", "leave"):
        distance = f" at {message['distance_m']} m" if "distance_m" in message else ""
        return f"{head}{kind} {message.get('id')}: {message.get('key')}{distance}"
    return head + json.dumps(message)


def watch(
    client: ServerClient,
    subscription: dict[str, Any],
    emit: Callable[[dict[str, Any]], None],
    *,
    count: int | None = None,
    reconnect: bool = True,
) -> int:
    """Subscribe with ``subscription`` (a ``subscribe`` message) through ``client``'s live URL
    and hand every message to ``emit`` until ``count`` sequenced messages were seen (or for
    ever); returns how many were seen. Reconnects with resume on a dropped connection (waiting
    0.5 s, doubling up to 10 s), and says so to ``emit`` as a ``reconnecting`` message; an
    answer the server refuses (bad token) is a :class:`ClientError`."""
    session: str | None = None
    last_seq = 0
    seen = 0
    pause = 0.5
    while True:
        resume = {} if session is None else {"session": session, "last_seq": str(last_seq)}
        url = client.live_connect_url(**resume)
        try:
            with connect(url, open_timeout=client.connect_timeout_s) as ws:
                pause = 0.5
                for text in ws:
                    message = json.loads(text)
                    if message["type"] == "welcome":
                        resumed = session is not None and message.get("recovered") is True
                        session = message["session"]
                        if not resumed:
                            ws.send(json.dumps(subscription))
                    if message["type"] == "error":
                        raise ClientError(f"the server refused the subscription: {message}")
                    emit(message)
                    if "seq" in message:
                        last_seq = message["seq"]
                        seen += 1
                        if count is not None and seen >= count:
                            return seen
        except InvalidStatus as exc:
            raise ClientError(
                f"the server refused the connection ({exc.response.status_code}): is the token "
                "valid, with a reading role?"
            ) from exc
        except InvalidURI as exc:
            raise ClientError(str(exc)) from exc
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            if not reconnect:
                raise ClientError(f"the connection ended: {exc}") from exc
            emit({"type": "reconnecting", "reason": str(exc) or type(exc).__name__})
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
