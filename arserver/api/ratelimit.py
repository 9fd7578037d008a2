"""Rate limits: writes per token, joins of participation rounds and refused credentials per
client address.

Two ASGI middlewares share one :class:`RateLimits`:

- :class:`WriteLimit` sits inside the request guard (:mod:`arserver.api.guard`), which has
  authenticated every write under ``/api/v1`` by then: writes (POST, PUT, PATCH, DELETE) are
  counted per token id (per client address for a write that reached it without a token) and
  beyond the limit answered ``429`` before the body is read or the route runs.
- :class:`AuthFailureLimit` sits outside the guard. A request that presents a credential
  (``Authorization: Bearer`` or ``?access_token=``) and is answered ``401``, or a WebSocket
  handshake refused for its token, costs its client address one unit, once per distinct
  credential: guessing costs, a client retrying the same stale token does not lock out its
  address. Requests without a credential are no authentication attempt and cost nothing, and
  neither does a valid credential refused for what its role may not do (a ``403``, also on
  the live endpoint: an ``ingest`` token there is authenticated, then refused). Once an
  address has none left, a request from it with a credential this process has not accepted
  lately is answered ``429`` at once, before any database lookup; a credential accepted before
  (another user behind the same NAT or mobile carrier) still passes, so one attacker cannot
  lock out a whole office.

"Accepted lately" (:class:`RecentCredentials`) is kept in this process's memory only: after a
restart, or on another of several server processes, a colleague behind the same address as a
scanner has to wait for ``Retry-After`` once before the credential is known there too.

Limits are token buckets in this process's memory: each server process counts on its own (with
``--workers N`` a client gets up to N times the limit; a shared Redis limiter is future work).
Memory is bounded: at most :data:`MAX_KEYS` keys per limit, the least recently used forgotten
first, which can only ever give a forgotten key a full bucket again. The client address is
what the ASGI server says (behind a reverse proxy, uvicorn's ``--forwarded-allow-ips`` decides
whether ``X-Forwarded-For`` is believed); IPv6 addresses count per :data:`IPV6_PREFIX` (/56),
IPv4 per address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arserver.api.guard import API_PREFIX, STATE_KEY, WRITE_METHODS, presented_secret
from arserver.config import Settings
from arserver.security.policy import ROUTES
from arserver.security.tokens import TokenRecord

#: Keys (tokens, addresses) one limit remembers at most: about 150 bytes each.
MAX_KEYS = 50_000
#: Credentials remembered as accepted, and (address, credential) pairs as refused, at most.
MAX_REMEMBERED = 10_000
#: IPv6 clients are counted per network of this prefix length: /56 is the smallest block
#: RIPE-690 advises giving any end site, so one subscriber is one key and a /48 only 256.
IPV6_PREFIX = 56

Clock = Callable[[], float]


class TokenBuckets:
    """A token bucket per key: a key may spend ``burst`` units at once and ``rate_per_s`` units
    per second after that. ``clock`` gives seconds (monotonic); at most ``max_keys`` keys are
    kept, least recently used forgotten first. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("a token bucket needs a positive rate, a burst of 1 or more and room")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        held = self._buckets.get(key)
        if held is None:
            return self.burst
        level, at = held
        return min(self.burst, level + max(now - at, 0.0) * self.rate_per_s)

    def _store(self, key: str, level: float, now: float) -> None:
        self._buckets[key] = (level, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may spend one unit (0: now); spends nothing."""
        level = self._level(key, self.clock())
        return 0.0 if level >= 1 else (1 - level) / self.rate_per_s

    def take(self, key: str) -> float:
        """Spend one unit of ``key``'s bucket if it holds one and return 0; otherwise spend
        nothing and return the seconds until it will."""
        now = self.clock()
        level = self._level(key, now)
        if level < 1:
            self._store(key, level, now)
            return (1 - level) / self.rate_per_s
        self._store(key, level - 1, now)
        return 0.0


class RecentCredentials:
    """Credentials (or other text) seen lately, at most ``max_entries``, least recently used
    forgotten first. Only keyed digests are kept (the key is random per process), never a
    secret or the hash the database stores."""

    def __init__(self, max_entries: int = MAX_REMEMBERED) -> None:
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _digest(self, secret: str) -> bytes:
        data = secret.encode("utf-8", errors="replace")
        return hmac.new(self._key, data, hashlib.sha256).digest()[:16]

    def __contains__(self, secret: object) -> bool:
        return isinstance(secret, str) and self._digest(secret) in self._seen

    def add(self, secret: str) -> None:
        digest = self._digest(secret)
        self._seen[digest] = None
        self._seen.move_to_end(digest)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def discard(self, secret: str) -> None:
        self._seen.pop(self._digest(secret), None)


@dataclass
class RateLimits:
    """The limits of one application: ``writes`` per token (None: unlimited), ``failures``
    (refused credentials) per client address (None: unlimited), the credentials accepted
    lately, and the (address, credential) pairs refused lately."""

    writes: TokenBuckets | None
    failures: TokenBuckets | None
    joins: TokenBuckets | None = None
    accepted: RecentCredentials = field(default_factory=RecentCredentials)
    refused: RecentCredentials = field(default_factory=RecentCredentials)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic) -> RateLimits:
        """``ARSERVER_RATE_WRITES_PER_S`` with ``ARSERVER_RATE_WRITES_BURST``, and
        ``ARSERVER_RATE_AUTH_FAILURES_PER_MIN`` (as many at once); 0 switches a limit off."""
        writes = failures = None
        if settings.rate_writes_per_s > 0:
            writes = TokenBuckets(
                settings.rate_writes_per_s, settings.rate_writes_burst, clock=clock
            )
        per_min = settings.rate_auth_failures_per_min
        if per_min > 0:
            failures = TokenBuckets(per_min / 60, max(per_min, 1.0), clock=clock)
        per_hour = settings.rate_round_joins_per_hour
        joins = None
        if per_hour > 0:
            joins = TokenBuckets(per_hour / 3600, max(per_hour, 1.0), clock=clock)
        return cls(writes, failures, joins)


def client_key(scope: Scope) -> str:
    """The client address that limits count by: IPv4 addresses alone, IPv6 ones by their
    :data:`IPV6_PREFIX` network (one subscriber's), IPv4-mapped IPv6 as IPv4."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def retry_after(wait_s: float) -> int:
    """``Retry-After`` in whole seconds: the wait rounded up, at least 1."""
    return max(1, math.ceil(wait_s))


def _refusal(wait_s: float, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    seconds = retry_after(wait_s)
    body = json.dumps({"detail": f"{detail}; try again in {seconds} s"}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"retry-after", str(seconds).encode("ascii")),
    ]
    return headers, body


async def _refuse_http(send: Send, wait_s: float, detail: str) -> None:
    headers, body = _refusal(wait_s, detail)
    headers.append((b"connection", b"close"))  # the unread body is not waited for
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(
    scope: Scope, receive: Receive, send: Send, wait_s: float, detail: str
) -> None:
    """A 429 answer to the handshake where the server can send one, a refused one otherwise."""
    if (await receive())["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": detail})
        return
    headers, body = _refusal(wait_s, detail)
    await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def is_join(method: str, path: str) -> bool:
    """Whether this is a join of a participation round (``POST
    /api/v1/rounds/{round_id}/participants``)."""
    parts = path.split("/")
    return (
        method == "POST"
        and len(parts) == 6
        and parts[1:4] == ["api", "v1", "rounds"]
        and (parts[5] == "participants")
    )


class WriteLimit:
    """ASGI middleware, inside the request guard: writes under ``/api/v1`` beyond the limit
    of their token (or client address) get ``429`` with ``Retry-After``. Joins of a
    participation round count per client address instead: every resident presents the same
    round link, whose write limit one address could otherwise use up for all."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_join(scope["method"], str(scope["path"])):
            joins = self.limits.joins
            wait = joins.take(f"address {client_key(scope)}") if joins is not None else 0.0
            if wait > 0:
                await _refuse_http(send, wait, "too many joins from this address")
                return
            await self.app(scope, receive, send)
            return
        buckets = self.limits.writes
        if (
            buckets is not None
            and scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and str(scope["path"]).startswith(API_PREFIX)
        ):
            record = scope.get("state", {}).get(STATE_KEY)
            if isinstance(record, TokenRecord):
                key, who = f"token {record.id}", "this token"
            else:
                key, who = f"address {client_key(scope)}", "this address"
            wait = buckets.take(key)
            if wait > 0:
                await _refuse_http(send, wait, f"too many writes from {who}")
                return
        await self.app(scope, receive, send)


class AuthFailureLimit:
    """ASGI middleware, outside the request guard: counts refused credentials per client
    address and, beyond the limit, answers ``429`` to that address's requests with a
    credential it has not accepted lately (HTTP and WebSocket handshakes)."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        buckets = self.limits.failures
        if buckets is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secret = presented_secret(HTTPConnection(scope))
        if secret is None:  # no credential: not an authentication attempt
            await self.app(scope, receive, send)
            return
        address = client_key(scope)
        accepted = self.limits.accepted
        if secret not in accepted:
            wait = buckets.wait_s(address)
            if wait > 0:
                detail = "too many refused credentials from this address"
                if scope["type"] == "http":
                    await _refuse_http(send, wait, detail)
                else:
                    await _refuse_websocket(scope, receive, send, wait, detail)
                return
        outcome: dict[str, Any] = {}

        async def watching(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                outcome.setdefault("status", message["status"])
            elif kind == "websocket.accept":
                outcome.setdefault("status", 101)
            elif kind in ("websocket.close", "websocket.http.response.start"):
                outcome.setdefault("status", 403)
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            status = outcome.get("status")
            if status is not None and status != 401 and _authenticated(scope, status):
                accepted.add(secret)  # also when refused for its role: it is valid
            elif status == 401 or (scope["type"] == "websocket" and status == 403):
                pair = f"{address} {secret}"
                if pair not in self.limits.refused:
                    buckets.take(address)
                    self.limits.refused.add(pair)
                accepted.discard(secret)


def _authenticated(scope: Scope, status: int) -> bool:
    """Whether a non-401 answer shows that the presented credential was checked and valid: the
    guard or the live endpoint found its token (the live endpoint also when it refuses the
    token's role), the live endpoint accepted it, or a route of the policy table (each of which
    refuses an invalid credential with 401) answered with success."""
    if isinstance(scope.get("state", {}).get(STATE_KEY), TokenRecord):
        return True
    if scope["type"] == "websocket":
        return status == 101
    route = getattr(scope.get("route"), "path_format", None)  # as the schema names it
    return status < 400 and f"{scope['method']} {route}" in ROUTES
