"""The write path of field inspections: findings recorded, changed (workflow, assignment,
edits, notes) and given photos, each with its history entry in the same transaction, and
announced on the live ``inspections`` layer after the commit.

:class:`InspectionService` is the only code that writes ``inspections``,
``inspection_events`` and ``inspection_photos``, and the only code that makes their change
events. The workflow (:data:`TRANSITIONS`) and what a change writes (:func:`plan_edit`) are
pure and tested without a database.

Workflow: ``open -> in_progress -> resolved | rejected``; an open inspection may also be
resolved or rejected at once, one in progress may go back to open, and a resolved or rejected
one may be reopened. Resolving, rejecting and reopening need a note (why). A closed (resolved
or rejected) inspection is changed only by reopening it; notes and photos may still be added.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine

from arserver.domain import CLOSED_STATUSES, Change, inspection_change
from arserver.errors import ConflictError, InputError
from arserver.live.bus import Bus
from arserver.security.policy import Caller
from arserver.services.checks import storable_text
from arserver.services.photos import clean_photo
from arserver.services.places import Extent, resolve_place
from arserver.store import inspections as rows
from arserver.store.inspections import (
    Cursor,
    EventRow,
    Filters,
    InspectionRow,
    PhotoRow,
)

#: Every status, in workflow order (a contract of the API).
STATUSES = ("open", "in_progress", "resolved", "rejected")
#: How urgent a finding is, least first; ``normal`` when not given.
SEVERITIES = ("low", "normal", "high", "urgent")
DEFAULT_SEVERITY = "normal"
#: The statuses each status may change to.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "resolved", "rejected"}),
    "in_progress": frozenset({"open", "resolved", "rejected"}),
    "resolved": frozenset({"open"}),
    "rejected": frozenset({"open"}),
}
#: The statuses the live overlay shows (the others are removed from it).
ACTIVE_STATUSES = ("open", "in_progress")

MAX_DESCRIPTION_CHARS = 5000
MAX_NOTE_CHARS = 5000
MAX_ASSIGNEE_CHARS = 200
#: Sensors and alerts an inspection may link to, each.
MAX_LINKS = 20
#: Photos one inspection may have.
MAX_PHOTOS = 30
#: History entries one inspection may have (its ``created`` entry included): a change that
#: would add more is refused (409), so that one inspection's history stays bounded.
MAX_HISTORY = 1000
#: History entries a detail holds at most (the newest; older ones page by entry id).
HISTORY_PAGE = 200
#: A change that loses this many races with concurrent changes of the same inspection is
#: refused (409) rather than tried again.
MAX_ATTEMPTS = 8


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class _Keep(Enum):
    KEEP = "keep"


#: "Leave the assignee as it is" (None unassigns).
KEEP = _Keep.KEEP


@dataclass(frozen=True)
class NewInspection:
    """A finding to record. Its place: ``location`` ([lon, lat] or [lon, lat, h] in WGS 84
    degrees and ellipsoidal metres, or x, y[, z] in ``crs``) and/or ``asset_id`` +
    ``feature_id`` (the position then the feature's; see
    :func:`~arserver.services.places.resolve_place`). ``sensor_ids``/``alert_ids``: linked
    sensors and alerts, which must exist."""

    category: str
    description: str
    severity: str = DEFAULT_SEVERITY
    location: Sequence[float] | None = None
    crs: str | None = None
    asset_id: str | None = None
    feature_id: str | None = None
    sensor_ids: Sequence[str] = ()
    alert_ids: Sequence[str] = ()
    assignee: str | None = None


@dataclass(frozen=True)
class InspectionEdit:
    """A change of an inspection: fields left None (``assignee``: :data:`KEEP`) stay as they
    are; ``assignee`` None unassigns. ``note`` goes with the change into the history (alone,
    it is a history entry of its own)."""

    status: str | None = None
    assignee: str | _Keep | None = KEEP
    note: str | None = None
    severity: str | None = None
    category: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Plan:
    """What an edit writes: the columns to set (``updated_at`` aside) and the history entries
    (change, from_status, to_status, assignee, note), in order."""

    values: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class InspectionDetail:
    """An inspection with a page of its history and its photos: ``history`` the newest
    :data:`HISTORY_PAGE` entries (of those before the entry asked for), oldest first;
    ``history_total`` how many entries the inspection has in all; ``history_next`` the id to
    ask for the entries before these with (None: there are none)."""

    inspection: InspectionRow
    history: list[EventRow]
    photos: list[PhotoRow]
    history_total: int = 0
    history_next: int | None = None


def _short(value: str) -> str:
    return repr(value[:60] + ("..." if len(value) > 60 else ""))


def _text(value: str, what: str, max_chars: int) -> str:
    """``value`` as it is, if it is text of 1..max_chars characters that is not blank and
    that a database can store; else :class:`InputError`."""
    if not isinstance(value, str) or not storable_text(value):
        raise InputError(f"{what} must be text without NUL characters or lone surrogates")
    if not value.strip():
        raise InputError(f"{what} must not be empty")
    if len(value) > max_chars:
        raise InputError(f"{what} is longer than {max_chars} characters")
    return value


def check_category(category: str, categories: Sequence[str]) -> str:
    if category not in categories:
        raise InputError(f"category {_short(str(category))} is not one of: {', '.join(categories)}")
    return category


def check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise InputError(f"severity {_short(str(severity))} is not one of: {', '.join(SEVERITIES)}")
    return severity


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise InputError(f"status {_short(str(status))} is not one of: {', '.join(STATUSES)}")
    return status


def _note(note: str | None) -> str | None:
    """The note as given, or None when there is none (absent or blank)."""
    if note is None:
        return None
    if not isinstance(note, str) or not storable_text(note):
        raise InputError("note must be text without NUL characters or lone surrogates")
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"note is longer than {MAX_NOTE_CHARS} characters")
    return note if note.strip() else None


def _links(ids: Sequence[str], what: str) -> list[str]:
    """The ids in their order without repeats; at most :data:`MAX_LINKS`."""
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_LINKS:
        raise InputError(f"an inspection links to at most {MAX_LINKS} {what}")
    for item in unique:
        if not isinstance(item, str) or not item or not storable_text(item):
            raise InputError(f"{what} are given by their ids (text)")
    return unique


def plan_edit(
    current: InspectionRow, edit: InspectionEdit, categories: Sequence[str], moment: datetime
) -> Plan | None:
    """What ``edit`` does to ``current`` at ``moment``; None when it changes nothing (then
    nothing is written or announced). One history entry per kind of change, in the order
    edited, assigned, status; the note goes with the last one, or makes an entry of its own
    (``note``) when nothing else changes.

    :class:`InputError` for values that cannot be used and for a resolution, rejection or
    reopening without a note; :class:`ConflictError` for a transition the workflow does not
    have and for changes of a closed inspection that is not reopened with them."""
    note = _note(edit.note)
    status = current["status"]
    edited: dict[str, Any] = {}
    if edit.severity is not None and check_severity(edit.severity) != current["severity"]:
        edited["severity"] = edit.severity
    if (
        edit.category is not None
        and check_category(edit.category, categories) != (current["category"])
    ):
        edited["category"] = edit.category
    if edit.description is not None:
        description = _text(edit.description, "description", MAX_DESCRIPTION_CHARS)
        if description != current["description"]:
            edited["description"] = description
    assignee: str | _Keep | None = KEEP
    if edit.assignee is not KEEP:
        wanted = edit.assignee
        if wanted is not None:
            wanted = _text(wanted, "assignee", MAX_ASSIGNEE_CHARS)
        if wanted != current["assignee"]:
            assignee = wanted
    target = None
    if edit.status is not None and check_status(edit.status) != status:
        target = edit.status
    if target is not None and target not in TRANSITIONS[status]:
        if status in CLOSED_STATUSES:
            raise ConflictError(
                f"inspection {current['id']} is {status}: it can only be reopened "
                "(status 'open', with a note), not become " + target
            )
        raise ConflictError(f"an inspection that is {status} cannot become {target}")
    if target is None and status in CLOSED_STATUSES and (edited or assignee is not KEEP):
        raise ConflictError(
            f"inspection {current['id']} is {status}: reopen it (status 'open', with a note) "
            "before changing it"
        )
    if target is not None and note is None:
        if target in CLOSED_STATUSES:
            raise InputError(f"an inspection becomes {target} with a note that says why")
        if status in CLOSED_STATUSES:
            raise InputError("reopening an inspection needs a note that says why")
    values: dict[str, Any] = dict(edited)
    events: list[dict[str, Any]] = []
    if edited:
        events.append({"change": "edited"})
    if assignee is not KEEP:
        values["assignee"] = assignee
        events.append({"change": "assigned", "assignee": assignee})
    if target is not None:
        values["status"] = target
        values["closed_at"] = moment if target in CLOSED_STATUSES else None
        events.append({"change": "status", "from_status": status, "to_status": target})
    if not events:
        if note is None:
            return None
        events.append({"change": "note"})
    events[-1]["note"] = note
    return Plan(values, events)


#: The leading bytes of the image formats photos are re-encoded to, and their media types.
_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def image_type(data: bytes) -> str | None:
    """The media type of JPEG, PNG or WebP bytes by their signature; None for others."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def live_change(row: InspectionRow) -> Change:
    """The live event of an inspection as it is now (removed once closed)."""
    return inspection_change(
        row["id"], row["status"], row["category"], row["severity"], row["description"],
        (row["lon"], row["lat"], row["h"]), row["updated_at"],
        asset_id=row["asset_id"], feature_id=row["feature_id"], assignee=row["assignee"],
    )  # fmt: skip


class InspectionService:
    """The inspections of one database.

    ``bus``: where committed changes go (None: nowhere). ``categories``: the categories an
    inspection may have (``ARSERVER_INSPECTION_CATEGORIES``); ``extent``: where inspections
    may be (west, south, east, north in degrees; None: anywhere); ``max_photo_pixels``: photos
    that declare more pixels are refused before decoding. ``new_id`` names inspections and
    photos; ``clock`` gives the times of changes (timezone-aware)."""

    def __init__(
        self,
        engine: Engine,
        bus: Bus | None = None,
        *,
        categories: Sequence[str],
        extent: Extent | None,
        max_photo_pixels: int,
        new_id: Callable[[], str] = _new_id,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.categories = tuple(categories)
        self.extent = extent
        self.max_photo_pixels = max_photo_pixels
        self.new_id = new_id
        self.clock = clock

    @staticmethod
    def _check_history_room(connection: Connection, inspection_id: str, adding: int) -> None:
        """:class:`ConflictError` when ``adding`` entries would take the inspection's history
        past :data:`MAX_HISTORY`."""
        if rows.history_count(connection, inspection_id) + adding > MAX_HISTORY:
            raise ConflictError(
                f"inspection {inspection_id} has reached the limit of {MAX_HISTORY:,} history "
                "entries and cannot be changed further; record a new inspection instead"
            )

    def _publish(self, row: InspectionRow) -> None:
        if self.bus is not None:  # after the commit; a bus never fails the write
            self.bus.publish([live_change(row)])

    def _moment(self, after: datetime | None = None) -> datetime:
        """Now, but always later than ``after`` (an inspection's ``updated_at`` grows with
        every change, which :func:`~arserver.store.inspections.update_inspection` relies on)."""
        moment = self.clock()
        if after is not None and moment <= after:
            moment = after + timedelta(microseconds=1)
        return moment

    # Writes -------------------------------------------------------------------------------

    def create(
        self, draft: NewInspection, *, by: str | None, caller: Caller | None = None
    ) -> InspectionRow:
        """Record a finding (status ``open``) with its ``created`` history entry, then
        announce it; returns it. ``by``: who (see :func:`~arserver.security.actors.person_of`);
        ``caller``: whose view of the assets applies to ``asset_id`` (None: public ones only).

        :class:`InputError` for a category, severity or description that cannot be used, an
        unknown linked sensor or alert, and a place that cannot be used (outside the extent,
        an asset or feature that is not there)."""
        category = check_category(draft.category, self.categories)
        severity = check_severity(draft.severity)
        description = _text(draft.description, "description", MAX_DESCRIPTION_CHARS)
        assignee = (
            None
            if draft.assignee is None
            else _text(draft.assignee, "assignee", MAX_ASSIGNEE_CHARS)
        )
        sensor_ids = _links(draft.sensor_ids, "sensors")
        alert_ids = _links(draft.alert_ids, "alerts")
        for value, what in ((draft.asset_id, "asset"), (draft.feature_id, "feature")):
            if value is not None and not storable_text(value):
                raise InputError(f"{what} must be text without NUL characters")
        if draft.crs is not None and not storable_text(draft.crs):
            raise InputError("crs must be text without NUL characters")
        moment = self._moment()
        inspection_id = self.new_id()
        with self.engine.begin() as connection:
            place = resolve_place(
                connection, location=draft.location, crs=draft.crs, asset_id=draft.asset_id,
                feature_id=draft.feature_id, caller=caller, extent=self.extent,
            )  # fmt: skip
            for kind, wanted in (("sensors", sensor_ids), ("alerts", alert_ids)):
                found = rows.existing_ids(connection, kind, wanted)
                missing = [item for item in wanted if item not in found]
                if missing:
                    raise InputError(f"there is no {kind[:-1]} {_short(missing[0])}")
            rows.insert_inspection(
                connection,
                {
                    "id": inspection_id, "category": category, "severity": severity,
                    "description": description, "status": "open", "lon": place.lon,
                    "lat": place.lat, "h": place.h, "asset_id": place.asset_id,
                    "feature_id": place.feature_id, "sensor_ids": sensor_ids,
                    "alert_ids": alert_ids, "assignee": assignee, "created_by": by,
                    "created_at": moment, "updated_at": moment, "closed_at": None,
                },
            )  # fmt: skip
            rows.add_events(
                connection,
                [
                    {"inspection_id": inspection_id, "at": moment, "actor": by,
                     "change": "created", "to_status": "open", "assignee": assignee}
                ],
            )  # fmt: skip
            created = rows.inspection(connection, inspection_id)
        assert created is not None
        self._publish(created)
        return created

    def change(
        self, inspection_id: str, edit: InspectionEdit, *, by: str | None
    ) -> InspectionRow | None:
        """Apply ``edit`` (see :func:`plan_edit`) with its history entries, then announce the
        inspection; returns it as it is now, None if there is no such inspection. An edit that
        changes nothing writes and announces nothing.

        Concurrent changes of one inspection take turns: the row is locked while it is read
        (PostgreSQL), and written only if it is still as read (both backends; otherwise it
        is read again and the edit checked anew), so that no transition is checked against a
        stale status and no history entry is lost."""
        for _attempt in range(MAX_ATTEMPTS):
            with self.engine.begin() as connection:
                current = rows.inspection(connection, inspection_id, lock=True)
                if current is None:
                    return None
                moment = self._moment(after=current["updated_at"])
                plan = plan_edit(current, edit, self.categories, moment)
                if plan is None:
                    return current
                self._check_history_room(connection, inspection_id, len(plan.events))
                if not rows.update_inspection(
                    connection, inspection_id, status=current["status"],
                    updated_at=current["updated_at"],
                    values={**plan.values, "updated_at": moment},
                ):  # fmt: skip
                    continue  # changed in between: read again
                rows.add_events(
                    connection,
                    [
                        {"inspection_id": inspection_id, "at": moment, "actor": by, **event}
                        for event in plan.events
                    ],
                )
                changed = rows.inspection(connection, inspection_id)
            assert changed is not None
            self._publish(changed)
            return changed
        raise ConflictError(
            f"inspection {inspection_id} is being changed by others at the same time; try again"
        )

    def add_photo(self, inspection_id: str, data: bytes, *, by: str | None) -> PhotoRow | None:
        """Re-encode ``data`` without any metadata block (with a thumbnail), store it with its
        ``photo`` history entry, then announce the inspection; returns the photo, None if
        there is no such inspection. Runs the decoding in the calling thread (call it from a
        worker thread).

        :class:`~arserver.services.photos.PhotoError` (422) for data that is not an image it
        reads, :class:`~arserver.services.photos.PhotoTooLargeError` (413) for one that
        declares more than ``max_photo_pixels``; :class:`ConflictError` past
        :data:`MAX_PHOTOS` or :data:`MAX_HISTORY`."""
        with self.engine.connect() as connection:
            if rows.inspection(connection, inspection_id) is None:
                return None
            if rows.photo_count(connection, inspection_id) >= MAX_PHOTOS:
                raise ConflictError(f"an inspection has at most {MAX_PHOTOS} photos")
            self._check_history_room(connection, inspection_id, 1)
        cleaned = clean_photo(data, max_pixels=self.max_photo_pixels)
        photo_id = self.new_id()
        with self.engine.begin() as connection:
            current = rows.inspection(connection, inspection_id, lock=True)
            if current is None:
                return None
            if rows.photo_count(connection, inspection_id) >= MAX_PHOTOS:
                raise ConflictError(f"an inspection has at most {MAX_PHOTOS} photos")
            self._check_history_room(connection, inspection_id, 1)
            moment = self._moment(after=current["updated_at"])
            rows.insert_photo(
                connection,
                {
                    "id": photo_id, "inspection_id": inspection_id,
                    "content_type": cleaned.content_type, "width": cleaned.width,
                    "height": cleaned.height, "data": cleaned.data,
                    "thumbnail": cleaned.thumbnail, "created_by": by, "created_at": moment,
                },
            )  # fmt: skip
            rows.add_events(
                connection,
                [{"inspection_id": inspection_id, "at": moment, "actor": by, "change": "photo"}],
            )
            rows.touch(connection, inspection_id, moment)
            changed = rows.inspection(connection, inspection_id)
            stored = next(p for p in rows.photos(connection, inspection_id) if p["id"] == photo_id)
        assert changed is not None
        self._publish(changed)
        return stored

    # Reads --------------------------------------------------------------------------------

    def get(self, inspection_id: str) -> InspectionRow | None:
        with self.engine.connect() as connection:
            return rows.inspection(connection, inspection_id)

    def detail(
        self, inspection_id: str, *, history_before: int | None = None
    ) -> InspectionDetail | None:
        """The inspection with its photos and the newest :data:`HISTORY_PAGE` entries of its
        history (of those with an id below ``history_before``, if given), oldest first; None
        if there is no such inspection."""
        with self.engine.connect() as connection:
            found = rows.inspection(connection, inspection_id)
            if found is None:
                return None
            history = rows.history(
                connection, inspection_id, before=history_before, limit=HISTORY_PAGE + 1
            )
            more = len(history) > HISTORY_PAGE
            page = history[1:] if more else history
            return InspectionDetail(
                found,
                page,
                rows.photos(connection, inspection_id),
                history_total=rows.history_count(connection, inspection_id),
                history_next=page[0]["id"] if more else None,
            )

    def search(
        self, filters: Filters, limit: int, after: Cursor | None = None
    ) -> list[InspectionRow]:
        """At most ``limit`` inspections matching ``filters``, newest first, after the cursor
        ``after`` (the created_at and id of the last one of the page before)."""
        with self.engine.connect() as connection:
            return rows.search(connection, filters, limit, after)

    def photo(
        self, inspection_id: str, photo_id: str, *, thumbnail: bool = False
    ) -> tuple[bytes, str] | None:
        """The photo's re-encoded bytes (or its thumbnail's) and the image's content type;
        None for an unknown photo or one of another inspection."""
        with self.engine.connect() as connection:
            found = rows.photo_bytes(connection, inspection_id, photo_id, thumbnail=thumbnail)
        if found is None:
            return None
        data, content_type = found
        return data, (image_type(data) or content_type) if thumbnail else content_type

    def current_changes(self) -> list[Change]:
        """The live events of every open and in-progress inspection (a hub's start state)."""
        with self.engine.connect() as connection:
            return [live_change(row) for row in rows.active(connection)]
