"""SensorThings resource paths (``Things(1)/Datastreams``, ``Datastreams(3)/unitOfMeasurement``,
``Observations(7)/result/$value``, ``Things/$ref``), split into segments without knowing the
data model: which segment is a navigation property and which a property is decided by the
caller."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from arserver.errors import NotFoundError, QueryError

#: The most segments a path may have.
MAX_SEGMENTS: Final = 8
#: An id that no entity has, for a key that is not a whole number in the 64-bit range.
NO_ID: Final = -(1 << 63)

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_]{0,59})(?:\((?P<key>[^()]{0,80})\))?$")


@dataclass(frozen=True)
class Segment:
    """One step: a name and, when the step is addressed by key (``Things(1)``), the id
    (:data:`NO_ID` for a key no entity can have, e.g. ``Things('x')``)."""

    name: str
    key: int | None = None


@dataclass(frozen=True)
class ResourcePath:
    """``segments`` (entity sets, navigation properties and at most one property last);
    ``value``: the path ends in ``$value``; ``ref``: it ends in ``$ref``."""

    segments: tuple[Segment, ...]
    value: bool = False
    ref: bool = False


def parse_path(text: str) -> ResourcePath:
    """The segments of ``text`` (the part after the service root, without a leading slash).
    :class:`NotFoundError` for a path that names nothing the service could have."""
    parts = [part for part in text.split("/")]
    if parts and parts[-1] == "":
        parts.pop()
    value = ref = False
    if parts and parts[-1] == "$value":
        value = True
        parts.pop()
    elif parts and parts[-1] == "$ref":
        ref = True
        parts.pop()
    if not parts or len(parts) > MAX_SEGMENTS:
        raise NotFoundError("no such resource")
    segments = []
    for part in parts:
        match = _SEGMENT.match(part)
        if match is None:
            raise NotFoundError(f"no resource {part[:60]!r}")
        key = match.group("key")
        segments.append(Segment(match.group("name"), None if key is None else _id(key)))
    return ResourcePath(tuple(segments), value, ref)


def _id(key: str) -> int:
    """The id in a key: a whole number (negative for hourly aggregates), or :data:`NO_ID`
    for a key that no entity has (a string, or beyond 64 bits)."""
    text = key.strip()
    digits = text[1:] if text.startswith("-") else text
    if digits.isascii() and digits.isdigit() and len(digits) <= 19:
        number = int(text)
        return number if -(1 << 63) <= number < (1 << 63) and number != NO_ID else NO_ID
    if text.startswith("'") or (digits.isascii() and digits.isdigit()):
        return NO_ID
    raise QueryError(f"an id is a whole number, as in Things(1); got {key[:40]!r}")
