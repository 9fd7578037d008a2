"""The report of a participation round: what a municipality attaches to its decision to show
how the reactions were handled (the duty to give reasons under the Omgevingswet).

:func:`build_report` reads the round and all its comments in one snapshot and returns a
JSON-ready dict (times ISO 8601 in UTC, places WGS 84 degrees and ellipsoidal metres):

- ``round``: the announcement (``id``, ``title``, ``description``, ``privacy_notice``,
  ``mode``, ``area`` as GeoJSON, ``bbox`` [west, south, east, north], ``starts_at``,
  ``ends_at``, ``created_at``, ``updated_at``) and the planned ``assets`` [{``id``, ``name``}]
  in the round's order (``name`` None for an asset deleted since);
- ``generated_at``;
- ``totals``: ``comments`` (every comment, every status), ``residents`` (distinct non-empty
  ``author_name`` among residents' comments not erased), ``visible``, ``hidden``, ``erased``,
  ``answered`` (comments with a planners' response) and ``unanswered`` (visible residents'
  comments without one: the reactions still owed an answer);
- ``objects``: the counts per object: one entry per planned asset (in the round's order, also
  with no comments), then the other assets commented on (by id), then ``asset`` None, the
  comments about no object. Each has ``asset``, ``asset_name``, ``planned``, ``comments``,
  ``answered``, ``unanswered`` and ``features`` [{``feature``, ``comments``, ``answered``,
  ``unanswered``}] (by feature id; an asset's comments without a feature are in its own
  counts only);
- ``comments``: every comment grouped per thread (threads in the order of their first
  comment, each in time order): ``id``, ``thread_id``, ``reply_to``, ``created_at``, ``lon``,
  ``lat``, ``h``, ``asset``, ``asset_name``, ``feature``, ``author_name``, ``author_kind``,
  ``status`` (visible | hidden | erased), ``text`` and ``moderation_reason`` (None once
  erased), ``moderated_at``, ``response``, ``responded_at``, and ``moderation_history``: every
  step [{``action`` (hidden | restored | answered), ``at``, ``text`` (the reason, None once
  erased; the answer)}], oldest first.

A report never holds who wrote, moderated or answered a comment (``comments.author``,
``moderated_by``, ``responded_by``, the history's actors): residents appear under their
per-round pseudonym, staff under the name they commented with (in a public round a role
label). Text is returned verbatim (lone surrogates, which no
database stores, become U+FFFD), so the renderers escape it: :func:`report_csv` (one row per
comment, UTF-8 with a BOM, formulas neutralised) and :func:`report_html` (a printable,
self-contained A4 page in Dutch that loads nothing).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine

from arserver.errors import NotFoundError
from arserver.services.checks import storable_text
from arserver.services.tabular import csv_text, well_formed
from arserver.store.round_report import (
    CommentRow,
    EventRow,
    RoundRow,
    asset_names,
    round_comments,
    round_events,
    round_row,
)
from arserver.store.snapshot import snapshot

#: The formats a report is rendered in.
FORMATS = ("json", "csv", "html")
#: The columns of the CSV report, one row per comment (the keys of ``report["comments"]``).
CSV_COLUMNS = (
    "id", "thread_id", "reply_to", "created_at", "lon", "lat", "h", "asset", "asset_name",
    "feature", "author_name", "author_kind", "status", "text", "moderation_reason",
    "moderated_at", "response", "responded_at", "moderation_history",
)  # fmt: skip
#: The Content-Security-Policy of the HTML report (also in its own ``<meta>``): it loads
#: nothing and runs nothing; only its inline style applies.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
#: Longest round id there can be (``rounds.id``).
_MAX_ID = 32
#: Characters an HTML page may not hold (C0 controls but tab and line ends, DEL, C1 controls).
_HTML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


# -- the report -----------------------------------------------------------------------------


def build_report(engine: Engine, round_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The report of round ``round_id`` (see the module docstring for its shape), generated at
    ``now`` (default: the current time); :class:`NotFoundError` if there is no such round."""
    if len(round_id) > _MAX_ID or not storable_text(round_id):  # no such id can exist
        raise NotFoundError("no such round")
    with snapshot(engine) as connection:
        row = round_row(connection, round_id)
        if row is None:
            raise NotFoundError(f"no round {round_id!r}")
        items = list(round_comments(connection, round_id))
        histories: dict[str, list[EventRow]] = {}
        for event in round_events(connection, round_id):
            histories.setdefault(event["comment_id"], []).append(event)
        planned = _planned(row["asset_ids"])
        names = asset_names(
            connection, {*planned, *(c["asset_id"] for c in items if c["asset_id"] is not None)}
        )
    ordered = _thread_order(items)
    return {
        "round": _round_out(row, planned, names),
        "generated_at": _time(now or datetime.now(UTC)),
        "totals": _totals(items),
        "objects": _objects(items, planned, names),
        "comments": [_comment_out(c, names, histories.get(c["id"], [])) for c in ordered],
    }


def render(report: dict[str, Any], fmt: str) -> str:
    """``report`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return report_csv(report)
    if fmt == "html":
        return report_html(report)
    return report_json(report)


def report_json(report: dict[str, Any]) -> str:
    """The report as indented JSON, not ASCII-escaped; any lone surrogate (in the round's
    stored GeoJSON, say) becomes U+FFFD, so that the text always encodes as UTF-8."""
    return well_formed(json.dumps(report, ensure_ascii=False, indent=2)) + "\n"


def _maybe(value: str | None) -> str | None:
    return None if value is None else well_formed(value)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _planned(asset_ids: Any) -> list[str]:
    """The round's planned asset ids, in its order, each once."""
    if not isinstance(asset_ids, list):
        return []
    return list(dict.fromkeys(a for a in asset_ids if isinstance(a, str)))


def _round_out(row: RoundRow, planned: list[str], names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row["id"], "title": well_formed(row["title"]),
        "description": well_formed(row["description"]),
        "privacy_notice": well_formed(row["privacy_notice"]), "mode": row["mode"],
        "area": row["area"],
        "bbox": [row["west"], row["south"], row["east"], row["north"]],
        "starts_at": _time(row["starts_at"]), "ends_at": _time(row["ends_at"]),
        "created_at": _time(row["created_at"]), "updated_at": _time(row["updated_at"]),
        "assets": [{"id": a, "name": _maybe(names.get(a))} for a in planned],
    }  # fmt: skip


def _thread_order(items: list[CommentRow]) -> list[CommentRow]:
    """``items`` (in time order) grouped per thread, threads in the order of their first
    comment."""
    threads: dict[str, list[CommentRow]] = {}
    for item in items:
        threads.setdefault(item["thread_id"], []).append(item)
    return [item for thread in threads.values() for item in thread]


def _comment_out(
    item: CommentRow, names: dict[str, str], history: list[EventRow]
) -> dict[str, Any]:
    erased = item["status"] == "erased"
    asset = item["asset_id"]
    return {
        "id": item["id"], "thread_id": item["thread_id"], "reply_to": item["reply_to"],
        "created_at": _time(item["created_at"]),
        "lon": item["lon"], "lat": item["lat"], "h": item["h"],
        "asset": asset, "asset_name": None if asset is None else _maybe(names.get(asset)),
        "feature": _maybe(item["feature_id"]),
        "author_name": well_formed(item["author_name"]), "author_kind": item["author_kind"],
        "status": item["status"],
        "text": None if erased else well_formed(item["text"]),
        "moderation_reason": None if erased else _maybe(item["moderation_reason"]),
        "moderated_at": _time(item["moderated_at"]),
        "response": _maybe(item["response"]), "responded_at": _time(item["responded_at"]),
        "moderation_history": [
            {
                "action": e["action"], "at": _time(e["at"]),
                "text": None if erased and e["action"] != "answered" else _maybe(e["text"]),
            }
            for e in history
        ],
    }  # fmt: skip


def _answered(item: CommentRow) -> bool:
    return bool(item["response"])


def _owed(item: CommentRow) -> bool:
    """Whether ``item`` is a reaction still owed an answer: a visible resident's comment
    without a response."""
    return (
        item["status"] == "visible" and item["author_kind"] == "resident" and not item["response"]
    )


def _totals(items: list[CommentRow]) -> dict[str, int]:
    residents = {
        i["author_name"]
        for i in items
        if i["author_kind"] == "resident" and i["status"] != "erased"
    }
    residents.discard("")
    return {
        "comments": len(items),
        "residents": len(residents),
        "visible": sum(i["status"] == "visible" for i in items),
        "hidden": sum(i["status"] == "hidden" for i in items),
        "erased": sum(i["status"] == "erased" for i in items),
        "answered": sum(_answered(i) for i in items),
        "unanswered": sum(_owed(i) for i in items),
    }


@dataclass
class _Count:
    comments: int = 0
    answered: int = 0
    unanswered: int = 0

    def add(self, item: CommentRow) -> None:
        self.comments += 1
        self.answered += _answered(item)
        self.unanswered += _owed(item)

    def out(self) -> dict[str, int]:
        return {"comments": self.comments, "answered": self.answered, "unanswered": self.unanswered}


def _objects(
    items: list[CommentRow], planned: list[str], names: dict[str, str]
) -> list[dict[str, Any]]:
    per_asset: dict[str | None, _Count] = {a: _Count() for a in planned}
    per_feature: dict[str, dict[str, _Count]] = {}
    for item in items:
        asset = item["asset_id"]
        per_asset.setdefault(asset, _Count()).add(item)
        if asset is not None and item["feature_id"] is not None:
            features = per_feature.setdefault(asset, {})
            features.setdefault(item["feature_id"], _Count()).add(item)
    chosen = set(planned)
    others = sorted(a for a in per_asset if a is not None and a not in chosen)
    objects = []
    for asset in [*planned, *others]:
        features = per_feature.get(asset, {})
        objects.append(
            {
                "asset": asset, "asset_name": _maybe(names.get(asset)), "planned": asset in chosen,
                **per_asset[asset].out(),
                "features": [
                    {"feature": well_formed(f), **features[f].out()} for f in sorted(features)
                ],
            }
        )  # fmt: skip
    none = per_asset.get(None, _Count())
    objects.append(
        {"asset": None, "asset_name": None, "planned": False, **none.out(), "features": []}
    )
    return objects


# -- CSV --------------------------------------------------------------------------------------


def _history_cell(history: list[dict[str, Any]]) -> str:
    """A comment's moderation history in one cell: ``AT ACTION: TEXT`` per step, ``; ``
    between steps (oldest first)."""
    return "; ".join(
        f"{step['at']} {step['action']}" + (f": {step['text']}" if step["text"] else "")
        for step in history
    )


def _cell(value: Any) -> Any:
    """A CSV cell: a moderation history as :func:`_history_cell`, anything else as it is
    (:func:`~arserver.services.tabular.csv_text` makes it safe)."""
    return _history_cell(value) if isinstance(value, list) else value


def report_csv(report: dict[str, Any]) -> str:
    """One row per comment (the order of ``report["comments"]``) under a header of
    :data:`CSV_COLUMNS`; starts with a byte order mark so that Excel reads it as UTF-8; lines
    end in CRLF (RFC 4180). Text cells that start with ``= + - @``, a tab or a carriage return
    get a leading ``'``; numbers are written as they are."""
    rows = (
        [_cell(comment.get(column)) for column in CSV_COLUMNS] for comment in report["comments"]
    )
    return csv_text(rows, CSV_COLUMNS, bom=True)


# -- HTML -------------------------------------------------------------------------------------

_MODES = {"staff": "medewerkers (intern)", "public": "openbaar (bewoners)"}
_KINDS = {"resident": "bewoner", "staff": "medewerker of genodigde"}
_STATUSES = {"visible": "zichtbaar", "hidden": "verborgen", "erased": "verwijderd op verzoek"}
_AREAS = {"Polygon": "veelhoek", "MultiPolygon": "meerdere veelhoeken"}
_ACTIONS = {"hidden": "verborgen", "restored": "weer zichtbaar", "answered": "beantwoord"}
#: Replies are indented by their depth in the thread, up to this many steps.
_MAX_DEPTH = 4

_STYLE = """
@page { size: A4; margin: 18mm 15mm 20mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.45 "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: #111;
  margin: 0 auto; max-width: 180mm; }
@media screen { body { margin: 2em auto; padding: 0 1em; } }
h1 { font-size: 17pt; margin: 0 0 2pt; }
h2 { font-size: 13pt; margin: 16pt 0 6pt; border-bottom: 1px solid #999;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 11pt; margin: 12pt 0 4pt; break-after: avoid; page-break-after: avoid; }
.subtitle { font-size: 14pt; margin: 0 0 8pt; }
dl { display: grid; grid-template-columns: 38mm 1fr; gap: 2pt 8pt; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; }
thead { display: table-header-group; }
th, td { border: 1px solid #999; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; page-break-inside: avoid; }
tr.asset td { font-weight: 600; }
tr.feature td:first-child { padding-left: 12pt; font-weight: normal; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 2pt 0; }
.meta { color: #444; font-size: 8.5pt; margin: 0; overflow-wrap: anywhere; }
.thread { border-top: 1px solid #ccc; padding-top: 2pt; }
.comment { margin: 4pt 0 6pt; break-inside: avoid; page-break-inside: avoid; }
.depth-1 { margin-left: 6mm; } .depth-2 { margin-left: 12mm; }
.depth-3 { margin-left: 18mm; } .depth-4 { margin-left: 24mm; }
.status-hidden { color: #777; }
.moderation, .erased { font-style: italic; color: #777; margin: 2pt 0; }
.response { border-left: 3pt solid #2a5885; padding-left: 6pt; margin: 3pt 0 0 2pt; }
.response .label { font-weight: 600; font-size: 9pt; margin: 0; }
.open { color: #8a4b00; font-size: 8.5pt; margin: 2pt 0; }
.history { color: #444; font-size: 8.5pt; margin: 2pt 0 0; padding-left: 14pt; }
footer { margin-top: 16pt; color: #555; font-size: 8.5pt; }
"""


def _zone() -> tuple[tzinfo, str]:
    """The zone the page shows times in: Dutch time, or UTC where the zone data is missing."""
    try:
        return ZoneInfo("Europe/Amsterdam"), "Nederlandse tijd"
    except ZoneInfoNotFoundError:
        return UTC, "UTC"


def _esc(value: object) -> str:
    """``value`` as HTML text or attribute value: escaped, with characters no page may hold
    (controls, lone surrogates) replaced by U+FFFD."""
    return html.escape(_HTML_UNSAFE.sub("\ufffd", str(value)), quote=True)


class _Page:
    """The HTML report of one report dict, written into a list of fragments."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        self.zone, self.zone_name = _zone()
        self.parts: list[str] = []

    def when(self, iso: str | None) -> str:
        if not iso:
            return "—"
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            return _esc(iso)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return _esc(moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"))

    def emit(self, *fragments: str) -> None:
        self.parts.extend(fragments)

    def render(self) -> str:
        round_ = self.report["round"]
        self.emit(
            '<!DOCTYPE html>\n<html lang="nl">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{_esc(HTML_POLICY)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            '<meta name="referrer" content="no-referrer">\n',
            f"<title>Verslag participatieronde: {_esc(round_['title'])}</title>\n",
            f"<style>{_STYLE}</style>\n</head>\n<body>\n",
        )
        self.heading(round_)
        self.totals(self.report["totals"])
        self.objects(self.report["objects"])
        self.threads(self.report["comments"])
        self.emit(
            "<footer>Bewoners staan in dit verslag onder een pseudoniem dat alleen binnen deze "
            "ronde geldt. Tijden in ", _esc(self.zone_name), "; plaatsen als lengte, breedte "
            "(WGS 84, graden) en ellipsoïdische hoogte (m).</footer>\n</body>\n</html>\n",
        )  # fmt: skip
        return "".join(self.parts)

    def heading(self, round_: dict[str, Any]) -> None:
        west, south, east, north = round_["bbox"]
        area = round_.get("area")
        kind = area.get("type") if isinstance(area, dict) else None
        shape = _AREAS.get(kind, str(kind)) if kind else "onbekend"
        assets = round_["assets"]
        planned = (
            "<ul>"
            + "".join(
                f"<li>{_esc(a['name'] if a['name'] is not None else '(verwijderd)')} "
                f'<span class="meta">({_esc(a["id"])})</span></li>'
                for a in assets
            )
            + "</ul>"
            if assets
            else "geen"
        )
        self.emit(
            "<header>\n<h1>Verslag participatieronde</h1>\n",
            f'<p class="subtitle">{_esc(round_["title"])}</p>\n<dl>\n',
            f"<dt>Ronde</dt><dd>{_esc(round_['id'])}</dd>\n",
            f"<dt>Vorm</dt><dd>{_esc(_MODES.get(round_['mode'], round_['mode']))}</dd>\n",
            f"<dt>Periode</dt><dd>van {self.when(round_['starts_at'])} tot "
            f"{self.when(round_['ends_at'])} ({_esc(self.zone_name)})</dd>\n",
            f"<dt>Gebied</dt><dd>{_esc(shape)}, tussen lengte {_esc(f'{west:.6f}')} en "
            f"{_esc(f'{east:.6f}')}, breedte {_esc(f'{south:.6f}')} en "
            f"{_esc(f'{north:.6f}')} (WGS 84)</dd>\n",
            f"<dt>Geplande objecten</dt><dd>{planned}</dd>\n",
            f"<dt>Opgesteld op</dt><dd>{self.when(self.report['generated_at'])}</dd>\n",
            "</dl>\n</header>\n",
            "<h2>Aankondiging</h2>\n",
            f'<p class="text">{_esc(round_["description"])}</p>\n',
            "<h2>Privacyverklaring</h2>\n",
            f'<p class="text">{_esc(round_["privacy_notice"])}</p>\n',
        )

    def totals(self, totals: dict[str, int]) -> None:
        labels = (
            ("comments", "Reacties (alle)"), ("residents", "Insprekers (bewoners, pseudoniemen)"),
            ("visible", "Zichtbaar"), ("hidden", "Verborgen door de moderatie"),
            ("erased", "Verwijderd op verzoek"), ("answered", "Beantwoord"),
            ("unanswered", "Nog niet beantwoord (zichtbare reacties van bewoners)"),
        )  # fmt: skip
        rows = "".join(
            f'<tr><th scope="row">{_esc(label)}</th><td class="n">{_esc(totals[key])}</td></tr>'
            for key, label in labels
        )
        self.emit("<h2>Totalen</h2>\n<table>\n<tbody>", rows, "</tbody>\n</table>\n")

    def objects(self, objects: list[dict[str, Any]]) -> None:
        self.emit(
            "<h2>Reacties per object</h2>\n<table>\n<thead><tr><th>Object</th>"
            '<th>Onderdeel</th><th>Gepland</th><th class="n">Reacties</th>'
            '<th class="n">Beantwoord</th><th class="n">Open</th></tr></thead>\n<tbody>\n'
        )
        for entry in objects:
            self.emit(
                '<tr class="asset">',
                f"<td>{self.object_label(entry['asset'], entry['asset_name'])}</td>",
                "<td>geheel</td>" if entry["asset"] is not None else "<td>—</td>",
                f"<td>{'ja' if entry['planned'] else 'nee'}</td>",
                self.counts(entry), "</tr>\n",
            )  # fmt: skip
            for feature in entry["features"]:
                self.emit(
                    '<tr class="feature"><td></td>', f"<td>{_esc(feature['feature'])}</td>",
                    "<td></td>", self.counts(feature), "</tr>\n",
                )  # fmt: skip
        self.emit("</tbody>\n</table>\n")

    @staticmethod
    def counts(entry: dict[str, Any]) -> str:
        return "".join(
            f'<td class="n">{_esc(entry[key])}</td>'
            for key in ("comments", "answered", "unanswered")
        )

    @staticmethod
    def object_label(asset: str | None, name: str | None) -> str:
        if asset is None:
            return "Geen object"
        shown = name if name is not None else "(verwijderd)"
        return f'{_esc(shown)} <span class="meta">({_esc(asset)})</span>'

    def threads(self, comments: list[dict[str, Any]]) -> None:
        self.emit("<h2>Reacties per draad</h2>\n")
        if not comments:
            self.emit("<p>Er zijn geen reacties gegeven.</p>\n")
            return
        for number, thread in enumerate(_threads(comments), start=1):
            first = thread[0]
            about = self.object_label(first["asset"], first["asset_name"])
            if first["asset"] is not None and first["feature"] is not None:
                about += f", onderdeel {_esc(first['feature'])}"
            self.emit(
                f'<section class="thread">\n<h3>Draad {number}: {about}</h3>\n',
            )
            depths: dict[str, int] = {}
            for comment in thread:
                parent = comment["reply_to"]
                depth = depths[comment["id"]] = (
                    min(depths[parent] + 1, _MAX_DEPTH) if parent in depths else 0
                )
                self.comment(comment, depth)
            self.emit("</section>\n")

    def comment(self, comment: dict[str, Any], depth: int) -> None:
        status = comment["status"] if comment["status"] in _STATUSES else "visible"
        kind = _KINDS.get(comment["author_kind"], comment["author_kind"])
        h = comment["h"]
        place = f"{comment['lon']:.6f}, {comment['lat']:.6f}" + (
            f", h {h:.2f} m" if h is not None else ""
        )
        meta = [
            f"#{_esc(comment['id'])}",
            f"{_esc(comment['author_name'] or '(geen naam)')} ({_esc(kind)})",
            self.when(comment["created_at"]),
            _esc(place),
        ]
        if comment["asset"] is not None:
            about = self.object_label(comment["asset"], comment["asset_name"])
            if comment["feature"] is not None:
                about += f", onderdeel {_esc(comment['feature'])}"
            meta.append(about)
        if comment["reply_to"]:
            meta.append(f"reactie op #{_esc(comment['reply_to'])}")
        self.emit(
            f'<article class="comment depth-{depth} status-{status}">\n',
            f'<p class="meta">{" · ".join(meta)}</p>\n',
        )
        if status == "erased":
            self.emit('<p class="erased">verwijderd op verzoek</p>\n')
        else:
            self.emit(f'<p class="text">{_esc(comment["text"] or "")}</p>\n')
        if status == "hidden":
            reason = comment["moderation_reason"] or "geen reden opgegeven"
            self.emit(
                f'<p class="moderation">Verborgen door de moderatie op '
                f"{self.when(comment['moderated_at'])}. Reden: {_esc(reason)}</p>\n"
            )
        if comment["response"]:
            self.emit(
                '<div class="response">\n',
                f'<p class="label">Antwoord van de gemeente, '
                f"{self.when(comment['responded_at'])}</p>\n",
                f'<p class="text">{_esc(comment["response"])}</p>\n</div>\n',
            )
        elif status == "visible" and comment["author_kind"] == "resident":
            self.emit('<p class="open">Nog niet beantwoord</p>\n')
        self.history(comment.get("moderation_history") or [])
        self.emit("</article>\n")

    def history(self, steps: list[dict[str, Any]]) -> None:
        """The moderation steps of a comment, oldest first, as a list under it."""
        if not steps:
            return
        self.emit('<p class="meta">Moderatie en antwoorden:</p>\n<ul class="history">\n')
        for step in steps:
            label = _ACTIONS.get(step["action"], step["action"])
            text = f": {_esc(step['text'])}" if step["text"] else ""
            self.emit(f"<li>{self.when(step['at'])} {_esc(label)}{text}</li>\n")
        self.emit("</ul>\n")


def _threads(comments: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive comments of one thread together (the report's comments are in thread
    order already; a thread that recurs later is joined to its first run)."""
    threads: dict[str, list[dict[str, Any]]] = {}
    for comment in comments:
        threads.setdefault(comment["thread_id"], []).append(comment)
    return list(threads.values())


def report_html(report: dict[str, Any]) -> str:
    """The report as one printable HTML page (A4, Dutch): the announcement, the totals, the
    counts per object and every comment per thread in time order, hidden ones muted with
    their reason, erased ones as "verwijderd op verzoek". Self-contained: inline style only,
    no script, no image, no link, a strict Content-Security-Policy (:data:`HTML_POLICY`) in
    its ``<meta>``; every value is escaped."""
    return _Page(report).render()
