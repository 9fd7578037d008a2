"""``/api/v1/live``: the WebSocket of live overlays (protocol in docs/live-protocol.md), and
``/api/v1/live/stats``. The router only authenticates and hands the socket to the hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute

from arserver.api.deps import optional_token, require_reader
from arserver.api.guard import STATE_KEY, authenticator_of
from arserver.live.hub import Hub
from arserver.live.protocol import CLOSE_UNAUTHORISED
from arserver.security.policy import Action, permits
from arserver.security.tokens import TokenRecord


class StarletteConnection:
    """Starlette's WebSocket as the hub's ``Connection``."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive_text(self) -> str | None:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return str(message["text"])
        try:
            return bytes(message.get("bytes") or b"").decode("utf-8")
        except UnicodeDecodeError:
            return ""  # answered as malformed by the protocol

    async def send_text(self, text: str) -> None:
        await self.websocket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):
            await self.websocket.close(code, reason)


#: Which server process answers (``serve --workers N`` runs several): host and process id.
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def live_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["live"])

    async def live(websocket: WebSocket) -> None:
        """The live WebSocket. A plain Starlette route, not a FastAPI one: no dependency
        machinery is kept alive per connection (about 5 KB a client). A connection ends
        (4003) when its token expires: an OpenID Connect JWT at its ``exp`` plus the leeway."""
        query = websocket.query_params
        header = websocket.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else None
        secret = secret or query.get("access_token")
        record = None
        authenticator = authenticator_of(websocket.app.state)
        hub: Hub = websocket.app.state.hub
        authenticated_at = hub.clock()  # a revocation from now on reaches the hub in time
        if secret:
            record = await run_in_threadpool(authenticator.authenticate, secret)
        if record is not None:  # valid, whatever its role: no failed authentication
            websocket.scope.setdefault("state", {})[STATE_KEY] = record
        if record is None or not permits(record, Action.SUBSCRIBE_LIVE):
            # Before accept: the handshake is refused (HTTP 403) with this code in the close.
            await websocket.close(code=CLOSE_UNAUTHORISED, reason="a token with a reading role")
            return
        await websocket.accept()
        session, last_seq = query.get("session"), query.get("last_seq", "")
        resume = (session, int(last_seq)) if session and last_seq.isdigit() else None
        valid_until = authenticator.valid_until(record)
        expiry = None
        if valid_until is not None:  # the hub remembers the id as long as it has to, no longer
            delay = max((valid_until - datetime.now(UTC)).total_seconds(), 0.0)
            expiry = asyncio.get_running_loop().call_later(delay, hub.revoke, {record.id})
        try:
            await hub.serve(
                StarletteConnection(websocket), record.id, resume, authenticated_at=authenticated_at
            )
        finally:
            if expiry is not None:
                expiry.cancel()

    router.routes.append(WebSocketRoute("/api/v1/live", live))

    @router.get(
        "/live/stats",
        summary="Live hub counters",
        description="Connections, sessions and messages of this server process's live hub "
        "(`process`: which one, host and process id). "
        "The hub itself is the WebSocket `/api/v1/live` (see docs/live-protocol.md).",
    )
    def stats(
        request: Request,
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> dict[str, Any]:
        require_reader(token)
        hub: Hub = request.app.state.hub
        return {
            "process": PROCESS,
            "connections": hub.stats.connections,
            "sessions": len(hub.sessions),
            "subscriptions": len(hub.index),
            "live_items": len(hub.state),
            "messages_sent": hub.stats.messages_sent,
            "changes_dispatched": hub.stats.changes_dispatched,
            "slow_consumers_closed": hub.stats.slow_consumers_closed,
            "revoked_closed": hub.stats.revoked_closed,
        }

    return router
