"""The request guard: what is refused before a route reads a byte of the body.

Every write under ``/api/v1`` (POST, PUT, PATCH, DELETE) needs a valid token; without one the
answer is ``401`` at once, whatever the body (so an anonymous caller cannot make the server
parse, validate or spool anything). A body larger than its route allows is ``413``: at once
when ``Content-Length`` says so, and as soon as the bytes read pass the limit when it is sent
chunked. The token found here is handed on to the route (``scope["state"]["token"]``), so it is
looked up once per request. Tokens are looked up by the application's
:class:`~arserver.security.tokens.Authenticator` (``app.state.authenticator``: our tokens, and
OpenID Connect JWTs when configured), in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arserver.security.tokens import Authenticator, TokenRecord

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
#: Bodies of JSON writes are at most this large unless their route says otherwise.
DEFAULT_BODY_BYTES = 256 * 1024
#: Per-route body limits in bytes (exact paths). A batch of 10,000 observations of the largest
#: sensible shape is about 6 MB.
BODY_BYTES: Mapping[str, int] = {
    "/api/v1/observations": 8 * 1024 * 1024,
    "/api/v1/parking/zones/import": 16 * 1024 * 1024,  # a city's parking zones as GeoJSON
}
#: The upload route's limit is the configured upload size plus room for the form's other parts.
UPLOAD_PATH = "/api/v1/assets"
#: Photo uploads (``POST /api/v1/inspections/{id}/photos``) take the configured photo size.
PHOTO_PREFIX, PHOTO_SUFFIX = "/api/v1/inspections/", "/photos"
FORM_OVERHEAD_BYTES = 1024 * 1024

#: The token presented with a request: ``Authorization: Bearer`` or ``?access_token=``.
STATE_KEY = "token"


def presented_secret(connection: HTTPConnection) -> str | None:
    """The token a request presents (``Authorization: Bearer`` first, then ``?access_token=``),
    or None."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return connection.query_params.get("access_token") or None


class RequestGuard:
    """ASGI middleware: authenticates writes and bounds bodies before the application reads
    them. ``upload_bytes``: the largest accepted upload (``ARSERVER_MAX_UPLOAD_MIB``);
    ``photo_bytes``: the largest inspection photo (``ARSERVER_MAX_PHOTO_MIB``)."""

    def __init__(self, app: ASGIApp, *, upload_bytes: int, photo_bytes: int) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.photo_bytes = photo_bytes

    def limit_for(self, method: str, path: str) -> int:
        if method == "POST" and path == UPLOAD_PATH:
            return self.upload_bytes + FORM_OVERHEAD_BYTES
        if method == "POST" and path.startswith(PHOTO_PREFIX) and path.endswith(PHOTO_SUFFIX):
            return self.photo_bytes + FORM_OVERHEAD_BYTES
        return BODY_BYTES.get(path, DEFAULT_BODY_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            connection = HTTPConnection(scope)
            secret = presented_secret(connection)
            if secret is None:
                await _refuse(send, 401, "a token is required")
                return
            authenticator = authenticator_of(scope["app"].state)
            record = await run_in_threadpool(authenticator.authenticate, secret)
            if record is None:
                await _refuse(send, 401, "invalid or revoked token")
                return
            scope.setdefault("state", {})[STATE_KEY] = record
        limit = self.limit_for(scope["method"], path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"the body is larger than {limit:,} bytes")
            return
        await self.app(scope, _bounded(receive, limit), send)


def authenticator_of(app_state: Any) -> Authenticator:
    """The application's authenticator (``app.state.authenticator``, set when it starts)."""
    authenticator: Authenticator = app_state.authenticator
    return authenticator


def checked_token(state: Any) -> TokenRecord | None:
    """The valid token the guard found for this request (None: the guard did not look)."""
    record = getattr(state, STATE_KEY, None)
    return record if isinstance(record, TokenRecord) else None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _bounded(receive: Receive, limit: int) -> Callable[[], Awaitable[Message]]:
    """``receive`` that fails with 413 once more than ``limit`` body bytes came in."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"the body is larger than {limit:,} bytes")
        return message

    return bounded


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),  # the unread body is not waited for
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
