"""The audit middleware: one audit log entry per request under ``/api/v1`` and ``/tiles`` that

* writes (``POST``, ``PUT``, ``PATCH``, ``DELETE``), whatever its answer, except the
  successes of :data:`HIGH_VOLUME_WRITES` (machine writes whose stored data is itself the
  record of the write);
* is refused: ``401`` (an invalid token) or ``403`` (a role or scope that may not), on any
  route, also when the request guard refused it before routing;
* does what only admins may (every route whose policy action admits ``admin`` alone: tokens,
  the audit log, a person's data), reads included;

and per WebSocket handshake on ``/api/v1/live`` that is refused. Reads that succeed are not
recorded: tiles and overlays would flood the log. Refusals of requests and handshakes that
present no credential at all are not recorded one by one (anyone could write the log at will
that way): :class:`~arserver.services.audit.RefusalSummary` counts them and at most one entry
per client network and minute says how many there were.

An entry says who (the caller's :func:`~arserver.security.oidc.subject_of`: the token id the
request guard found, ``oidc:<issuer tag>:<subject>`` for an OpenID Connect caller,
``anonymous`` without a token, ``invalid token`` for a secret that is no valid token; never
the secret), what (the route's key as in :data:`arserver.security.policy.ROUTES`, e.g.
``DELETE /api/v1/assets/{asset_id}``, and its path parameters as the object, plus the new
``id`` of a creation answered with a small JSON body; a person's ``subject`` is recorded only
as ``subject:`` and its digest, :meth:`~arserver.services.audit.AuditService.subject_digest`),
the result (the HTTP status, or ``refused`` for a WebSocket) and the origin (the client's
network: IPv4 ``/24``, IPv6 ``/48``; none for a resident of a participation round).

The entry is written after the route ran and *before* its answer goes out (the answer's
start is held back until then), in a worker thread, never on the event loop: an answer the
client saw has its entry. A failed write is logged and counted by the audit service and the
answer is sent as it is (the change has happened; a 500 would not undo it). Answers ``429``
(rate limits) are not recorded: they are refused before any work, and recording each would
be work an attacker could ask for at will.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arserver.api.guard import STATE_KEY, WRITE_METHODS, presented_secret
from arserver.errors import InputError
from arserver.security.oidc import subject_of
from arserver.security.policy import POLICY, ROUTES
from arserver.security.redaction import redact_target, truncate_client
from arserver.security.tokens import TokenRecord, authenticate
from arserver.services.audit import ANONYMOUS, AuditService
from arserver.services.privacy import Subject

AUDITED_PREFIXES = ("/api/v1/", "/tiles/")
LIVE_PATH = "/api/v1/live"
#: Path parameters that name a person; an entry records only their digest.
PERSONAL_PARAMETERS = frozenset({"subject"})
#: Machine writes that come by the million: their successes (2xx) are not recorded, as the
#: data they store (timestamped, per sensor) is the record of the write; refusals still are.
HIGH_VOLUME_WRITES = frozenset({"POST /api/v1/observations"})
#: Path parameters that are not the object (the file inside a tileset).
IGNORED_PARAMETERS = frozenset({"path"})
REFUSALS = frozenset({401, 403})
TOO_MANY_REQUESTS = 429
#: A creation's answer is read for its new ``id`` when it is JSON and at most this long.
MAX_ID_BODY_BYTES = 64 * 1024
INVALID_TOKEN = "invalid token"
UNIDENTIFIED = "unidentified token"

_ADMIN_ONLY = frozenset(
    route for route, rule in ROUTES.items() if POLICY[rule.action] == frozenset({"admin"})
)


def _route(scope: Scope) -> tuple[str, Mapping[str, Any]]:
    """The route key (``METHOD /path/{param}``) and path parameters of a request; the
    redacted path when no route matches it."""
    method = "WEBSOCKET" if scope["type"] == "websocket" else scope["method"]
    route = scope.get("route")
    if route is not None and hasattr(route, "path_format"):
        return f"{method} {route.path_format}", scope.get("path_params", {})
    app = scope.get("app")
    partial: tuple[str, Mapping[str, Any]] | None = None
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, child = candidate.matches(scope)
        if match is Match.FULL and hasattr(candidate, "path_format"):
            return f"{method} {candidate.path_format}", child.get("path_params", {})
        if match is Match.PARTIAL and partial is None and hasattr(candidate, "path_format"):
            partial = (f"{method} {candidate.path_format}", child.get("path_params", {}))
    return partial or (f"{method} {redact_target(scope['path'])}", {})


def _subject_part(service: AuditService, value: object) -> str:
    text = str(value)
    with suppress(InputError):
        text = str(Subject.parse(text))  # the form an auditor would give
    return f"subject:{service.subject_digest(text)}"


def _object(service: AuditService, parameters: Mapping[str, Any], new_id: str | None) -> str | None:
    """The object of an entry (call it in a thread: a subject's digest reads the database)."""
    parts = [
        _subject_part(service, value) if name in PERSONAL_PARAMETERS else str(value)
        for name, value in parameters.items()
        if name not in IGNORED_PARAMETERS
    ]
    if new_id:
        parts.append(new_id)
    return "/".join(parts) or None


def _origin(scope: Scope) -> str | None:
    """The client's network; none for residents of a participation round, whose round
    promises that no address of theirs is kept (their token id is the entry's actor)."""
    caller = _checked(scope)
    if caller is not None and caller.role == "resident":
        return None
    client = scope.get("client")
    return truncate_client(str(client[0])) if client else None


def _checked(scope: Scope) -> TokenRecord | None:
    record = scope.get("state", {}).get(STATE_KEY)
    return record if isinstance(record, TokenRecord) else None


def _actor(scope: Scope, refused_authentication: bool) -> str:
    """Who made the request (call it in a thread: it may look the token up)."""
    checked = _checked(scope)
    if checked is not None:
        return subject_of(checked)
    secret = presented_secret(HTTPConnection(scope))
    if secret is None:
        return ANONYMOUS
    if refused_authentication:
        return INVALID_TOKEN
    state = scope["app"].state
    authenticator = getattr(state, "authenticator", None)  # ours and OpenID Connect
    engine = getattr(state, "engine", None)
    if authenticator is not None:
        record = authenticator.authenticate(secret)
    elif engine is not None:
        record = authenticate(engine, secret)
    else:
        return UNIDENTIFIED
    return subject_of(record) if isinstance(record, TokenRecord) else INVALID_TOKEN


def _new_id(message: Message, headers: list[tuple[bytes, bytes]]) -> str | None:
    """The ``id`` of a JSON answer that comes in one small body message."""
    body = message.get("body", b"")
    if message.get("more_body") or not body or len(body) > MAX_ID_BODY_BYTES:
        return None
    if not any(k == b"content-type" and v.startswith(b"application/json") for k, v in headers):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    found = document.get("id") if isinstance(document, dict) else None
    return found if isinstance(found, str) and len(found) <= 100 else None


class AuditLog:
    """ASGI middleware that records audit entries through ``app.state.audit`` (an
    :class:`~arserver.services.audit.AuditService`; without one it records nothing). Place it
    just outside the request guard, so that the guard's refusals are recorded too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self._service(scope)
        if service is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(service, scope, receive, send)
        else:
            await self._http(service, scope, receive, send)

    @staticmethod
    def _service(scope: Scope) -> AuditService | None:
        if scope["type"] not in ("http", "websocket"):
            return None
        path: str = scope["path"]
        if scope["type"] == "websocket" and path != LIVE_PATH:
            return None
        if scope["type"] == "http" and not path.startswith(AUDITED_PREFIXES):
            return None
        app = scope.get("app")
        service = getattr(getattr(app, "state", None), "audit", None)
        return service if isinstance(service, AuditService) else None

    async def _record(
        self, service: AuditService, scope: Scope, result: int | str, new_id: str | None = None
    ) -> None:
        key, parameters = _route(scope)

        def write() -> None:
            actor = _actor(scope, refused_authentication=result == 401)
            object_ = _object(service, parameters, new_id)
            service.record(actor, key, object_, str(result), _origin(scope))

        await run_in_threadpool(write)

    async def _summarise(self, service: AuditService, scope: Scope, result: int | str) -> None:
        """Count a refusal of a request without any credential; record the summary entry of
        its network when one is due."""
        origin = _origin(scope)
        pending = service.anonymous_refusals.note(origin or "unknown")
        if pending is None:
            return
        key = _route(scope)[0]
        summary = f"{pending} refused without a credential"

        def write() -> None:
            service.record(ANONYMOUS, key, summary, str(result), origin)

        await run_in_threadpool(write)

    @staticmethod
    def _anonymous(scope: Scope) -> bool:
        return _checked(scope) is None and presented_secret(HTTPConnection(scope)) is None

    def _wanted(self, scope: Scope, status: int) -> bool:
        if status == TOO_MANY_REQUESTS:  # refused before any work: recording it would be work
            return False
        if status in REFUSALS:
            return True
        if scope["method"] in WRITE_METHODS:
            return not (200 <= status < 300 and _route(scope)[0] in HIGH_VOLUME_WRITES)
        return _route(scope)[0] in _ADMIN_ONLY

    async def _entry(
        self, service: AuditService, scope: Scope, result: int | str, new_id: str | None = None
    ) -> None:
        """Record a request's entry, or only count it when it is a refusal of a request that
        presented no credential."""
        if result in (401, "refused") and self._anonymous(scope):
            await self._summarise(service, scope, result)
        else:
            await self._record(service, scope, result, new_id)

    async def _http(
        self, service: AuditService, scope: Scope, receive: Receive, send: Send
    ) -> None:
        held: Message | None = None
        recorded = False

        async def audited_send(message: Message) -> None:
            nonlocal held, recorded
            if message["type"] == "http.response.start" and not recorded:
                if self._wanted(scope, message["status"]):
                    held = message
                    return
                recorded = True  # nothing to record
            elif message["type"] == "http.response.body" and held is not None:
                start, held = held, None
                new_id = None
                if scope["method"] == "POST" and start["status"] in (201, 202):
                    new_id = _new_id(message, list(start.get("headers", [])))
                await self._entry(service, scope, start["status"], new_id)
                recorded = True
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not recorded and scope["method"] in WRITE_METHODS:
                await self._record(service, scope, 500)
            raise
        if held is not None:  # a start without a body
            await self._entry(service, scope, held["status"])
            await send(held)

    async def _websocket(
        self, service: AuditService, scope: Scope, receive: Receive, send: Send
    ) -> None:
        accepted = False

        async def audited_send(message: Message) -> None:
            nonlocal accepted
            if not accepted:
                if message["type"] == "websocket.accept":
                    accepted = True
                elif message["type"] in ("websocket.close", "websocket.http.response.start"):
                    accepted = True  # recorded once
                    await self._entry(service, scope, "refused")
            await send(message)

        await self.app(scope, receive, audited_send)
