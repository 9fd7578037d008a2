"""``arserver watch``: a live client for field tests. Subscribes to an area over
``/api/v1/live``, prints every message, and on a dropped connection reconnects and resumes its
session from the last seq it printed (so the output has no gap and no repeat)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from arserver.client import ClientError


def live_url(server: str) -> str:
    base = server.rstrip("/")
    for scheme, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(scheme):
            return ws + base[len(scheme) :] + "/api/v1/live"
    raise ClientError(f"the server must be an http:// or https:// URL, got {server!r}")


def describe(message: dict[str, Any]) -> str:
    """One readable line per message."""
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
    server: str,
    token: str,
    subscription: dict[str, Any],
    emit: Callable[[dict[str, Any]], None],
    *,
    count: int | None = None,
    reconnect: bool = True,
) -> int:
    """Subscribe and hand every message to ``emit`` until ``count`` sequenced messages were
    seen (or for ever); returns how many were seen. Reconnects with resume on a dropped
    connection; an answer the server refuses (bad token) is a :class:`ClientError`."""
    url = live_url(server)
    session: str | None = None
    last_seq = 0
    seen = 0
    pause = 0.5
    while True:
        query = {"access_token": token}
        if session is not None:
            query |= {"session": session, "last_seq": str(last_seq)}
        try:
            with connect(f"{url}?{urlencode(query)}", open_timeout=10) as ws:
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
