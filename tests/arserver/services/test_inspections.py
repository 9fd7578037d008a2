"""InspectionService on SQLite and PostgreSQL: the workflow and its history (who, when, note,
order), every refused transition, links and places, concurrent changes that neither lose a
history entry nor skip the transition check, and events published once, after the commit."""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, event, func, insert, select

from arserver.errors import ConflictError, InputError
from arserver.services import inspections as inspection_service
from arserver.services.inspections import (
    KEEP,
    STATUSES,
    TRANSITIONS,
    InspectionEdit,
    InspectionService,
    NewInspection,
    plan_edit,
)
from arserver.services.photos import PhotoError, PhotoTooLargeError
from arserver.store import inspections as rows
from arserver.store.inspections import Filters, InspectionRow
from arserver.store.schema import (
    asset_features,
    inspection_events,
    inspection_photos,
    inspections,
)
from arserver.store.sensors import create_sensor
from tests.arserver.support import RecordingBus, insert_asset

CATEGORIES = ("damage", "hazard", "obstruction", "vandalism", "missing", "other")
T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
HERE = [4.8952, 52.3702, 43.1]  # Dam square, Amsterdam


def ticking(start: datetime = T0) -> Callable[[], datetime]:
    """A clock that moves one second per reading (thread-safe)."""
    count = itertools.count()
    lock = threading.Lock()

    def now() -> datetime:
        with lock:
            return start + timedelta(seconds=next(count))

    return now


@pytest.fixture
def bus(engine: Engine) -> RecordingBus:
    return RecordingBus(engine, inspections.c.status)


@pytest.fixture
def service(engine: Engine, bus: RecordingBus) -> InspectionService:
    return InspectionService(
        engine, bus, categories=CATEGORIES, extent=(3.2, 50.7, 7.3, 53.7),
        max_photo_pixels=50_000_000, clock=ticking(),
    )  # fmt: skip


def finding(**overrides: Any) -> NewInspection:
    values: dict[str, Any] = {
        "category": "damage", "description": "Kerb stone broken", "location": HERE,
    }  # fmt: skip
    return NewInspection(**{**values, **overrides})


def events_of(engine: Engine, inspection_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(e) for e in rows.history(connection, inspection_id)]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


# -- the workflow, pure ------------------------------------------------------------------------


def current(status: str = "open", **overrides: Any) -> InspectionRow:
    row: dict[str, Any] = {
        "id": "i1", "category": "damage", "severity": "normal", "description": "d",
        "status": status, "lon": 4.9, "lat": 52.37, "h": None, "asset_id": None,
        "feature_id": None, "sensor_ids": [], "alert_ids": [], "assignee": None,
        "created_by": "p", "created_at": T0, "updated_at": T0,
        "closed_at": T0 if status in ("resolved", "rejected") else None,
    }  # fmt: skip
    row.update(overrides)
    return row  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("before", "after"),
    [(b, a) for b in STATUSES for a in STATUSES if a in TRANSITIONS[b]],
)
def test_every_transition_of_the_workflow_is_planned_with_one_status_entry(
    before: str, after: str
) -> None:
    plan = plan_edit(current(before), InspectionEdit(status=after, note="why"), CATEGORIES, T0)
    assert plan is not None
    assert plan.values["status"] == after
    assert plan.events == [
        {"change": "status", "from_status": before, "to_status": after, "note": "why"}
    ]
    assert plan.values["closed_at"] == (T0 if after in ("resolved", "rejected") else None)


@pytest.mark.parametrize(
    ("before", "after"),
    [(b, a) for b in STATUSES for a in STATUSES if a != b and a not in TRANSITIONS[b]],
)
def test_every_transition_outside_the_workflow_is_a_conflict(before: str, after: str) -> None:
    with pytest.raises(ConflictError, match=f"{before}.*{after}|{after}.*{before}"):
        plan_edit(current(before), InspectionEdit(status=after, note="why"), CATEGORIES, T0)


def test_the_refused_transitions_are_exactly_those_between_closed_statuses_and_progress() -> None:
    refused = {(b, a) for b in STATUSES for a in STATUSES if a != b and a not in TRANSITIONS[b]}
    assert refused == {
        ("resolved", "in_progress"), ("resolved", "rejected"),
        ("rejected", "in_progress"), ("rejected", "resolved"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after"),
    [("open", "resolved"), ("open", "rejected"), ("in_progress", "resolved"),
     ("in_progress", "rejected"), ("resolved", "open"), ("rejected", "open")],
)  # fmt: skip
@pytest.mark.parametrize("note", [None, "", "   "])
def test_closing_and_reopening_need_a_note(before: str, after: str, note: str | None) -> None:
    with pytest.raises(InputError, match="note"):
        plan_edit(current(before), InspectionEdit(status=after, note=note), CATEGORIES, T0)


def test_starting_and_going_back_need_no_note() -> None:
    started = plan_edit(current("open"), InspectionEdit(status="in_progress"), CATEGORIES, T0)
    back = plan_edit(current("in_progress"), InspectionEdit(status="open"), CATEGORIES, T0)
    assert started is not None
    assert started.events[0]["note"] is None
    assert back is not None
    assert back.values["status"] == "open"


def test_a_closed_inspection_changes_only_by_reopening_but_takes_notes() -> None:
    with pytest.raises(ConflictError, match="reopen"):
        plan_edit(current("resolved"), InspectionEdit(severity="high"), CATEGORIES, T0)
    with pytest.raises(ConflictError, match="reopen"):
        plan_edit(current("rejected"), InspectionEdit(assignee="team-wegen"), CATEGORIES, T0)
    reopened = plan_edit(
        current("resolved"), InspectionEdit(status="open", severity="high", note="again"),
        CATEGORIES, T0,
    )  # fmt: skip
    assert reopened is not None
    assert [e["change"] for e in reopened.events] == ["edited", "status"]
    noted = plan_edit(current("resolved"), InspectionEdit(note="confirmed"), CATEGORIES, T0)
    assert noted is not None
    assert noted.events == [{"change": "note", "note": "confirmed"}]
    assert noted.values == {}


def test_an_edit_that_changes_nothing_plans_nothing() -> None:
    row = current("in_progress", assignee="team-wegen", severity="high")
    same = InspectionEdit(
        status="in_progress", assignee="team-wegen", severity="high", category="damage",
        description="d",
    )  # fmt: skip
    assert plan_edit(row, same, CATEGORIES, T0) is None
    assert plan_edit(row, InspectionEdit(), CATEGORIES, T0) is None
    assert plan_edit(row, InspectionEdit(note="  "), CATEGORIES, T0) is None


def test_one_entry_per_kind_of_change_and_the_note_goes_with_the_last() -> None:
    edit = InspectionEdit(
        status="in_progress", assignee="team-wegen", severity="urgent", description="worse",
        note="on it",
    )  # fmt: skip
    plan = plan_edit(current("open"), edit, CATEGORIES, T0)
    assert plan is not None
    assert plan.events == [
        {"change": "edited"},
        {"change": "assigned", "assignee": "team-wegen"},
        {"change": "status", "from_status": "open", "to_status": "in_progress", "note": "on it"},
    ]
    assert plan.values == {
        "severity": "urgent", "description": "worse", "assignee": "team-wegen",
        "status": "in_progress", "closed_at": None,
    }  # fmt: skip
    unassign = plan_edit(current(assignee="x"), InspectionEdit(assignee=None), CATEGORIES, T0)
    assert unassign is not None
    assert unassign.values == {"assignee": None}
    keep = plan_edit(current(assignee="x"), InspectionEdit(assignee=KEEP), CATEGORIES, T0)
    assert keep is None


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (InspectionEdit(status="closed"), "status 'closed' is not one of"),
        (InspectionEdit(severity="extreme"), "severity 'extreme' is not one of: low"),
        (InspectionEdit(category="graffiti"), "category 'graffiti' is not one of: damage"),
        (InspectionEdit(description=" "), "description must not be empty"),
        (InspectionEdit(description="x" * 5001), "longer than 5000"),
        (InspectionEdit(note="x" * 5001), "longer than 5000"),
        (InspectionEdit(assignee="\ud800"), "lone surrogates"),
    ],
)
def test_values_that_cannot_be_used_are_input_errors(edit: InspectionEdit, match: str) -> None:
    with pytest.raises(InputError, match=match):
        plan_edit(current(), edit, CATEGORIES, T0)


# -- the service on both backends --------------------------------------------------------------


def test_the_workflow_writes_its_history_who_when_what_and_why_in_order(
    service: InspectionService, engine: Engine
) -> None:
    created = service.create(finding(), by="inspector-jan")
    assert created["status"] == "open"
    iid = created["id"]
    service.change(iid, InspectionEdit(status="in_progress", assignee="team-wegen"), by="kim")
    service.change(iid, InspectionEdit(status="resolved", note="Stone replaced"), by="team-wegen")
    service.change(iid, InspectionEdit(status="open", note="Loose again"), by="inspector-jan")
    history = events_of(engine, iid)
    assert [(e["change"], e["from_status"], e["to_status"], e["actor"]) for e in history] == [
        ("created", None, "open", "inspector-jan"),
        ("assigned", None, None, "kim"),
        ("status", "open", "in_progress", "kim"),
        ("status", "in_progress", "resolved", "team-wegen"),
        ("status", "resolved", "open", "inspector-jan"),
    ]
    assert [e["note"] for e in history] == [None, None, None, "Stone replaced", "Loose again"]
    assert history[1]["assignee"] == "team-wegen"
    times = [e["at"] for e in history]
    assert times == sorted(times)
    assert times[0] == T0
    assert all(t.tzinfo for t in times)
    assert times[1] == times[2]  # one change, one moment
    now = service.get(iid)
    assert now is not None
    assert now["status"] == "open"
    assert now["closed_at"] is None
    assert now["updated_at"] == times[-1]


def test_resolving_sets_closed_at_and_reopening_clears_it(service: InspectionService) -> None:
    iid = service.create(finding(), by="p")["id"]
    resolved = service.change(iid, InspectionEdit(status="resolved", note="ok"), by="p")
    assert resolved is not None
    assert resolved["closed_at"] == resolved["updated_at"]
    reopened = service.change(iid, InspectionEdit(status="open", note="no"), by="p")
    assert reopened is not None
    assert reopened["closed_at"] is None


def test_a_refused_change_writes_nothing_and_publishes_nothing(
    service: InspectionService, engine: Engine, bus: RecordingBus
) -> None:
    iid = service.create(finding(), by="p")["id"]
    service.change(iid, InspectionEdit(status="rejected", note="duplicate"), by="p")
    published = len(bus.batches)
    with pytest.raises(ConflictError):
        service.change(iid, InspectionEdit(status="resolved", note="x"), by="p")
    with pytest.raises(ConflictError):
        service.change(iid, InspectionEdit(status="in_progress"), by="p")
    with pytest.raises(InputError):
        service.change(iid, InspectionEdit(status="open"), by="p")
    assert service.change(iid, InspectionEdit(status="rejected"), by="p") is not None  # no-op
    assert len(bus.batches) == published
    assert [e["change"] for e in events_of(engine, iid)] == ["created", "status"]


def test_a_change_of_an_unknown_inspection_is_none(service: InspectionService) -> None:
    assert service.change("nope", InspectionEdit(status="in_progress"), by="p") is None
    assert service.detail("nope") is None


def test_each_committed_change_is_published_once_after_its_commit(
    service: InspectionService, bus: RecordingBus
) -> None:
    iid = service.create(finding(severity="high"), by="p")["id"]
    service.change(iid, InspectionEdit(status="in_progress", assignee="team"), by="p")
    service.change(iid, InspectionEdit(status="resolved", note="done"), by="p")
    assert [len(batch) for batch in bus.batches] == [1, 1, 1]
    assert bus.committed == [["open"], ["in_progress"], ["resolved"]]
    first, started, closed = (batch[0] for batch in bus.batches)
    assert first.layer == "inspections"
    assert first.key == f"inspection:{iid}"
    assert first.kind == "damage"
    assert (first.lon, first.lat, first.h) == tuple(HERE)
    assert first.data["severity"] == "high"
    assert first.removed is False
    assert started.data["assignee"] == "team"
    assert started.data["status"] == "in_progress"
    assert closed.removed is True
    assert first.time < started.time < closed.time


def test_current_changes_are_the_open_and_in_progress_inspections(
    service: InspectionService,
) -> None:
    opened = service.create(finding(), by="p")["id"]
    started = service.create(finding(), by="p")["id"]
    closed = service.create(finding(), by="p")["id"]
    service.change(started, InspectionEdit(status="in_progress"), by="p")
    service.change(closed, InspectionEdit(status="rejected", note="dup"), by="p")
    changes = service.current_changes()
    assert {c.key for c in changes} == {f"inspection:{opened}", f"inspection:{started}"}
    assert not any(c.removed for c in changes)


def test_links_must_exist_and_nothing_is_written_otherwise(
    service: InspectionService, engine: Engine
) -> None:
    create_sensor(engine, {"id": "water-3", "name": "w"}, [("water_level", "m")])
    linked = service.create(finding(sensor_ids=["water-3", "water-3"]), by="p")
    assert linked["sensor_ids"] == ["water-3"]
    with pytest.raises(InputError, match="there is no sensor 'water-4'"):
        service.create(finding(sensor_ids=["water-3", "water-4"]), by="p")
    with pytest.raises(InputError, match="there is no alert 'a1'"):
        service.create(finding(alert_ids=["a1"]), by="p")
    with pytest.raises(InputError, match="at most 20"):
        service.create(finding(sensor_ids=[f"s{n}" for n in range(21)]), by="p")
    assert count(engine, inspections) == 1
    assert count(engine, inspection_events) == 1


def test_a_finding_on_an_asset_feature_takes_the_features_position(
    service: InspectionService, engine: Engine
) -> None:
    insert_asset(engine, "lamps", public=True, extent=(4.89, 52.36, 4.90, 52.38))
    with engine.begin() as connection:
        connection.execute(
            insert(asset_features).values(
                asset_id="lamps", feature_id="lamp-0412", lon=4.8951, lat=52.3701, h=45.0
            )
        )
    row = service.create(
        NewInspection(category="damage", description="Leaning", asset_id="lamps",
                      feature_id="lamp-0412"),
        by="p",
    )  # fmt: skip
    assert (row["lon"], row["lat"], row["h"]) == (4.8951, 52.3701, 45.0)
    assert (row["asset_id"], row["feature_id"]) == ("lamps", "lamp-0412")
    with pytest.raises(InputError, match="has no feature 'lamp-9999'"):
        service.create(finding(location=None, asset_id="lamps", feature_id="lamp-9999"), by="p")
    with pytest.raises(InputError, match="there is no asset 'gone'"):
        service.create(finding(asset_id="gone"), by="p")
    assert count(engine, inspections) == 1


def test_outside_the_extent_is_refused_with_a_clear_message(
    service: InspectionService, engine: Engine
) -> None:
    with pytest.raises(InputError, match="outside the municipality's extent"):
        service.create(finding(location=[52.37, 4.89]), by="p")  # lat, lon swapped
    assert count(engine, inspections) == 0


def test_hostile_text_is_stored_and_returned_verbatim(service: InspectionService) -> None:
    text = '\'); DROP TABLE inspections; -- <script>alert(1)</script> =HYPERLINK("x")'
    iid = service.create(finding(description=text, assignee=text[:200]), by=text[:200])["id"]
    detail = service.detail(iid)
    assert detail is not None
    assert detail.inspection["description"] == text
    assert detail.inspection["assignee"] == text[:200]
    assert detail.history[0]["actor"] == text[:200]


def test_concurrent_closings_let_exactly_one_through(
    service: InspectionService, engine: Engine
) -> None:
    iid = service.create(finding(), by="p")["id"]
    start = threading.Barrier(8)

    def close(n: int) -> str:
        start.wait(timeout=30)
        target = "resolved" if n % 2 else "rejected"
        try:
            service.change(iid, InspectionEdit(status=target, note=f"by {n}"), by=f"p{n}")
        except ConflictError:
            return "refused"
        return target

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(close, range(8)))
    history = events_of(engine, iid)
    # One closing; the others were refused (the other one) or, closing it the same way,
    # changed nothing but their notes.
    assert [e["change"] for e in history] == ["created", "status", "note", "note", "note"]
    winner = history[1]["to_status"]
    assert {o for o in outcomes if o != "refused"} == {winner}, outcomes
    assert outcomes.count("refused") == 4, outcomes
    final = service.get(iid)
    assert final is not None
    assert final["status"] == winner


def test_concurrent_notes_are_all_kept(service: InspectionService, engine: Engine) -> None:
    iid = service.create(finding(), by="p")["id"]
    start = threading.Barrier(10)

    def note(n: int) -> None:
        start.wait(timeout=30)
        service.change(iid, InspectionEdit(note=f"note {n}"), by=f"p{n}")

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(note, range(10)))
    notes = [e["note"] for e in events_of(engine, iid) if e["change"] == "note"]
    assert sorted(notes) == sorted(f"note {n}" for n in range(10))


def test_a_stale_write_is_refused_by_the_store(service: InspectionService, engine: Engine) -> None:
    row = service.create(finding(), by="p")
    with engine.begin() as connection:
        assert not rows.update_inspection(
            connection, row["id"], status="in_progress", updated_at=row["updated_at"],
            values={"status": "resolved"},
        )  # fmt: skip
        assert not rows.update_inspection(
            connection, row["id"], status="open", updated_at=row["updated_at"] - timedelta(1),
            values={"status": "resolved"},
        )  # fmt: skip
    now = service.get(row["id"])
    assert now is not None
    assert now["status"] == "open"


def test_search_filters_and_pages_newest_first(service: InspectionService) -> None:
    made = [
        service.create(finding(category=c, location=[4.8 + n / 100, 52.3, 0.0]), by="p")["id"]
        for n, c in enumerate(["damage", "hazard", "damage", "other"])
    ]
    service.change(made[1], InspectionEdit(status="in_progress"), by="p")
    everything = [r["id"] for r in service.search(Filters(), 10)]
    assert everything == made[::-1]
    first = service.search(Filters(), 2)
    second = service.search(Filters(), 2, (first[-1]["created_at"], first[-1]["id"]))
    assert [r["id"] for r in first + second] == made[::-1]
    assert [r["id"] for r in service.search(Filters(categories=("damage",)), 10)] == [
        made[2], made[0]
    ]  # fmt: skip
    assert [r["id"] for r in service.search(Filters(statuses=("in_progress",)), 10)] == [made[1]]
    boxed = service.search(Filters(bbox=(4.805, 52.2, 4.825, 52.4)), 10)
    assert [r["id"] for r in boxed] == [made[2], made[1]]
    created = [r["created_at"] for r in service.search(Filters(), 10)][::-1]
    window = Filters(created_from=created[1], created_to=created[3])
    assert [r["id"] for r in service.search(window, 10)] == [made[2], made[1]]


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_photo_is_stored_with_its_history_entry_and_announced(
    service: InspectionService, engine: Engine, bus: RecordingBus
) -> None:
    created = service.create(finding(), by="p")
    photo = service.add_photo(created["id"], jpeg(), by="inspector-jan")
    assert photo is not None
    assert (photo["width"], photo["height"], photo["content_type"]) == (64, 48, "image/jpeg")
    assert photo["created_by"] == "inspector-jan"
    history = events_of(engine, created["id"])
    assert [(e["change"], e["actor"]) for e in history] == [
        ("created", "p"),
        ("photo", "inspector-jan"),
    ]
    assert history[1]["at"] == photo["created_at"]
    full = service.photo(created["id"], photo["id"])
    small = service.photo(created["id"], photo["id"], thumbnail=True)
    assert full is not None
    assert small is not None
    assert full[1] == small[1] == "image/jpeg"
    assert Image.open(io.BytesIO(full[0])).size == (64, 48)
    assert len(bus.batches) == 2
    assert bus.batches[1][0].time > bus.batches[0][0].time
    assert service.photo("other", photo["id"]) is None


def test_a_refused_photo_leaves_no_row_and_no_history(
    service: InspectionService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = service.create(finding(), by="p")["id"]
    with pytest.raises(PhotoError):
        service.add_photo(iid, b"GIF89a not really", by="p")
    with pytest.raises(PhotoTooLargeError):
        InspectionService(
            engine, categories=CATEGORIES, extent=None, max_photo_pixels=100
        ).add_photo(iid, jpeg(), by="p")
    monkeypatch.setattr(inspection_service, "MAX_PHOTOS", 1)
    assert service.add_photo(iid, jpeg(), by="p") is not None
    with pytest.raises(ConflictError, match="at most 1 photos"):
        service.add_photo(iid, jpeg(), by="p")
    assert service.add_photo("nope", jpeg(), by="p") is None
    assert count(engine, inspection_photos) == 1
    assert [e["change"] for e in events_of(engine, iid)] == ["created", "photo"]


# -- the history's bounds ----------------------------------------------------------------------


def test_the_real_history_limits_are_a_thousand_entries_and_pages_of_two_hundred() -> None:
    assert inspection_service.MAX_HISTORY == 1000
    assert inspection_service.HISTORY_PAGE == 200


def test_a_change_past_the_history_limit_is_a_conflict_that_writes_nothing(
    service: InspectionService,
    engine: Engine,
    bus: RecordingBus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inspection_service, "MAX_HISTORY", 4)
    iid = service.create(finding(), by="p")["id"]
    service.change(iid, InspectionEdit(note="one"), by="p")
    # Edited, assigned and a status change: three entries where only two fit, so none is made.
    with pytest.raises(ConflictError, match="limit of 4 history entries"):
        service.change(
            iid, InspectionEdit(severity="high", assignee="team", status="in_progress"), by="p"
        )
    assert service.get(iid)["status"] == "open"  # type: ignore[index]
    service.change(iid, InspectionEdit(note="two"), by="p")
    service.change(iid, InspectionEdit(note="three"), by="p")
    published = len(bus.batches)
    with pytest.raises(ConflictError, match="limit of 4 history entries"):
        service.change(iid, InspectionEdit(note="four"), by="p")
    with pytest.raises(ConflictError, match="limit of 4 history entries"):
        service.add_photo(iid, jpeg(), by="p")
    assert [e["note"] for e in events_of(engine, iid)] == [None, "one", "two", "three"]
    assert count(engine, inspection_photos) == 0
    assert len(bus.batches) == published
    # A change that changes nothing adds no entry, so it is no conflict.
    assert service.change(iid, InspectionEdit(severity="normal"), by="p") is not None


def test_a_detail_holds_the_newest_page_of_the_history_and_pages_back_to_the_first(
    service: InspectionService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inspection_service, "HISTORY_PAGE", 3)
    iid = service.create(finding(), by="p")["id"]
    for k in range(6):
        service.change(iid, InspectionEdit(note=f"note {k}"), by="p")
    everything = events_of(engine, iid)
    pages: list[list[dict[str, Any]]] = []
    before = None
    for _ in range(5):
        detail = service.detail(iid, history_before=before)
        assert detail is not None
        assert detail.history_total == 7
        pages.append([dict(e) for e in detail.history])
        before = detail.history_next
        if before is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [e for page in reversed(pages) for e in page] == everything
    assert pages[0][-1]["note"] == "note 5"  # the newest entry is in the first page, last
    empty = service.detail(iid, history_before=everything[0]["id"])
    assert empty is not None
    assert (empty.history, empty.history_next, empty.history_total) == ([], None, 7)


# -- the listing's plan ------------------------------------------------------------------------


def plan_of_search(engine: Engine, filters: Filters, after: rows.Cursor | None) -> str:
    """The query plan the engine picks for :func:`rows.search` (PostgreSQL: with sequential
    scans priced out, so that an empty table still shows which index can serve it)."""
    statements: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statements.append((args[2], args[3]))  # statement, parameters

    with engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", capture)
        rows.search(connection, filters, 10, after)
        event.remove(connection, "before_cursor_execute", capture)
        statement, parameters = statements[-1]
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        else:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
        return " ".join(str(part) for row in cursor.fetchall() for part in row)


def test_pages_walk_the_creation_index_from_the_cursor(engine: Engine) -> None:
    after = (T0, "f" * 32)
    plan = plan_of_search(engine, Filters(), after)
    assert "inspections_created" in plan
    window = Filters(created_from=T0 - timedelta(days=7))
    assert "inspections_created" in plan_of_search(engine, window, after)
    assert "inspections_status" in plan_of_search(engine, Filters(statuses=("open",)), None)
    assert "inspections_asset" in plan_of_search(engine, Filters(asset_id="lamps"), None)
