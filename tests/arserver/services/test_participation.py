"""RoundService and CommentService on SQLite and PostgreSQL, with a clock of their own: round
windows to the microsecond, pseudonyms, joining, changes of a round against its comments, and
the change events of every committed write."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from arserver.config import Settings
from arserver.domain import Change
from arserver.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from arserver.live.bus import LocalBus
from arserver.security.tokens import TokenRecord
from arserver.services import rounds as rounds_module
from arserver.services.comments import CommentDraft, CommentService, Listing
from arserver.services.rounds import RoundDraft, RoundService, parse_area, pseudonym
from arserver.services.tokens import TokenService
from arserver.store.schema import comments, tokens

T0 = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
AREA = {
    "type": "Polygon",
    "coordinates": [[[4.88, 52.36], [4.92, 52.36], [4.92, 52.39], [4.88, 52.39], [4.88, 52.36]]],
}
INSIDE = [4.9, 52.37, 43.0]
EDGE = [4.88, 52.37]  # on the boundary: within


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
    with pytest.raises(PermissionDeniedError, match="staff only"):
        part.comments.create(
            oidc_resident("carol", 1),
            CommentDraft(text="x", location=INSIDE, round_id=row["id"]),
        )


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
