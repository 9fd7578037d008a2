"""The write path for comments (annotations): written by staff and by the residents of public
rounds, hidden and restored by moderators, answered by planners.

:class:`CommentService` is the only code that writes comments and the only code that makes
their change events: every committed creation, hiding, restoring and answer publishes one
:func:`~arserver.domain.comment_change` on the live ``annotations`` layer (a hidden comment
leaves it).

A comment is at a place (WGS 84 lon, lat in degrees, ellipsoidal h in metres, checked against
the municipality's extent by :func:`~arserver.services.places.resolve_place`) or on a feature
of a published asset; it may answer another (``reply_to``: same thread, same round) and may
belong to a round, which then decides who may write (staff only, or residents too), when
(its window) and where (within its area). Who wrote it is kept as ``author``
(:func:`~arserver.security.actors.person_of`), which no answer ever shows; everyone sees
``author_name``: a resident's per-round pseudonym; for staff, in a public round a role label
(:func:`~arserver.services.rounds.staff_label`), elsewhere their token's name.

What residents see is what the public may see: a comment in a public round is placed as for
the public (on a public asset, or at a location), whoever writes it, and residents read the
asset and feature of a comment only while that asset is public. Each hide, restore and answer
also writes one ``comment_events`` row (who, when, what), in the same transaction, which only
moderators read.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from arserver.domain import Change, comment_change
from arserver.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from arserver.live.bus import Bus
from arserver.security.actors import person_of
from arserver.security.policy import Action, permits
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.services.places import Extent, Place, parse_bbox, resolve_place
from arserver.services.rounds import RoundService, check_window
from arserver.store import comments as comment_rows
from arserver.store import rounds as round_rows
from arserver.store.comments import CommentEventRow, CommentQuery, CommentRow
from arserver.store.rounds import RoundRow

#: The most comments the live overlay starts with (the newest visible ones).
MAX_CURRENT = 10_000
#: The longest page of a listing.
MAX_PAGE = 1000
#: The most comments one resident (one person) may write in one round, and one round may hold.
MAX_PER_RESIDENT = 200
MAX_PER_ROUND = 100_000
#: The most moderation steps (hides, restores, answers) one comment's history may hold: it is
#: read whole by moderators and by the round's report.
MAX_MODERATION_STEPS = 100


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CommentDraft:
    """A new comment as the API received it (text checked for length and storability there).
    The place is ``location`` (with ``crs``), or ``asset_id`` + ``feature_id``, or, for a
    reply, the place of the comment it answers."""

    text: str
    location: Sequence[float] | None = None
    crs: str | None = None
    asset_id: str | None = None
    feature_id: str | None = None
    round_id: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Listing:
    """What a caller asks a listing for (all optional); ``bbox`` is ``w,s,e,n`` text,
    ``cursor`` the ``next`` of the previous page."""

    round_id: str | None = None
    asset_id: str | None = None
    thread_id: str | None = None
    bbox: str | None = None
    limit: int = 100
    cursor: str | None = None


def is_moderator(caller: TokenRecord) -> bool:
    """Whether ``caller`` moderates comments (and so sees hidden ones and why)."""
    return permits(caller, Action.MODERATE_COMMENTS)


def _own_round(caller: TokenRecord) -> str | None:
    return caller.scope.round_id if caller.scope is not None else None


def _no_round(round_id: str) -> InputError:
    """The answer to a comment in a round that does not exist, and to a resident's in a staff
    round (the same: residents cannot tell a staff round from a missing one)."""
    return InputError(f"there is no round {round_id!r}")


def encode_cursor(row: CommentRow) -> str:
    text = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor stands for; :class:`InputError` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        moment, comment_id = text.split("|")
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError("no zone")
        at = at.astimezone(UTC)  # OverflowError beyond the years 1..9999 in UTC
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InputError("cursor is not one that a listing of comments gave") from None
    if not comment_id or len(comment_id) > 32 or not storable_text(comment_id):
        raise InputError("cursor is not one that a listing of comments gave")
    return at, comment_id


class CommentService:
    """Comments of one database. ``rounds``: the rounds they may belong to; ``bus``: where
    committed changes go (None: nowhere); ``extent``: the municipality's (None: anywhere)."""

    def __init__(
        self,
        engine: Engine,
        rounds: RoundService,
        bus: Bus | None = None,
        *,
        extent: Extent | None,
        new_id: Callable[[], str] = _new_id,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.rounds = rounds
        self.bus = bus
        self.extent = extent
        self.new_id = new_id
        self.clock = clock

    # Writing ------------------------------------------------------------------------------

    def create(self, caller: TokenRecord, draft: CommentDraft) -> CommentRow:
        """Store a comment by ``caller`` (authorised to comment) and announce it.

        Refusals: :class:`PermissionDeniedError` for a round's link (join first), a resident
        outside a round or in another public round than their own; :class:`InputError` for
        a missing round (and, to a resident, a staff round: the same answer), a comment
        answered that is missing or that ``caller`` may not read (the same answer), a reply
        placed in another round than its thread, a place outside the extent or the round's
        area, an asset that is not public in a public round; :class:`ConflictError` outside
        the round's window, for an answer to a hidden comment (moderators), beyond
        :data:`MAX_PER_RESIDENT` comments of one resident or :data:`MAX_PER_ROUND` of the
        round.

        The round (and the comment answered) is locked before it is read, so a change of the
        round's window or area cannot commit between these checks and the comment."""
        if caller.scope is not None and caller.scope.kind == "round-link":
            raise PermissionDeniedError(
                "this is the round's shared link: join the round first (POST "
                f"/api/v1/rounds/{caller.scope.name}/participants) and comment with the token "
                "that gives you"
            )
        now = self.clock()
        with self.engine.begin() as connection:
            parent = None
            round_id = draft.round_id
            if draft.reply_to is not None:
                parent = comment_rows.comment_of(connection, draft.reply_to, lock=True)
                if parent is None or not self._readable(connection, caller, parent):
                    raise InputError(f"there is no comment {draft.reply_to!r} to reply to")
                if round_id is not None and round_id != parent["round_id"]:
                    raise InputError(
                        "a reply belongs to the round of the comment it answers "
                        f"({parent['round_id']!r}); leave out 'round' or give that one"
                    )
                round_id = parent["round_id"]
            row = None
            if round_id is not None:
                row = round_rows.round_of(connection, round_id, lock="share")
                if row is None:
                    raise _no_round(round_id)
            self._admit(caller, row)
            if parent is not None and parent["status"] != "visible":
                raise ConflictError(
                    f"comment {parent['id']!r} is {parent['status']}: it cannot be answered"
                )
            if row is not None:
                check_window(row, now)
                self._check_caps(connection, caller, row)
            place = self._place(connection, caller, draft, parent, row)
            if row is not None and not self.rounds.covers(row, place.lon, place.lat):
                raise InputError(
                    f"location {place.lon:.6f}, {place.lat:.6f} (lon, lat) lies outside the "
                    f"area of round {row['id']!r}; comments of a round are placed within it"
                )
            resident = caller.role == "resident"
            comment_id = self.new_id()
            comment = CommentRow(
                id=comment_id, round_id=round_id,
                thread_id=parent["thread_id"] if parent is not None else comment_id,
                reply_to=parent["id"] if parent is not None else None,
                lon=place.lon, lat=place.lat, h=place.h, asset_id=place.asset_id,
                feature_id=place.feature_id, text=draft.text, author=person_of(caller),
                author_name=self.rounds.author_name(row, caller),
                author_kind="resident" if resident else "staff", status="visible",
                moderation_reason=None, moderated_by=None, moderated_at=None, response=None,
                responded_by=None, responded_at=None, created_at=now,
            )  # fmt: skip
            comment_rows.insert_comment(connection, comment)
        self._publish(comment)
        return comment

    def _admit(self, caller: TokenRecord, row: RoundRow | None) -> None:
        """Whether ``caller`` may write in round ``row`` (None: outside any round). To a
        resident a staff round is missing (the same answer, whatever their token's scope
        says); residents write only in a public round, and a round-scoped token only in its
        own."""
        own = _own_round(caller)
        resident = caller.role == "resident"
        if row is None:
            if resident:
                raise PermissionDeniedError(
                    "residents comment in a participation round: give its 'round'"
                )
            return
        if (resident or own is not None) and row["mode"] != "public":
            raise _no_round(row["id"])
        if own is not None and own != row["id"]:
            raise PermissionDeniedError(f"this token is for round {own!r}, not {row['id']!r}")

    def _check_caps(self, connection: Connection, caller: TokenRecord, row: RoundRow) -> None:
        if caller.role == "resident":
            mine = comment_rows.comment_count(connection, row["id"], author=person_of(caller))
            if mine >= MAX_PER_RESIDENT:
                raise ConflictError(
                    f"you have written {MAX_PER_RESIDENT} comments in round {row['id']!r}, the "
                    "most one participant may write in a round"
                )
        if comment_rows.comment_count(connection, row["id"]) >= MAX_PER_ROUND:
            raise ConflictError(
                f"round {row['id']!r} holds {MAX_PER_ROUND} comments, the most a round may; "
                "it takes no more"
            )

    def _place(
        self,
        connection: Connection,
        caller: TokenRecord,
        draft: CommentDraft,
        parent: CommentRow | None,
        row: RoundRow | None,
    ) -> Place:
        """Where the comment is. In a public round the place is resolved as for the public
        (public assets only), whoever writes: residents read it."""
        public = row is not None and row["mode"] == "public"
        if parent is not None and draft.location is None and draft.asset_id is None:
            if draft.feature_id is not None:
                raise InputError("a feature is named together with its asset ('asset')")
            asset_id, feature_id = parent["asset_id"], parent["feature_id"]
            if public and asset_id is not None and not self._public(connection, asset_id):
                asset_id = feature_id = None  # the place, without what the public cannot see
            return Place(parent["lon"], parent["lat"], parent["h"], asset_id, feature_id)
        if (
            row is not None
            and public
            and draft.asset_id is not None
            and caller.role != "resident"
            and round_rows.asset_publicity(connection, [draft.asset_id]).get(draft.asset_id)
            is False
        ):
            self._resolve(connection, draft, caller)  # refuses what the caller cannot see
            raise InputError(
                f"asset {draft.asset_id!r} is not public: comments in public round "
                f"{row['id']!r} are read by residents, so they are placed on a public asset or "
                "at a 'location'"
            )
        return self._resolve(connection, draft, None if public else caller)

    def _resolve(
        self, connection: Connection, draft: CommentDraft, caller: TokenRecord | None
    ) -> Place:
        return resolve_place(
            connection, location=draft.location, crs=draft.crs, asset_id=draft.asset_id,
            feature_id=draft.feature_id, caller=caller, extent=self.extent,
        )  # fmt: skip

    @staticmethod
    def _public(connection: Connection, asset_id: str) -> bool:
        return round_rows.asset_publicity(connection, [asset_id]).get(asset_id, False)

    # Moderation ---------------------------------------------------------------------------

    def hide(self, comment_id: str, reason: str, by: str) -> CommentRow:
        """Hide a visible comment (text and ``reason`` kept, for moderators and the record)
        as moderator ``by``; it leaves the live overlay. :class:`NotFoundError` for no such
        comment, :class:`ConflictError` when it is not visible or its history holds
        :data:`MAX_MODERATION_STEPS` steps already (as for restoring and answering)."""
        return self._moderate(comment_id, "visible", "hidden", by, reason)

    def restore(self, comment_id: str, by: str) -> CommentRow:
        """Show a hidden comment again (the reason it was hidden stays on record)."""
        return self._moderate(comment_id, "hidden", "visible", by, None)

    def _moderate(
        self, comment_id: str, from_status: str, to_status: str, by: str, reason: str | None
    ) -> CommentRow:
        now = self.clock()
        with self.engine.begin() as connection:
            changed = comment_rows.change_status(
                connection, comment_id, from_status=from_status, to_status=to_status, by=by,
                at=now, reason=reason,
            )  # fmt: skip
            if changed:
                _check_history(connection, comment_id)
                action = "hidden" if to_status == "hidden" else "restored"
                comment_rows.insert_event(
                    connection, comment_id, at=now, actor=by, action=action, text=reason
                )
            row = comment_rows.comment_of(connection, comment_id)
        if row is None:
            raise NotFoundError(f"no comment {comment_id!r}")
        if not changed:
            raise ConflictError(f"comment {comment_id!r} is {row['status']}, not {from_status}")
        self._publish(row)
        return row

    def respond(self, comment_id: str, text: str, by: str) -> CommentRow:
        """Store (or replace) the planners' answer to a visible comment, by ``by``; it is
        shown with the comment, live too, and every answer stays in the comment's history.
        :class:`ConflictError` for a hidden or erased one."""
        now = self.clock()
        with self.engine.begin() as connection:
            changed = comment_rows.set_response(connection, comment_id, text, by, now)
            if changed:
                _check_history(connection, comment_id)
                comment_rows.insert_event(
                    connection, comment_id, at=now, actor=by, action="answered", text=text
                )
            row = comment_rows.comment_of(connection, comment_id)
        if row is None:
            raise NotFoundError(f"no comment {comment_id!r}")
        if not changed:
            raise ConflictError(f"comment {comment_id!r} is {row['status']}: restore it first")
        self._publish(row)
        return row

    # Reading ------------------------------------------------------------------------------

    def get(self, caller: TokenRecord, comment_id: str) -> CommentRow:
        """A comment ``caller`` may read; :class:`NotFoundError` for one it may not, exactly
        as for a missing one. For residents, the asset and feature of a comment whose asset
        is not public are blank."""
        return self.detail(caller, comment_id)[0]

    def detail(
        self, caller: TokenRecord, comment_id: str
    ) -> tuple[CommentRow, list[CommentEventRow] | None]:
        """:meth:`get`, and for a moderator the comment's moderation history (oldest first;
        None for anyone else)."""
        with self.engine.connect() as connection:
            row = comment_rows.comment_of(connection, comment_id)
            if row is None or not self._readable(connection, caller, row):
                raise NotFoundError(f"no comment {comment_id!r}")
            (shown,) = self._as_read_by(connection, caller, [row])
            history = comment_rows.history(connection, comment_id) if is_moderator(caller) else None
        return shown, history

    def _readable(self, connection: Connection, caller: TokenRecord, row: CommentRow) -> bool:
        if row["status"] == "erased" or (row["status"] == "hidden" and not is_moderator(caller)):
            return False
        if caller.role != "resident":
            return True
        if row["round_id"] is None:
            return False
        own = _own_round(caller)
        if own is not None and row["round_id"] != own:
            return False
        found = round_rows.round_of(connection, row["round_id"])
        return found is not None and found["mode"] == "public"  # own round too: public only

    def _as_read_by(
        self, connection: Connection, caller: TokenRecord, rows: list[CommentRow]
    ) -> list[CommentRow]:
        """``rows`` as ``caller`` may see them: for residents, without the asset and feature
        of a comment whose asset is not public (now), nor exists any more."""
        if caller.role != "resident":
            return rows
        named = {r["asset_id"] for r in rows if r["asset_id"] is not None}
        public = round_rows.asset_publicity(connection, named)
        return [
            r
            if r["asset_id"] is None or public.get(r["asset_id"], False)
            else CommentRow(**{**r, "asset_id": None, "feature_id": None})
            for r in rows
        ]

    def find(self, caller: TokenRecord, listing: Listing) -> tuple[list[CommentRow], str | None]:
        """The comments ``caller`` may read that match ``listing``, newest first, and the
        cursor of the next page (None on the last). Residents read the visible comments of
        their round (a round-scoped token its own; one signed in elsewhere names a public
        round), with the asset and feature blank where the asset is not public; moderators
        also the hidden ones; other staff every visible comment."""
        round_id = listing.round_id
        if caller.role == "resident":
            own = _own_round(caller)
            if own is not None:
                if round_id is not None and round_id != own:
                    raise PermissionDeniedError(f"this token is for round {own!r}")
                round_id = own
            elif round_id is None:
                raise PermissionDeniedError("residents read the comments of one round: give it")
            found = self.rounds.get(round_id)  # their own round too: a staff one is missing
            if found is None or found["mode"] != "public":
                raise NotFoundError(f"no round {round_id!r}")
        query = CommentQuery(
            statuses=("visible", "hidden") if is_moderator(caller) else ("visible",),
            limit=min(max(listing.limit, 1), MAX_PAGE) + 1,
            round_id=round_id,
            asset_id=listing.asset_id,
            thread_id=listing.thread_id,
            bbox=parse_bbox(listing.bbox) if listing.bbox is not None else None,
            before=decode_cursor(listing.cursor) if listing.cursor is not None else None,
        )
        with self.engine.connect() as connection:
            rows = comment_rows.list_comments(connection, query)
            page = self._as_read_by(connection, caller, rows[: query.limit - 1])
        more = len(rows) > len(page)
        return page, (encode_cursor(page[-1]) if more and page else None)

    def current_changes(self) -> list[Change]:
        """The live events of the newest :data:`MAX_CURRENT` visible comments, for a hub's
        start state."""
        query = CommentQuery(statuses=("visible",), limit=MAX_CURRENT)
        with self.engine.connect() as connection:
            return [_change(row) for row in comment_rows.list_comments(connection, query)]

    # Live ---------------------------------------------------------------------------------

    def _publish(self, row: CommentRow) -> None:
        if self.bus is not None:
            self.bus.publish([_change(row)])  # after the commit; a bus never fails the write


def _check_history(connection: Connection, comment_id: str) -> None:
    """:class:`ConflictError` (and so no change) when the comment's history is full. Called
    after the comment's UPDATE, which holds its row (on SQLite the database's write lock)
    until the commit, so moderators acting at once are counted one after the other."""
    if comment_rows.event_count(connection, comment_id) >= MAX_MODERATION_STEPS:
        raise ConflictError(
            f"comment {comment_id!r} has been moderated {MAX_MODERATION_STEPS} times, the most "
            "one comment's history keeps; it takes no more hides, restores or answers"
        )


def _change(row: CommentRow) -> Change:
    """The live event of a comment's present state, at the time it last changed."""
    moments = [row["created_at"], row["moderated_at"], row["responded_at"]]
    return comment_change(
        row["id"], row["thread_id"], row["text"], row["author_name"],
        (row["lon"], row["lat"], row["h"]), max(m for m in moments if m is not None),
        round_id=row["round_id"], reply_to=row["reply_to"], asset_id=row["asset_id"],
        feature_id=row["feature_id"], response=row["response"],
        visible=row["status"] == "visible",
    )  # fmt: skip
