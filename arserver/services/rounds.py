"""The write path for participation rounds: created and changed by planners, their public
links issued, residents let in (joined) with personal tokens and per-round pseudonyms.

:class:`RoundService` is the only code that writes rounds and the resident tokens narrowed to
them. A round has a title, an area (a GeoJSON Polygon or MultiPolygon in WGS 84 degrees,
within the municipality's extent), the assets it is about, a window (comments are admitted
from ``starts_at``, inclusive, until ``ends_at``, exclusive; UTC) and a mode: ``staff`` (staff
tokens only) or ``public`` (residents too, without an account).

A public round has a *link*: a resident token narrowed to ``round-link:ID``, shared by everyone
it is given to; it reads the round and lets a resident join, which issues a personal resident
token (``round:ID``) that comments under a pseudonym. Both expire ``resident_retention``
after the round ends (None: they stay valid until revoked); each token is written with that
expiry, in the same transaction as the round (its link) or under the round's lock (a join), so
no round is ever without its link and no token outlives a moved end. Nothing about a resident
is stored but that token: no e-mail address, no IP address.

Pseudonyms (:func:`pseudonym`) are ``"Bewoner "`` and eight characters of an HMAC-SHA256 of
the person (:func:`~arserver.security.actors.person_of`: ``token:<id>`` for a joined resident,
the stable subject for someone signed in through OpenID Connect) under the round's random
salt: the same person has the same pseudonym throughout a round and an unrelated one in every
other round, and a pseudonym cannot be traced back without the salt, which never leaves the
server. Staff commenting in a public round appear under a role label (:func:`staff_label`),
never under their token's name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, Engine

from arserver.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from arserver.live.bus import token_revocations
from arserver.security.actors import person_of
from arserver.security.policy import Action, Caller, Scope, permits
from arserver.security.tokens import TokenError, TokenRecord, create_token_on
from arserver.services.areas import parse_area
from arserver.services.places import Extent
from arserver.services.tokens import TokenService
from arserver.store import rounds as round_rows
from arserver.store.rounds import RoundRow

#: The longest window a round may have, and how far ahead it may start.
MAX_WINDOW = timedelta(days=731)
#: The most assets one round may be about.
MAX_ASSETS = 100
#: The most residents that may join one round.
MAX_PARTICIPANTS = 100_000
#: Pseudonyms: this prefix and :data:`PSEUDONYM_LENGTH` characters of an alphabet without
#: look-alikes (no 0/O, 1/I/L).
PSEUDONYM_PREFIX = "Bewoner "
PSEUDONYM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PSEUDONYM_LENGTH = 8
#: What residents see as the author of a staff comment in a public round, by role (other
#: roles: ``"Gemeente (<role>)"``): the municipality speaks, not a named official. Viewer
#: tokens are also given to invited outsiders (stakeholders), who do not speak for the
#: municipality: they appear as an invited participant.
STAFF_LABELS = {
    "admin": "Gemeente",
    "planner": "Gemeente",
    "gis": "Gemeente (GIS)",
    "inspector": "Gemeente (inspecteur)",
    "viewer": "Genodigde",
}
#: Prepared areas kept in memory (the rounds commented on most recently).
AREA_CACHE_SIZE = 256

Mode = Literal["staff", "public"]
State = Literal["upcoming", "open", "closed"]


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


def pseudonym(salt: str, person: str) -> str:
    """The name ``person`` (a :func:`person_of` value) goes by in the round with ``salt``."""
    digest = hmac.new(salt.encode("utf-8"), person.encode("utf-8"), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    letters = []
    for _ in range(PSEUDONYM_LENGTH):
        number, index = divmod(number, len(PSEUDONYM_ALPHABET))
        letters.append(PSEUDONYM_ALPHABET[index])
    return PSEUDONYM_PREFIX + "".join(letters)


def staff_label(role: str) -> str:
    """The author name of a staff comment in a public round (see :data:`STAFF_LABELS`)."""
    return STAFF_LABELS.get(role, f"Gemeente ({role})")


def state_of(row: RoundRow, now: datetime) -> State:
    """``upcoming`` before ``starts_at``, ``open`` until ``ends_at``, ``closed`` from then."""
    if now < row["starts_at"]:
        return "upcoming"
    return "open" if now < row["ends_at"] else "closed"


def check_window(row: RoundRow, now: datetime) -> None:
    """:class:`ConflictError` unless the round admits comments at ``now``."""
    if now < row["starts_at"]:
        raise ConflictError(
            f"round {row['id']!r} opens at {row['starts_at'].isoformat()}; comments are "
            "admitted from then on"
        )
    if now >= row["ends_at"]:
        raise ConflictError(
            f"round {row['id']!r} closed at {row['ends_at'].isoformat()}; it admits no more "
            "comments"
        )


@dataclass(frozen=True)
class RoundDraft:
    """A new round as a planner describes it (lengths checked by the API; the rest here).
    ``area`` is the GeoJSON as received, in ``crs`` (None: WGS 84 lon, lat; see
    :func:`parse_area`); times are timezone-aware."""

    title: str
    description: str
    privacy_notice: str
    mode: Mode
    area: Any
    assets: Sequence[str]
    starts_at: datetime
    ends_at: datetime
    crs: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A resident token just issued: the secret (shown once) and its record."""

    secret: str
    record: TokenRecord


@dataclass
class _AreaCache:
    """Prepared geometries of round areas, by round id and version (``updated_at``)."""

    entries: OrderedDict[str, tuple[datetime, Any]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RoundService:
    """Participation rounds of one database.

    ``tokens``: issues and revokes the rounds' resident tokens; ``extent``: the municipality's
    (west, south, east, north; None: anywhere); ``resident_retention``: how long after a
    round's end its resident tokens stay valid (None: until revoked); ``clock``: now, in UTC.
    """

    def __init__(
        self,
        engine: Engine,
        tokens: TokenService,
        *,
        extent: Extent | None,
        resident_retention: timedelta | None,
        new_id: Callable[[], str] = _new_id,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.tokens = tokens
        self.extent = extent
        self.resident_retention = resident_retention
        self.new_id = new_id
        self.clock = clock
        self._areas = _AreaCache()

    # Planners -----------------------------------------------------------------------------

    def create(self, draft: RoundDraft, by: str) -> tuple[RoundRow, IssuedToken | None]:
        """Store a new round (``by``: who, as :func:`person_of` names them); for a public
        round also issue its link token, in the same transaction (no public round is ever
        stored without its link). Returns the round and the link (None for a staff round)."""
        now = self.clock()
        starts_at, ends_at = draft.starts_at.astimezone(UTC), draft.ends_at.astimezone(UTC)
        _check_times(starts_at, ends_at, now)
        if ends_at <= now:
            raise InputError("ends_at lies in the past: the round would be over already")
        if draft.mode == "public" and not draft.privacy_notice.strip():
            raise InputError("a public round needs a privacy_notice: what is stored and why")
        area = parse_area(draft.area, self.extent, draft.crs)
        row = RoundRow(
            id=self.new_id(), title=draft.title, description=draft.description,
            privacy_notice=draft.privacy_notice, mode=draft.mode, area=area.geojson,
            west=area.bbox[0], south=area.bbox[1], east=area.bbox[2], north=area.bbox[3],
            asset_ids=list(dict.fromkeys(draft.assets)), starts_at=starts_at, ends_at=ends_at,
            pseudonym_salt=secrets.token_hex(16), created_by=by, created_at=now,
            updated_at=now,
        )  # fmt: skip
        with self.engine.begin() as connection:
            _check_assets(connection, row["asset_ids"], row["mode"])
            round_rows.insert_round(connection, row)
            link = self._issue_link(connection, row) if row["mode"] == "public" else None
        return row, link

    def update(self, round_id: str, changes: Mapping[str, Any]) -> RoundRow:
        """Change a round: any of ``title``, ``description``, ``privacy_notice``,
        ``starts_at``, ``ends_at``, ``area`` (GeoJSON as received, in ``crs`` if that is given
        too; see :func:`parse_area`), ``assets``. The mode never changes (residents joined
        under it). The round is locked first (:func:`~arserver.store.rounds.round_of`), so no
        comment or join is written between the checks and the change. A change that would
        leave comments already written outside the round (before a later start, after an
        earlier end, outside a smaller area) is refused with :class:`ConflictError`: the
        round's record must show every comment as admitted by its rules (comments erased on
        request, whose place is rounded, no longer count). The window is held to
        :meth:`create`'s limits (:func:`_check_times`), except that it may end in the past.
        Moving the end moves the expiry of the round's resident tokens with it (one UPDATE);
        an expiry beyond the year 9999 is :class:`InputError`."""
        now = self.clock()
        if "crs" in changes and "area" not in changes:
            raise InputError("crs is the CRS of the area: give it together with 'area'")
        with self.engine.begin() as connection:
            row = round_rows.round_of(connection, round_id, lock="update")
            if row is None:
                raise NotFoundError(f"no round {round_id!r}")
            values: dict[str, Any] = {}
            for key in ("title", "description", "privacy_notice"):
                if key in changes:
                    values[key] = changes[key]
            if row["mode"] == "public" and not values.get("privacy_notice", "x").strip():
                raise InputError("a public round needs a privacy_notice: what is stored and why")
            starts_at = changes.get("starts_at", row["starts_at"]).astimezone(UTC)
            ends_at = changes.get("ends_at", row["ends_at"]).astimezone(UTC)
            if "starts_at" in changes or "ends_at" in changes:
                _check_times(starts_at, ends_at, now)
                first, last = round_rows.comment_span(connection, round_id)
                if first is not None and first < starts_at:
                    raise ConflictError(
                        f"the round has comments from {first.isoformat()}: it cannot start "
                        "after that"
                    )
                if last is not None and last >= ends_at:
                    raise ConflictError(
                        f"the round has comments until {last.isoformat()}: it cannot end "
                        "before that"
                    )
                values.update(starts_at=starts_at, ends_at=ends_at)
            if "area" in changes:
                area = parse_area(changes["area"], self.extent, changes.get("crs"))
                prepared = _prepared(area.geojson)
                outside = sum(
                    1
                    for lon, lat in round_rows.comment_places(connection, round_id)
                    if not shapely.intersects_xy(prepared, lon, lat)
                )
                if outside:
                    raise ConflictError(
                        f"{outside} comment(s) of the round lie outside the new area; it must "
                        "take in every comment written so far"
                    )
                values.update(
                    area=area.geojson, west=area.bbox[0], south=area.bbox[1],
                    east=area.bbox[2], north=area.bbox[3],
                )  # fmt: skip
            if "assets" in changes:
                asset_ids = list(dict.fromkeys(changes["assets"]))
                _check_assets(connection, asset_ids, row["mode"])
                values["asset_ids"] = asset_ids
            if values:
                values["updated_at"] = max(now, row["updated_at"] + timedelta(microseconds=1))
                round_rows.update_round(connection, round_id, values)
                if "ends_at" in values and values["ends_at"] != row["ends_at"]:
                    round_rows.set_token_expiry(
                        connection, round_id, self._token_expiry(values["ends_at"])
                    )
            updated = round_rows.round_of(connection, round_id)
        assert updated is not None
        return updated

    def reissue_link(self, round_id: str) -> IssuedToken:
        """Revoke the link tokens of a public round and issue a new one (a link that went
        further than it should); residents who joined keep their own tokens.

        One transaction under the round's lock (``update``): the old links are revoked and
        the new one is written together or not at all, and two reissues one after the other
        leave exactly one valid link. After the commit the revocations are announced on the
        token service's bus, as :meth:`TokenService.revoke` does, so the old links' live
        connections close wherever they are."""
        now = self.clock()
        with self.engine.begin() as connection:
            row = round_rows.round_of(connection, round_id, lock="update")
            if row is None:
                raise NotFoundError(f"no round {round_id!r}")
            if row["mode"] != "public":
                raise ConflictError("a staff round has no public link")
            expiry = self._token_expiry(row["ends_at"])
            if expiry is not None and expiry <= now:
                raise ConflictError("the round's tokens have expired: a link would not work")
            revoked = round_rows.revoke_link_tokens(connection, round_id, datetime.now(UTC))
            issued = self._issue_link(connection, row)
        bus = self.tokens.bus
        if revoked and bus is not None:
            bus.publish(token_revocations(revoked))  # after the commit
        return issued

    # Residents ----------------------------------------------------------------------------

    def join(self, round_id: str, caller: TokenRecord) -> tuple[IssuedToken, str]:
        """Let the holder of a public round's link in: issue a personal resident token
        (``round:ID``) and return it with its pseudonym. :class:`PermissionDeniedError` for
        another round's link, or a caller that holds no link; :class:`ConflictError` once the
        round is closed, or when it has :data:`MAX_PARTICIPANTS` residents already.

        The token is written with its final expiry under the round's lock (so a change of
        the round's end waits for it, and moves it too); no other token is touched."""
        link = Scope("round-link", round_id)
        if caller.scope is None or caller.scope.kind != "round-link":
            raise PermissionDeniedError("a round is joined with its link token")
        if caller.scope != link:
            raise PermissionDeniedError(f"this link is for round {caller.scope.name!r}")
        with self.engine.begin() as connection:
            row = round_rows.round_of(connection, round_id, lock="share")
            if row is None or row["mode"] != "public":
                raise NotFoundError(f"no round {round_id!r}")
            if self.clock() >= row["ends_at"]:
                raise ConflictError(
                    f"round {round_id!r} closed at {row['ends_at'].isoformat()}; it takes no "
                    "new participants"
                )
            if round_rows.participant_count(connection, round_id) >= MAX_PARTICIPANTS:
                raise ConflictError(f"round {round_id!r} has its maximum of participants")
            issued = self._issue(
                connection, row, f"round:{round_id}", f"resident of round {round_id}"
            )
        return issued, pseudonym(row["pseudonym_salt"], person_of(issued.record))

    def pseudonym_of(self, row: RoundRow, caller: TokenRecord) -> str:
        """The pseudonym ``caller`` goes by in the round ``row``."""
        return pseudonym(row["pseudonym_salt"], person_of(caller))

    def author_name(self, row: RoundRow | None, caller: TokenRecord) -> str:
        """The name a comment by ``caller`` in round ``row`` (None: outside any round) is
        shown under, stored with it: a resident's pseudonym; for staff in a public round
        their role's label (:func:`staff_label`), elsewhere their token's name."""
        if caller.role == "resident" and row is not None:
            return self.pseudonym_of(row, caller)
        if row is not None and row["mode"] == "public":
            return staff_label(caller.role)
        return caller.name

    # Reading ------------------------------------------------------------------------------

    def get(self, round_id: str) -> RoundRow | None:
        with self.engine.connect() as connection:
            return round_rows.round_of(connection, round_id)

    def readable(self, row: RoundRow, caller: Caller | None) -> bool:
        """Whether ``caller`` may read the round: staff readers every round; a round-scoped
        resident token its own round only, and only while that is public (a token narrowed
        to a staff round reads nothing); anonymous callers and residents signed in elsewhere
        the public rounds."""
        if caller is None:
            return row["mode"] == "public"
        own = caller.scope.round_id if caller.scope is not None else None
        if own is not None:
            return row["id"] == own and row["mode"] == "public"
        if caller.role == "resident":
            return row["mode"] == "public"
        return permits(caller, Action.READ_ROUNDS)

    def visible_to(self, caller: Caller | None, limit: int) -> list[RoundRow]:
        """The rounds ``caller`` may read (see :meth:`readable`), latest start first."""
        own = caller.scope.round_id if caller is not None and caller.scope is not None else None
        public_only = caller is None or caller.role == "resident" or own is not None
        with self.engine.connect() as connection:
            return round_rows.list_rounds(
                connection, public_only=public_only, only=own, limit=limit
            )

    def comment_counts(self, round_ids: Sequence[str]) -> dict[str, int]:
        """{round id: visible comments} (0 for rounds without any)."""
        with self.engine.connect() as connection:
            counts = round_rows.visible_comment_counts(connection, round_ids)
        return {round_id: counts.get(round_id, 0) for round_id in round_ids}

    def participants(self, round_id: str) -> int:
        with self.engine.connect() as connection:
            return round_rows.participant_count(connection, round_id)

    def covers(self, row: RoundRow, lon: float, lat: float) -> bool:
        """Whether (lon, lat) lies within the round's area (its boundary included)."""
        cache = self._areas
        with cache.lock:  # prepared geometries build their index lazily: one user at a time
            entry = cache.entries.get(row["id"])
            if entry is None or entry[0] != row["updated_at"]:
                entry = (row["updated_at"], _prepared(row["area"]))
                cache.entries[row["id"]] = entry
            cache.entries.move_to_end(row["id"])
            while len(cache.entries) > AREA_CACHE_SIZE:
                cache.entries.popitem(last=False)
            return bool(shapely.intersects_xy(entry[1], lon, lat))  # for a point: covers

    # Tokens -------------------------------------------------------------------------------

    def _token_expiry(self, ends_at: datetime) -> datetime | None:
        """When the round's resident tokens expire (None: never); :class:`InputError` for an
        end so late that the moment lies beyond the calendar (year 9999)."""
        if self.resident_retention is None:
            return None
        try:
            return ends_at + self.resident_retention
        except OverflowError:
            raise InputError(
                "the round ends too late: its residents' tokens would expire after the year 9999"
            ) from None

    def _issue_link(self, connection: Connection, row: RoundRow) -> IssuedToken:
        return self._issue(connection, row, f"round-link:{row['id']}", f"link of round {row['id']}")

    def _issue(self, connection: Connection, row: RoundRow, scope: str, name: str) -> IssuedToken:
        """A resident token of the round, in the caller's transaction, expiring exactly when
        the round's other tokens do (``resident_retention`` after its end)."""
        try:
            secret, record = create_token_on(
                connection, "resident", name, expires_at=self._token_expiry(row["ends_at"]),
                scope=scope,
            )  # fmt: skip
        except TokenError as exc:  # a round id no scope can hold
            raise InputError(str(exc)) from None
        return IssuedToken(secret, record)


def _prepared(geojson: Mapping[str, Any]) -> Any:
    geometry = shape(geojson)
    shapely.prepare(geometry)
    return geometry


def _check_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """The limits of every round's window, new or changed: it ends after it starts, lasts at
    most :data:`MAX_WINDOW` and starts at most :data:`MAX_WINDOW` after ``now`` (so its end,
    and its tokens' expiry after it, stay far from the end of the calendar)."""
    if ends_at <= starts_at:
        raise InputError("ends_at must come after starts_at")
    if ends_at - starts_at > MAX_WINDOW:
        raise InputError(f"a round lasts at most {MAX_WINDOW.days} days")
    if starts_at - now > MAX_WINDOW:
        raise InputError(f"a round starts at most {MAX_WINDOW.days} days ahead")


def _check_assets(connection: Any, asset_ids: Sequence[str], mode: str) -> None:
    """Every asset must exist; a public round's must be public (residents read public assets
    only)."""
    if len(asset_ids) > MAX_ASSETS:
        raise InputError(f"a round is about at most {MAX_ASSETS} assets")
    public = round_rows.asset_publicity(connection, asset_ids)
    for asset_id in asset_ids:
        if asset_id not in public:
            raise InputError(f"there is no asset {asset_id!r}")
        if mode == "public" and not public[asset_id]:
            raise InputError(
                f"asset {asset_id!r} is not public: residents of a public round could not see it"
            )
