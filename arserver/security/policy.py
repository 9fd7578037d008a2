"""Who may do what: the one table of action x role, used by every route and the live endpoint.

A caller is anything with a ``role`` (a :class:`~arserver.security.tokens.TokenRecord`); no
token at all is anonymity, which only public assets and their tiles admit (the routes that
allow it say so by not calling :func:`authorize` for anonymous callers). Roles:

- ``admin``: everything; ``gis``: assets, sensors, rules and everything a reader does;
- ``inspector``, ``planner``: read, and acknowledge alerts; ``viewer``: read;
- ``ingest``: devices and gateways, which only write observations.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol, TypeVar

from arserver.errors import AuthenticationError, PermissionDeniedError

#: Every role a token can have (a contract of ``arserver token create --role``).
ROLES = ("admin", "gis", "inspector", "planner", "viewer", "ingest")


class Action(StrEnum):
    """What a caller asks to do; the value is how a refusal names it."""

    READ = "read this"
    CHANGE_ASSETS = "change assets"
    REGISTER_SENSORS = "register sensors"
    WRITE_OBSERVATIONS = "write observations"
    ADD_RULES = "add rules"
    ACKNOWLEDGE_ALERTS = "acknowledge alerts"
    SUBSCRIBE_LIVE = "follow the live overlay"


_READERS = frozenset({"admin", "gis", "inspector", "planner", "viewer"})
_EDITORS = frozenset({"admin", "gis"})

#: The roles allowed each action.
POLICY: Mapping[Action, frozenset[str]] = {
    Action.READ: _READERS,
    Action.CHANGE_ASSETS: _EDITORS,
    Action.REGISTER_SENSORS: _EDITORS,
    Action.WRITE_OBSERVATIONS: _EDITORS | {"ingest"},
    Action.ADD_RULES: _EDITORS,
    Action.ACKNOWLEDGE_ALERTS: _EDITORS | {"inspector", "planner"},
    Action.SUBSCRIBE_LIVE: _READERS,
}


class Caller(Protocol):
    @property
    def role(self) -> str: ...


C = TypeVar("C", bound=Caller)


def allows(role: str, action: Action) -> bool:
    """Whether ``role`` may do ``action``."""
    return role in POLICY[action]


def authorize(caller: C | None, action: Action) -> C:
    """``caller`` if its role may do ``action``; :class:`AuthenticationError` without a caller,
    :class:`PermissionDeniedError` for a role that may not."""
    if caller is None:
        raise AuthenticationError("a token is required")
    if not allows(caller.role, action):
        raise PermissionDeniedError(f"role {caller.role!r} may not {action.value}")
    return caller
