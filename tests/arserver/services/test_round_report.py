"""The participation round report: counts, thread order, moderation and responses, the
author never in any format, hostile text escaped in HTML and neutralised in CSV, the store's
streaming, and the route ``GET /api/v1/rounds/{round_id}/report``. The store and service tests
run on SQLite and PostgreSQL; the route tests on SQLite."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, update

from arserver.api.round_report import RoundReport
from arserver.errors import NotFoundError
from arserver.security.tokens import create_token
from arserver.services.round_report import (
    CSV_COLUMNS,
    HTML_POLICY,
    build_report,
    report_csv,
    report_html,
    report_json,
)
from arserver.store.round_report import round_comments
from arserver.store.schema import assets, comment_events, comments, rounds
from arserver.store.snapshot import snapshot
from tests.arserver.support import auth, engine_of, insert_asset

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ROUND = "r1"
TITLE = "Herinrichting <script>alert(1)</script> 'plein' & \"straat\""
HOSTILE = '<script>alert("x")</script></td></tr><td>\'" &amp; =cmd'
REASON = "Schelden </td><b>vet</b>"
#: Values that link to persons or are secret: none may appear in any format of the report.
SECRETS = (
    "token:AUTHOR-SECRET-1", "STAFF-AUTHOR-2", "token:AUTHOR-SECRET-3", "token:AUTHOR-SECRET-6",
    "token:AUTHOR-SECRET-7", "token:AUTHOR-SECRET-8", "MOD-SECRET", "RESPONDER-SECRET",
    "ROUND-CREATOR-SECRET", "SALTSALTSALTSALT", "OTHER-ROUND-TEXT", "NO-ROUND-TEXT",
    "ERASED-REASON-SECRET", "EVENT-ACTOR-SECRET",
)  # fmt: skip
#: The comments of round r1 in the report's order: per thread, each in time order.
ORDER = ["c1", "c2", "c4", "c3", "c7", "c5", "c6", "c8"]


def insert_round(engine: Engine, round_id: str, planned: list[str], **values: Any) -> None:
    row: dict[str, Any] = {
        "id": round_id, "title": TITLE, "description": "Regel 1\nRegel 2 <i>schuin</i>",
        "privacy_notice": "Wij bewaren uw reactie onder een pseudoniem.", "mode": "public",
        "area": {"type": "Polygon", "coordinates": [[[5.1, 52.0], [5.2, 52.0], [5.2, 52.1],
                                                      [5.1, 52.0]]]},
        "west": 5.1, "south": 52.0, "east": 5.2, "north": 52.1, "asset_ids": planned,
        "starts_at": T0 - timedelta(days=1), "ends_at": T0 + timedelta(days=14),
        "pseudonym_salt": "SALTSALTSALTSALT", "created_by": "ROUND-CREATOR-SECRET",
        "created_at": T0 - timedelta(days=2), "updated_at": T0 - timedelta(days=2),
    }  # fmt: skip
    row.update(values)
    with engine.begin() as connection:
        connection.execute(insert(rounds).values(**row))


def insert_comment(engine: Engine, comment_id: str, minutes: float, **values: Any) -> None:
    row: dict[str, Any] = {
        "id": comment_id, "round_id": ROUND, "thread_id": comment_id, "reply_to": None,
        "lon": 5.15, "lat": 52.05, "h": 43.25, "asset_id": None, "feature_id": None,
        "text": f"tekst {comment_id}", "author": None, "author_name": "Bewoner AAAAAA",
        "author_kind": "resident", "status": "visible",
        "created_at": T0 + timedelta(minutes=minutes),
    }  # fmt: skip
    row.update(values)
    with engine.begin() as connection:
        connection.execute(insert(comments).values(**row))


def insert_report_round(engine: Engine) -> None:
    """Round r1 about a1, a2 and an asset deleted since, with threads, a hidden comment with a
    reason, responses, an erased comment, comments on features of a1, on a2, on an asset
    outside the plan and on no object; plus comments of another round and of none."""
    for asset_id in ("a1", "a2", "a3"):
        insert_asset(engine, asset_id)
    with engine.begin() as connection:
        for asset_id, name in (("a1", "Bomenrij Oudegracht"), ("a2", 'Stalling <b>"Noord"</b>')):
            connection.execute(update(assets).where(assets.c.id == asset_id).values(name=name))
    insert_round(engine, ROUND, ["a1", "a2", "gone"])
    insert_round(engine, "r2", [])
    on_f1 = {"asset_id": "a1", "feature_id": "f1"}
    insert_comment(
        engine, "c1", 0, **on_f1, author="token:AUTHOR-SECRET-1", author_name="Bewoner ABCDEF",
        text="De bomen moeten blijven.", response="We verplaatsen de bomen niet.",
        responded_by="RESPONDER-SECRET", responded_at=T0 + timedelta(days=2),
    )  # fmt: skip
    insert_comment(
        engine, "c2", 60, **on_f1, thread_id="c1", reply_to="c1", author="STAFF-AUTHOR-2",
        author_name="Team Ruimte", author_kind="staff", text="Dank voor uw reactie.",
    )  # fmt: skip
    insert_comment(
        engine, "c3", 120, asset_id="a2", author="token:AUTHOR-SECRET-3",
        author_name="Bewoner GHIJKL", text=HOSTILE, status="hidden", moderation_reason=REASON,
        moderated_by="MOD-SECRET", moderated_at=T0 + timedelta(hours=5),
    )  # fmt: skip
    insert_comment(
        engine, "c4", 180, **on_f1, thread_id="c1", reply_to="c2", author=None, author_name="",
        text="", status="erased",
    )  # fmt: skip
    insert_comment(
        engine, "c5", 240, author="token:AUTHOR-SECRET-1", author_name="Bewoner ABCDEF",
        text='=HYPERLINK("http://example.invalid","klik")',
    )  # fmt: skip
    insert_comment(
        engine, "c6", 300, asset_id="a1", feature_id="f2", author="token:AUTHOR-SECRET-6",
        author_name="Bewoner MNOPQR", text="+SUM(A1)\n-tweede regel", h=-3.5,
    )  # fmt: skip
    insert_comment(
        engine, "c7", 360, asset_id="a2", thread_id="c3", reply_to="c3",
        author="token:AUTHOR-SECRET-7", author_name="Bewoner MNOPQR", text="\tmet tab",
        response="Zie het antwoord hierboven.", responded_at=T0 + timedelta(days=3),
    )  # fmt: skip
    insert_comment(
        engine, "c8", 420, asset_id="a3", feature_id="door-1", author="token:AUTHOR-SECRET-8",
        author_name="Bewoner GHIJKL", text="@mooi",
    )  # fmt: skip
    insert_comment(engine, "x1", 10, round_id="r2", author="token:X", text="OTHER-ROUND-TEXT")
    insert_comment(engine, "x2", 20, round_id=None, author="token:Y", text="NO-ROUND-TEXT")
    insert_events(
        engine,
        ("c1", T0 + timedelta(days=1), "RESPONDER-SECRET", "answered", "Eerst: we kijken ernaar."),
        ("c1", T0 + timedelta(days=2), "RESPONDER-SECRET", "answered",
         "We verplaatsen de bomen niet."),
        ("c3", T0 + timedelta(hours=5), "MOD-SECRET", "hidden", REASON),
        ("c4", T0 + timedelta(hours=4), "EVENT-ACTOR-SECRET", "hidden", "ERASED-REASON-SECRET"),
        ("c7", T0 + timedelta(hours=7), "MOD-SECRET", "hidden", "te fel"),
        ("c7", T0 + timedelta(hours=8), "EVENT-ACTOR-SECRET", "restored", None),
        ("x1", T0, "MOD-SECRET", "hidden", "OTHER-ROUND-TEXT"),
    )  # fmt: skip


def insert_events(engine: Engine, *events: tuple[str, datetime, str, str, str | None]) -> None:
    """Moderation steps (comment, at, actor, action, text), as the comment service writes."""
    with engine.begin() as connection:
        for comment_id, at, actor, action, text in events:
            connection.execute(
                insert(comment_events).values(
                    comment_id=comment_id, at=at, actor=actor, action=action, text=text
                )
            )


@pytest.fixture
def report(engine: Engine) -> dict[str, Any]:
    insert_report_round(engine)
    return build_report(engine, ROUND, now=T0 + timedelta(days=20))


# -- the report -----------------------------------------------------------------------------


def test_totals_count_comments_residents_moderation_and_answers(report: dict[str, Any]) -> None:
    assert report["totals"] == {
        "comments": 8, "residents": 3, "visible": 6, "hidden": 1, "erased": 1, "answered": 2,
        "unanswered": 3,
    }  # fmt: skip


def test_objects_count_planned_assets_their_features_others_and_no_object(
    report: dict[str, Any],
) -> None:
    assert report["objects"] == [
        {
            "asset": "a1", "asset_name": "Bomenrij Oudegracht", "planned": True,
            "comments": 4, "answered": 1, "unanswered": 1,
            "features": [
                {"feature": "f1", "comments": 3, "answered": 1, "unanswered": 0},
                {"feature": "f2", "comments": 1, "answered": 0, "unanswered": 1},
            ],
        },
        {
            "asset": "a2", "asset_name": 'Stalling <b>"Noord"</b>', "planned": True,
            "comments": 2, "answered": 1, "unanswered": 0, "features": [],
        },
        {
            "asset": "gone", "asset_name": None, "planned": True,
            "comments": 0, "answered": 0, "unanswered": 0, "features": [],
        },
        {
            "asset": "a3", "asset_name": "a3", "planned": False,
            "comments": 1, "answered": 0, "unanswered": 1,
            "features": [{"feature": "door-1", "comments": 1, "answered": 0, "unanswered": 1}],
        },
        {
            "asset": None, "asset_name": None, "planned": False,
            "comments": 1, "answered": 0, "unanswered": 1, "features": [],
        },
    ]  # fmt: skip


def test_the_announcement_names_the_planned_assets_and_the_window(report: dict[str, Any]) -> None:
    announced = report["round"]
    assert announced["title"] == TITLE
    assert announced["mode"] == "public"
    assert announced["bbox"] == [5.1, 52.0, 5.2, 52.1]
    assert announced["area"]["type"] == "Polygon"
    assert announced["assets"] == [
        {"id": "a1", "name": "Bomenrij Oudegracht"},
        {"id": "a2", "name": 'Stalling <b>"Noord"</b>'},
        {"id": "gone", "name": None},
    ]
    assert datetime.fromisoformat(announced["starts_at"]) == T0 - timedelta(days=1)
    assert datetime.fromisoformat(announced["ends_at"]) == T0 + timedelta(days=14)
    assert report["generated_at"] == (T0 + timedelta(days=20)).isoformat()


def test_comments_come_per_thread_in_time_order_with_moderation_and_responses(
    report: dict[str, Any],
) -> None:
    by_id = {c["id"]: c for c in report["comments"]}
    assert [c["id"] for c in report["comments"]] == ORDER
    first = by_id["c1"]
    assert (first["asset"], first["asset_name"], first["feature"]) == (
        "a1", "Bomenrij Oudegracht", "f1"
    )  # fmt: skip
    assert (first["lon"], first["lat"], first["h"]) == (5.15, 52.05, 43.25)
    assert datetime.fromisoformat(first["created_at"]) == T0
    assert first["response"] == "We verplaatsen de bomen niet."
    assert datetime.fromisoformat(first["responded_at"]) == T0 + timedelta(days=2)
    assert (by_id["c2"]["reply_to"], by_id["c2"]["author_kind"]) == ("c1", "staff")
    hidden = by_id["c3"]
    assert (hidden["status"], hidden["text"], hidden["moderation_reason"]) == (
        "hidden", HOSTILE, REASON
    )  # fmt: skip
    erased = by_id["c4"]
    assert (erased["status"], erased["text"], erased["thread_id"]) == ("erased", None, "c1")
    assert by_id["c5"]["asset"] is None


def test_every_comment_carries_its_moderation_history_oldest_first(
    report: dict[str, Any],
) -> None:
    by_id = {c["id"]: c for c in report["comments"]}
    assert by_id["c1"]["moderation_history"] == [
        {"action": "answered", "at": (T0 + timedelta(days=1)).isoformat(),
         "text": "Eerst: we kijken ernaar."},
        {"action": "answered", "at": (T0 + timedelta(days=2)).isoformat(),
         "text": "We verplaatsen de bomen niet."},
    ]  # fmt: skip
    assert by_id["c3"]["moderation_history"] == [
        {"action": "hidden", "at": (T0 + timedelta(hours=5)).isoformat(), "text": REASON}
    ]
    assert by_id["c4"]["moderation_history"] == [  # erased: the reason goes with the text
        {"action": "hidden", "at": (T0 + timedelta(hours=4)).isoformat(), "text": None}
    ]
    assert [(s["action"], s["text"]) for s in by_id["c7"]["moderation_history"]] == [
        ("hidden", "te fel"), ("restored", None)
    ]  # fmt: skip
    assert by_id["c2"]["moderation_history"] == []
    assert all(set(s) == {"action", "at", "text"} for c in by_id.values()
               for s in c["moderation_history"])  # fmt: skip


def test_the_moderation_history_is_summarised_in_csv_and_listed_in_html(
    report: dict[str, Any],
) -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(report)[1:], newline="")))
    by_id = {row["id"]: row for row in rows}
    assert by_id["c7"]["moderation_history"] == (
        f"{(T0 + timedelta(hours=7)).isoformat()} hidden: te fel; "
        f"{(T0 + timedelta(hours=8)).isoformat()} restored"
    )
    assert by_id["c2"]["moderation_history"] == ""
    parsed = parse(report_html(report))
    items = [text for tag, text in parsed.elements if tag == "li"]
    assert any(item.endswith("verborgen: te fel") for item in items)
    assert any(item.endswith("weer zichtbaar") for item in items)
    assert any(item.endswith("beantwoord: Eerst: we kijken ernaar.") for item in items)
    assert sum(text == "Moderatie en antwoorden:" for _, text in parsed.texts) == 4


def test_the_author_and_other_rounds_never_appear_in_any_format(report: dict[str, Any]) -> None:
    for rendered in (report_json(report), report_csv(report), report_html(report)):
        for secret in SECRETS:
            assert secret not in rendered
    assert all("author" not in c and "moderated_by" not in c for c in report["comments"])


def test_the_json_report_matches_its_documented_schema(report: dict[str, Any]) -> None:
    parsed = RoundReport.model_validate(json.loads(report_json(report)))
    assert parsed.comments[0].created_at == T0


@pytest.mark.parametrize("round_id", ["nope", "x" * 33, "r1' OR '1'='1", "\ud800", "a\x00"])
def test_an_unknown_round_is_not_found(engine: Engine, round_id: str) -> None:
    insert_round(engine, ROUND, [])
    with pytest.raises(NotFoundError):
        build_report(engine, round_id)


def test_a_round_without_comments_reports_zeros(engine: Engine) -> None:
    insert_round(engine, "quiet", ["a9"])
    quiet = build_report(engine, "quiet")
    assert quiet["comments"] == []
    assert quiet["totals"]["comments"] == 0
    assert [(o["asset"], o["comments"]) for o in quiet["objects"]] == [("a9", 0), (None, 0)]
    assert "geen reacties" in report_html(quiet)
    assert report_csv(quiet).splitlines() == ["\ufeff" + ",".join(CSV_COLUMNS)]


def test_the_store_streams_comments_in_pages_oldest_first(engine: Engine) -> None:
    insert_round(engine, ROUND, [])
    for n in range(7):  # two share a time: ties go by id
        insert_comment(engine, f"p{6 - n}", 0 if n in (0, 1) else n)
    with snapshot(engine) as connection:
        ids = [row["id"] for row in round_comments(connection, ROUND, page=3)]
        assert all("author" not in row for row in round_comments(connection, ROUND, page=2))
    assert ids == ["p5", "p6", "p4", "p3", "p2", "p1", "p0"]


# -- HTML -------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Every start tag with its attributes, and the text of each element (all the text nodes
    inside it, joined) by its ``class`` and by its tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[tuple[str, str]] = []
        self.texts: list[tuple[str, str]] = []  # (class, text) of closed elements
        self.elements: list[tuple[str, str]] = []  # (tag, text) of closed elements
        self.current: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("meta", "br"):
            return
        self.stack.append((tag, dict(attrs).get("class") or ""))
        self.current.append([])

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            return
        opened, css = self.stack.pop()
        assert opened == tag, f"</{tag}> closes <{opened}>"
        text = "".join(self.current.pop())
        self.texts.append((css, text))
        self.elements.append((tag, text))

    def handle_data(self, data: str) -> None:
        for inside in self.current:
            inside.append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], "elements left open"
    return parser


def test_the_html_report_is_self_contained_printable_and_dutch(report: dict[str, Any]) -> None:
    page = report_html(report)
    parsed = parse(page)
    tags = {tag for tag, _ in parsed.tags}
    assert tags.isdisjoint({"script", "img", "link", "iframe", "object", "embed", "form"})
    assert ("html", {"lang": "nl"}) in parsed.tags
    attributes = {name for _, attrs in parsed.tags for name in attrs}
    assert attributes.isdisjoint({"src", "href", "action", "style"})
    assert not any(a.startswith("on") for a in attributes)
    policy = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert policy == [{"http-equiv": "Content-Security-Policy", "content": HTML_POLICY}]
    assert "@page { size: A4" in page
    assert "url(" not in page
    assert "@import" not in page


def test_the_html_report_keeps_hostile_text_as_text(report: dict[str, Any]) -> None:
    parsed = parse(report_html(report))
    texts = [text for css, text in parsed.texts if css == "text"]
    assert HOSTILE in texts
    assert "+SUM(A1)\n-tweede regel" in texts
    assert ("title", f"Verslag participatieronde: {TITLE}") in parsed.elements
    assert ("subtitle", TITLE) in parsed.texts
    assert [t for t, _ in parsed.tags].count("article") == len(ORDER)


def test_the_html_report_mutes_hidden_comments_and_marks_erased_ones(
    report: dict[str, Any],
) -> None:
    parsed = parse(report_html(report))
    articles = [a.get("class") or "" for t, a in parsed.tags if t == "article"]
    assert articles[ORDER.index("c3")] == "comment depth-0 status-hidden"
    assert articles[ORDER.index("c4")] == "comment depth-2 status-erased"
    assert articles[ORDER.index("c2")] == "comment depth-1 status-visible"
    moderation = [text for css, text in parsed.texts if css == "moderation"]
    assert len(moderation) == 1
    assert REASON in moderation[0]
    assert [text for css, text in parsed.texts if css == "erased"] == ["verwijderd op verzoek"]
    responses = [text for css, text in parsed.texts if css == "response"]
    assert len(responses) == 2
    assert "We verplaatsen de bomen niet." in responses[0]


def test_lone_surrogates_and_controls_cannot_break_the_renderings(report: dict[str, Any]) -> None:
    report["round"]["title"] = "titel \ud800"
    report["comments"][0]["text"] = "a\udfffb\x00c\x1bd"
    report["comments"][1]["author_name"] = "\ud83d"
    page = report_html(report)
    page.encode("utf-8")
    assert "a\ufffdb\ufffdc\ufffdd" in page
    assert "\x00" not in page
    parse(page)
    report_csv(report).encode("utf-8")
    report_json(report).encode("utf-8")


# -- CSV --------------------------------------------------------------------------------------


def test_the_csv_report_has_a_row_per_comment_and_neutralises_formulas(
    report: dict[str, Any],
) -> None:
    text = report_csv(report)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:], newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_id = {row["id"]: row for row in rows}
    assert [row["id"] for row in rows] == ORDER
    assert by_id["c5"]["text"] == "'" + '=HYPERLINK("http://example.invalid","klik")'
    assert by_id["c6"]["text"] == "'+SUM(A1)\n-tweede regel"
    assert by_id["c7"]["text"] == "'\tmet tab"
    assert by_id["c8"]["text"] == "'@mooi"
    assert by_id["c3"]["text"] == HOSTILE
    assert by_id["c6"]["h"] == "-3.5"  # numbers stay numbers
    assert (by_id["c3"]["status"], by_id["c3"]["moderation_reason"]) == ("hidden", REASON)
    assert (by_id["c4"]["status"], by_id["c4"]["text"]) == ("erased", "")
    assert by_id["c1"]["asset_name"] == "Bomenrij Oudegracht"
    assert datetime.fromisoformat(by_id["c1"]["created_at"]) == T0


# -- the route --------------------------------------------------------------------------------

SQLITE_ONLY = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_planners_get_the_report_as_json_csv_and_html(client: TestClient) -> None:
    insert_report_round(engine_of(client))
    headers = auth(client, "planner")
    url = f"/api/v1/rounds/{ROUND}/report"
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert [c["id"] for c in answer.json()["comments"]] == ORDER

    spreadsheet = client.get(url, params={"format": "csv"}, headers=headers)
    assert spreadsheet.status_code == 200
    assert spreadsheet.headers["content-type"] == "text/csv; charset=utf-8"
    assert spreadsheet.headers["content-disposition"] == (
        'attachment; filename="round-r1-report.csv"'
    )
    assert spreadsheet.content.startswith(b"\xef\xbb\xbf")

    page = client.get(url, params={"format": "html"}, headers=auth(client, "admin"))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == HTML_POLICY
    for reply in (answer, spreadsheet, page):
        for secret in SECRETS:
            assert secret not in reply.text


@SQLITE_ONLY
def test_only_planners_and_admins_may_read_the_report(client: TestClient) -> None:
    engine = engine_of(client)
    insert_report_round(engine)
    url = f"/api/v1/rounds/{ROUND}/report"
    resident, _ = create_token(engine, "resident", scope=f"round:{ROUND}")
    for role in ("viewer", "gis", "inspector"):
        assert client.get(url, headers=auth(client, role)).status_code == 403, role
    refused = client.get(url, headers={"Authorization": f"Bearer {resident}"})
    assert refused.status_code == 403
    assert client.get(url).status_code == 401


@SQLITE_ONLY
def test_an_unknown_round_or_format_is_refused(client: TestClient) -> None:
    insert_report_round(engine_of(client))
    headers = auth(client, "planner")
    for round_id in ("nope", "x" * 40, "%ED%A0%80", "r1%27%20OR%201=1"):
        missing = client.get(f"/api/v1/rounds/{round_id}/report", headers=headers)
        assert missing.status_code == 404, round_id
        assert missing.json()["detail"]
    bad = client.get(f"/api/v1/rounds/{ROUND}/report?format=pdf", headers=headers)
    assert bad.status_code == 422


@SQLITE_ONLY
def test_the_openapi_schema_documents_the_three_formats(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/rounds/{round_id}/report"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv", "text/html"}
    assert content["application/json"]["schema"]["$ref"].endswith("/RoundReport")
    assert {p["name"] for p in operation["parameters"]} >= {"round_id", "format"}
