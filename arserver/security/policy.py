"""Who may do what: the one table of action x role, used by every route and the live endpoint.

A caller is anything with a ``role`` (a :class:`~arserver.security.tokens.TokenRecord`); no
token at all is anonymity, which only public assets and their tiles admit (the routes that
allow it say so by not calling :func:`authorize` for anonymous callers). Roles:

- ``admin``: everything; ``gis``: assets, sensors, rules, parking places and everything a
  reader does;
- ``inspector``: read, acknowledge alerts, record inspections; ``planner``: read, acknowledge
  alerts, run participation rounds and moderate comments; ``viewer``: read and comment;
- ``ingest``: devices and gateways, which only write observations;
- ``resident``: a participant in one public participation round, always narrowed to it.

A token may also be narrowed to one asset or one layer (:class:`Scope`): it then only reads
those assets and their tiles (:attr:`Action.READ_ASSETS`, checked per asset by :func:`admits`).
Resident tokens are narrowed to one round: ``round-link:ID`` (the round's public link, shared
by everyone who has it: it reads the round and its visible comments and lets a resident
join) or ``round:ID`` (one resident's own token from joining: reads the same, and comments
in the round). Either reads public assets only, as anonymous callers do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from arserver.errors import AuthenticationError, PermissionDeniedError

_ASSET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LAYER = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")

#: Every role a token can have (a contract of ``arserver token create --role``).
ROLES = ("admin", "gis", "inspector", "planner", "viewer", "ingest", "resident")


class Action(StrEnum):
    """What a caller asks to do; the value is how a refusal names it."""

    READ = "read this"
    READ_ASSETS = "read assets"
    CHANGE_ASSETS = "change assets"
    REGISTER_SENSORS = "register sensors"
    WRITE_OBSERVATIONS = "write observations"
    ADD_RULES = "add rules"
    ACKNOWLEDGE_ALERTS = "acknowledge alerts"
    SUBSCRIBE_LIVE = "follow the live overlay"
    MANAGE_TOKENS = "manage tokens"
    READ_METRICS = "read the metrics"
    READ_AUDIT = "read the audit log"
    MANAGE_PERSONAL_DATA = "export or erase a person's data"
    WRITE_INSPECTIONS = "record inspections"
    READ_ROUNDS = "read participation rounds"
    JOIN_ROUNDS = "join a participation round"
    READ_COMMENTS = "read comments"
    COMMENT = "comment"
    MODERATE_COMMENTS = "moderate and answer comments"
    MANAGE_ROUNDS = "manage participation rounds"
    INTROSPECT = "see what this token may do"
    MANAGE_PARKING = "manage parking places"


_READERS = frozenset({"admin", "gis", "inspector", "planner", "viewer"})
_EDITORS = frozenset({"admin", "gis"})
_PLANNERS = frozenset({"admin", "planner"})

#: The roles allowed each action.
POLICY: Mapping[Action, frozenset[str]] = {
    Action.READ: _READERS,
    Action.READ_ASSETS: _READERS | {"resident"},  # public assets only (their scope)
    Action.CHANGE_ASSETS: _EDITORS,
    Action.REGISTER_SENSORS: _EDITORS,
    Action.WRITE_OBSERVATIONS: _EDITORS | {"ingest"},
    Action.ADD_RULES: _EDITORS,
    Action.ACKNOWLEDGE_ALERTS: _EDITORS | {"inspector", "planner"},
    Action.SUBSCRIBE_LIVE: _READERS,
    Action.MANAGE_TOKENS: frozenset({"admin"}),
    Action.READ_METRICS: frozenset({"admin"}),
    Action.READ_AUDIT: frozenset({"admin"}),
    Action.MANAGE_PERSONAL_DATA: frozenset({"admin"}),
    Action.WRITE_INSPECTIONS: _EDITORS | {"inspector"},
    Action.READ_ROUNDS: _READERS | {"resident"},
    Action.JOIN_ROUNDS: frozenset({"resident"}),
    Action.READ_COMMENTS: _READERS | {"resident"},
    Action.COMMENT: _READERS | {"resident"},
    Action.MODERATE_COMMENTS: _PLANNERS,
    Action.MANAGE_ROUNDS: _PLANNERS,
    Action.INTROSPECT: frozenset(ROLES),
    Action.MANAGE_PARKING: _EDITORS,
}

#: What a narrowed token may still do, by the kind of its scope (anything else is refused).
SCOPED_ACTIONS: Mapping[str, frozenset[Action]] = {
    "asset": frozenset({Action.READ_ASSETS, Action.INTROSPECT}),
    "layer": frozenset({Action.READ_ASSETS, Action.INTROSPECT}),
    # Whoever has a public round's link reads what was said in it before joining.
    "round-link": frozenset(
        {
            Action.READ_ASSETS,
            Action.READ_ROUNDS,
            Action.READ_COMMENTS,
            Action.JOIN_ROUNDS,
            Action.INTROSPECT,
        }
    ),
    "round": frozenset(
        {
            Action.READ_ASSETS,
            Action.READ_ROUNDS,
            Action.READ_COMMENTS,
            Action.COMMENT,
            Action.INTROSPECT,
        }
    ),
}
#: The scope kinds of resident tokens, and the scope every resident token has one of.
ROUND_SCOPES = frozenset({"round-link", "round"})


@dataclass(frozen=True)
class RouteRule:
    """What a route needs: ``action``; ``anonymous``: callers without a token may use it too,
    and then see public things only (public assets and their tiles)."""

    action: Action
    anonymous: bool = False


#: Every route of the API and the live endpoint ("METHOD path" as in the OpenAPI schema) and
#: what it needs. The routes check it themselves; tests/arserver/security/test_policy.py calls
#: every route with every role and asserts this table, and fails for a route missing here.
ROUTES: Mapping[str, RouteRule] = {
    "POST /api/v1/assets": RouteRule(Action.CHANGE_ASSETS),
    "GET /api/v1/assets": RouteRule(Action.READ_ASSETS, anonymous=True),
    "GET /api/v1/assets/{asset_id}": RouteRule(Action.READ_ASSETS, anonymous=True),
    "PATCH /api/v1/assets/{asset_id}": RouteRule(Action.CHANGE_ASSETS),
    "DELETE /api/v1/assets/{asset_id}": RouteRule(Action.CHANGE_ASSETS),
    "GET /api/v1/tokens/current": RouteRule(Action.INTROSPECT),
    "GET /tiles/scene/{layer}/tileset.json": RouteRule(Action.READ_ASSETS, anonymous=True),
    "GET /tiles/{asset_id}/{path}": RouteRule(Action.READ_ASSETS, anonymous=True),
    "HEAD /tiles/{asset_id}/{path}": RouteRule(Action.READ_ASSETS, anonymous=True),
    "POST /api/v1/sensors": RouteRule(Action.REGISTER_SENSORS),
    "GET /api/v1/sensors/{sensor_id}": RouteRule(Action.READ),
    "PATCH /api/v1/sensors/{sensor_id}": RouteRule(Action.REGISTER_SENSORS),
    # The register of public sensors is published to everyone.
    "GET /api/v1/register": RouteRule(Action.READ, anonymous=True),
    # The SensorThings API: anonymous callers see the public sensors' data only.
    "GET /sta/v1.1": RouteRule(Action.READ, anonymous=True),
    "GET /sta/v1.1/{path}": RouteRule(Action.READ, anonymous=True),
    "POST /api/v1/align": RouteRule(Action.READ),
    "GET /api/v1/sensors/{sensor_id}/observations": RouteRule(Action.READ),
    "GET /api/v1/sensors/{sensor_id}/trajectory": RouteRule(Action.READ),
    "GET /api/v1/sensors/{sensor_id}/observations/buckets": RouteRule(Action.READ),
    "GET /api/v1/observations/latest": RouteRule(Action.READ),
    "POST /api/v1/observations": RouteRule(Action.WRITE_OBSERVATIONS),
    "GET /api/v1/ingest/stats": RouteRule(Action.READ),
    "POST /api/v1/rules": RouteRule(Action.ADD_RULES),
    "GET /api/v1/rules": RouteRule(Action.READ),
    "GET /api/v1/alerts": RouteRule(Action.READ),
    "POST /api/v1/alerts/{alert_id}/acknowledge": RouteRule(Action.ACKNOWLEDGE_ALERTS),
    "GET /api/v1/live/stats": RouteRule(Action.READ),
    "WEBSOCKET /api/v1/live": RouteRule(Action.SUBSCRIBE_LIVE),
    "POST /api/v1/tokens": RouteRule(Action.MANAGE_TOKENS),
    "GET /api/v1/tokens": RouteRule(Action.MANAGE_TOKENS),
    "DELETE /api/v1/tokens/{token_id}": RouteRule(Action.MANAGE_TOKENS),
    # Also open to the scrape secret ARSERVER_METRICS_TOKEN (arserver.api.metrics).
    "GET /metrics": RouteRule(Action.READ_METRICS),
    "GET /api/v1/audit": RouteRule(Action.READ_AUDIT),
    "GET /api/v1/privacy/subjects/{subject}": RouteRule(Action.MANAGE_PERSONAL_DATA),
    "DELETE /api/v1/privacy/subjects/{subject}": RouteRule(Action.MANAGE_PERSONAL_DATA),
    "GET /api/v1/inspections/categories": RouteRule(Action.READ),
    "POST /api/v1/inspections": RouteRule(Action.WRITE_INSPECTIONS),
    "GET /api/v1/inspections": RouteRule(Action.READ),
    "GET /api/v1/inspections/export": RouteRule(Action.READ),
    "GET /api/v1/inspections/{inspection_id}": RouteRule(Action.READ),
    "PATCH /api/v1/inspections/{inspection_id}": RouteRule(Action.WRITE_INSPECTIONS),
    "POST /api/v1/inspections/{inspection_id}/photos": RouteRule(Action.WRITE_INSPECTIONS),
    "GET /api/v1/inspections/{inspection_id}/photos/{photo_id}": RouteRule(Action.READ),
    "POST /api/v1/comments": RouteRule(Action.COMMENT),
    "GET /api/v1/comments": RouteRule(Action.READ_COMMENTS),
    "GET /api/v1/comments/{comment_id}": RouteRule(Action.READ_COMMENTS),
    "POST /api/v1/comments/{comment_id}/hide": RouteRule(Action.MODERATE_COMMENTS),
    "POST /api/v1/comments/{comment_id}/restore": RouteRule(Action.MODERATE_COMMENTS),
    "POST /api/v1/comments/{comment_id}/response": RouteRule(Action.MODERATE_COMMENTS),
    "POST /api/v1/rounds": RouteRule(Action.MANAGE_ROUNDS),
    # Public rounds are announced to everyone: anonymous callers see those only.
    "GET /api/v1/rounds": RouteRule(Action.READ_ROUNDS, anonymous=True),
    "GET /api/v1/rounds/{round_id}": RouteRule(Action.READ_ROUNDS, anonymous=True),
    "PATCH /api/v1/rounds/{round_id}": RouteRule(Action.MANAGE_ROUNDS),
    "POST /api/v1/rounds/{round_id}/link": RouteRule(Action.MANAGE_ROUNDS),
    "POST /api/v1/rounds/{round_id}/participants": RouteRule(Action.JOIN_ROUNDS),
    "GET /api/v1/rounds/{round_id}/report": RouteRule(Action.MODERATE_COMMENTS),
    "GET /api/v1/parking/places": RouteRule(Action.READ),
    "POST /api/v1/parking/places": RouteRule(Action.MANAGE_PARKING),
    "GET /api/v1/parking/zones": RouteRule(Action.READ),
    "POST /api/v1/parking/zones/import": RouteRule(Action.MANAGE_PARKING),
    "GET /api/v1/parking/car-parks": RouteRule(Action.READ),
    "GET /api/v1/parking/places/{place_id}": RouteRule(Action.READ),
    "DELETE /api/v1/parking/places/{place_id}": RouteRule(Action.MANAGE_PARKING),
    "GET /api/v1/parking/places/{place_id}/history": RouteRule(Action.READ),
    "GET /api/v1/parking/places/{place_id}/profile": RouteRule(Action.READ),
    "GET /api/v1/parking/places/{place_id}/forecast": RouteRule(Action.READ),
}
#: Routes for load balancers and orchestrators that ask for no token at all.
OPEN_ROUTES = frozenset({"GET /healthz", "GET /readyz"})


@dataclass(frozen=True)
class Scope:
    """What a narrowed token may read: one asset (``kind`` ``asset``, ``name`` its id) or the
    assets of one layer (``kind`` ``layer``)."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``asset:ID``, ``layer:NAME``, ``round:ID`` or ``round-link:ID``; :class:`ValueError`
        otherwise."""
        kind, _, name = text.partition(":")
        if kind in ("asset", "round", "round-link") and _ASSET_ID.match(name):
            return cls(kind, name)
        if kind == "layer" and _LAYER.match(name):
            return cls(kind, name)
        raise ValueError(f"a scope is 'asset:ID', 'layer:NAME' or 'round:ID', got {text[:150]!r}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def admits(self, asset_id: str, layer: str) -> bool:
        """Whether an asset with this id, in this layer, is within the scope (a round's
        scope takes in no asset: its residents read public assets only)."""
        if self.kind == "asset":
            return asset_id == self.name
        return self.kind == "layer" and layer == self.name

    @property
    def round_id(self) -> str | None:
        """The round of a resident token's scope, None for other scopes."""
        return self.name if self.kind in ROUND_SCOPES else None


class Caller(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def scope(self) -> Scope | None: ...


C = TypeVar("C", bound=Caller)


def allows(role: str, action: Action) -> bool:
    """Whether ``role`` may do ``action``."""
    return role in POLICY[action]


def _scope_allows(scope: Scope | None, action: Action) -> bool:
    return scope is None or action in SCOPED_ACTIONS.get(scope.kind, frozenset())


def permits(caller: Caller, action: Action) -> bool:
    """Whether :func:`authorize` would let ``caller`` do ``action``."""
    return allows(caller.role, action) and _scope_allows(caller.scope, action)


def authorize(caller: C | None, action: Action) -> C:
    """``caller`` if its role may do ``action``; :class:`AuthenticationError` without a caller,
    :class:`PermissionDeniedError` for a role that may not, and for a narrowed token (one with
    a scope) asked for anything its scope's kind does not allow (:data:`SCOPED_ACTIONS`). The
    route then checks the object: the asset with :func:`admits`, the round with
    :attr:`Scope.round_id`."""
    if caller is None:
        raise AuthenticationError("a token is required")
    if not allows(caller.role, action):
        raise PermissionDeniedError(f"role {caller.role!r} may not {action.value}")
    if not _scope_allows(caller.scope, action):
        raise PermissionDeniedError(f"this token is limited to {caller.scope}")
    return caller


def admits(caller: Caller | None, asset_id: str, layer: str) -> bool:
    """Whether ``caller``'s scope (if any) takes in this asset; callers without a scope take in
    every asset their role may read."""
    if caller is not None and caller.role == "resident":
        return False  # residents read public assets only, whatever their scope (or none)
    return caller is None or caller.scope is None or caller.scope.admits(asset_id, layer)
