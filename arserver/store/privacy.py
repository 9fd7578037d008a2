"""The SQL behind the export and erasure of one person's data
(:mod:`arserver.services.privacy`): their tokens, the alerts acknowledged under their
tokens' names or their OpenID Connect subject id, and the inspections, their history and
photos, and the comments that name them (:class:`PersonColumns`). (Their audit entries are
in :mod:`arserver.store.audit`.) Lists are bounded by a ``limit`` and give the newest records,
oldest of them first."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Numeric, Table, cast, func, or_, select, update

from arserver.store.schema import (
    alerts,
    comment_events,
    comments,
    inspection_events,
    inspection_photos,
    inspections,
    tokens,
)

#: What an erased token is called from then on.
ERASED_NAME = ""

_TOKEN_FIELDS = (
    tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.scope, tokens.c.created_at,
    tokens.c.expires_at, tokens.c.revoked_at,
)  # fmt: skip


def token_ids_named(connection: Connection, name: str) -> list[str]:
    """The ids of the tokens called exactly ``name``."""
    query = select(tokens.c.id).where(tokens.c.name == name).order_by(tokens.c.id)
    return list(connection.execute(query).scalars())


def token_rows(connection: Connection, ids: Collection[str], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest tokens of ``ids`` as the token list shows them (never a hash),
    oldest of them first."""
    if not ids:
        return []
    query = (
        select(*_TOKEN_FIELDS)
        .where(tokens.c.id.in_(sorted(ids)))
        .order_by(tokens.c.created_at.desc(), tokens.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)][::-1]


def token_count(connection: Connection, ids: Collection[str]) -> int:
    """How many of the tokens of ``ids`` exist."""
    if not ids:
        return 0
    query = select(func.count()).select_from(tokens).where(tokens.c.id.in_(sorted(ids)))
    return int(connection.execute(query).scalar_one())


def token_names(connection: Connection, ids: Collection[str]) -> list[str]:
    """The distinct names of the tokens of ``ids`` (erased ones left out)."""
    if not ids:
        return []
    query = select(tokens.c.name).where(tokens.c.id.in_(sorted(ids))).distinct()
    return sorted(name for name in connection.execute(query).scalars() if name != ERASED_NAME)


def blank_token_names(connection: Connection, ids: Collection[str]) -> int:
    """Set the names of the tokens of ``ids`` to :data:`ERASED_NAME`; how many changed."""
    if not ids:
        return 0
    changed: int = connection.execute(
        update(tokens)
        .where(tokens.c.id.in_(sorted(ids)), tokens.c.name != ERASED_NAME)
        .values(name=ERASED_NAME)
    ).rowcount
    return changed


def acknowledgements_by(
    connection: Connection, names: Collection[str], limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` newest alerts acknowledged under one of ``names`` (alerts record the
    token's name, or an OpenID Connect caller's subject id), oldest of them first."""
    if not names:
        return []
    query = (
        select(
            alerts.c.id, alerts.c.sensor_id, alerts.c.kind, alerts.c.acknowledged_at,
            alerts.c.acknowledged_by,
        )
        .where(alerts.c.acknowledged_by.in_(sorted(names)))
        .order_by(alerts.c.acknowledged_at.desc(), alerts.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)][::-1]


def acknowledgement_count(connection: Connection, names: Collection[str]) -> int:
    """How many alerts :func:`acknowledgements_by` chooses from."""
    if not names:
        return 0
    query = (
        select(func.count()).select_from(alerts).where(alerts.c.acknowledged_by.in_(sorted(names)))
    )
    return int(connection.execute(query).scalar_one())


def erase_acknowledgements(connection: Connection, names: Collection[str]) -> int:
    """Clear ``acknowledged_by`` where it is one of ``names`` (the acknowledgement and its time
    stay); how many alerts changed."""
    if not names:
        return 0
    changed: int = connection.execute(
        update(alerts)
        .where(alerts.c.acknowledged_by.in_(sorted(names)))
        .values(acknowledged_by=None)
    ).rowcount
    return changed


@dataclass(frozen=True)
class PersonColumns:
    """The rows of ``table`` whose column ``person`` names a person (as records store people:
    :func:`arserver.security.actors.person_of`). ``fields`` are exported (only what is the
    person's own: a moderator's export holds their reasons, not the comments they hid),
    newest first by ``order``; erasing sets ``erase`` on those rows (values or SQL
    expressions of the row)."""

    table: Table
    person: str
    fields: tuple[str, ...]
    order: str
    erase: Mapping[str, Any]

    def _named(self, names: Collection[str]) -> ColumnElement[bool]:
        return self.table.c[self.person].in_(sorted(names))

    def rows(
        self, connection: Connection, names: Collection[str], limit: int
    ) -> list[dict[str, Any]]:
        """The ``limit`` newest rows naming one of ``names``, oldest of them first."""
        if not names:
            return []
        query = (
            select(*(self.table.c[f] for f in self.fields))
            .where(self._named(names))
            .order_by(self.table.c[self.order].desc(), *(c.desc() for c in self.table.primary_key))
            .limit(limit)
        )
        return [dict(row._mapping) for row in connection.execute(query)][::-1]

    def count(self, connection: Connection, names: Collection[str]) -> int:
        """How many rows name one of ``names``."""
        if not names:
            return 0
        query = select(func.count()).select_from(self.table).where(self._named(names))
        return int(connection.execute(query).scalar_one())

    def blank(self, connection: Connection, names: Collection[str]) -> int:
        """Erase the person from every row naming them; how many rows changed."""
        if not names:
            return 0
        changed: int = connection.execute(
            update(self.table).where(self._named(names)).values(**self.erase)
        ).rowcount
        return changed


#: What an erased comment's author is shown as.
ERASED_AUTHOR = ""
#: Decimal places of degrees an erased comment's place keeps (about 100 m): enough for the
#: round's report to say roughly where, too coarse to point at a house.
ERASED_PLACE_DECIMALS = 3


def _coarse(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.round(cast(column, Numeric), ERASED_PLACE_DECIMALS)


c, e, i, v, p = (
    comments.c,
    comment_events.c,
    inspections.c,
    inspection_events.c,
    inspection_photos.c,
)
INSPECTIONS = PersonColumns(
    inspections, "created_by",
    ("id", "category", "severity", "status", "description", "lon", "lat", "h", "created_by",
     "created_at", "updated_at"),
    "created_at", {"created_by": None},
)  # fmt: skip
INSPECTION_ASSIGNMENTS = PersonColumns(
    inspections, "assignee", ("id", "category", "status", "assignee", "updated_at"),
    "updated_at", {"assignee": None},
)  # fmt: skip
INSPECTION_EVENTS = PersonColumns(
    inspection_events, "actor",
    ("inspection_id", "at", "change", "from_status", "to_status", "actor", "note"),
    # The note is the person's own words: it goes with them; the change itself stays.
    "at", {"actor": None, "note": None},
)  # fmt: skip
INSPECTION_EVENT_ASSIGNMENTS = PersonColumns(
    inspection_events, "assignee", ("inspection_id", "at", "change", "assignee"),
    "at", {"assignee": None},
)  # fmt: skip
INSPECTION_PHOTOS = PersonColumns(
    inspection_photos, "created_by",
    ("id", "inspection_id", "content_type", "width", "height", "created_by", "created_at"),
    "created_at", {"created_by": None},  # the photo shows public space, not its maker
)  # fmt: skip
COMMENTS = PersonColumns(
    comments, "author",
    ("id", "round_id", "thread_id", "reply_to", "text", "lon", "lat", "h", "asset_id",
     "feature_id", "author_name", "status", "created_at"),
    "created_at",
    # An erased comment keeps its place in its thread and its round's counts, nothing of what
    # the person wrote, and only roughly where it was.
    {"author": None, "author_name": ERASED_AUTHOR, "text": "", "status": "erased",
     "lon": _coarse(comments.c.lon), "lat": _coarse(comments.c.lat), "h": None},
)  # fmt: skip
COMMENT_MODERATION = PersonColumns(
    comments, "moderated_by", ("id", "status", "moderation_reason", "moderated_by", "moderated_at"),
    "moderated_at", {"moderated_by": None},
)  # fmt: skip
COMMENT_RESPONSES = PersonColumns(
    comments, "responded_by", ("id", "response", "responded_by", "responded_at"),
    "responded_at", {"responded_by": None},
)  # fmt: skip
COMMENT_EVENTS = PersonColumns(
    comment_events, "actor", ("comment_id", "at", "action", "text", "actor"),
    "at", {"actor": None},
)  # fmt: skip


def live_records_of(connection: Connection, names: Collection[str]) -> tuple[list[str], list[str]]:
    """The ids of the records on the live overlay that name one of ``names`` (open or
    in-progress inspections they recorded or are assigned to; visible comments they wrote),
    so that their erasure can be announced."""
    if not names:
        return [], []
    wanted = sorted(names)
    active = select(inspections.c.id).where(
        inspections.c.status.in_(["open", "in_progress"]),
        or_(inspections.c.created_by.in_(wanted), inspections.c.assignee.in_(wanted)),
    )
    written = select(comments.c.id).where(
        comments.c.author.in_(wanted), comments.c.status == "visible"
    )
    return (
        list(connection.execute(active.order_by(inspections.c.id)).scalars()),
        list(connection.execute(written.order_by(comments.c.id)).scalars()),
    )


def places_of_comments(
    connection: Connection, names: Collection[str]
) -> list[tuple[str, float, float]]:
    """(id, lon, lat) of the comments written by one of ``names``, before their erasure."""
    if not names:
        return []
    query = select(comments.c.id, comments.c.lon, comments.c.lat).where(
        comments.c.author.in_(sorted(names))
    )
    return [(row.id, row.lon, row.lat) for row in connection.execute(query)]


def coarsen_inherited_places(
    connection: Connection, places: list[tuple[str, float, float]]
) -> list[str]:
    """Round, as an erased comment's, the place of the replies that took it from one of these
    comments (a reply to it at exactly its place: (id, lon, lat) as before the erasure);
    the ids of the replies changed."""
    changed: list[str] = []
    for parent, lon, lat in places:
        inherited = (comments.c.reply_to == parent, comments.c.lon == lon, comments.c.lat == lat)
        ids = list(connection.execute(select(comments.c.id).where(*inherited)).scalars())
        if ids:
            connection.execute(
                update(comments)
                .where(comments.c.id.in_(ids))
                .values(lon=_coarse(comments.c.lon), lat=_coarse(comments.c.lat), h=None)
            )
            changed += ids
    return changed
