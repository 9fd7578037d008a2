"""``/viewer``: the built viewer's files, from its folder only, with a page policy that lets
nothing load from elsewhere; a server without a build says how to make one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "testing").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>viewer</title>", encoding="utf-8")
    (root / "assets.html").write_text("<!doctype html><title>assets</title>", encoding="utf-8")
    (root / "viewer.js").write_text("export {};", encoding="utf-8")
    (root / "viewer.js.map").write_text("{}", encoding="utf-8")
    (root / "testing" / "xr-emulator.js").write_text("(()=>{})();", encoding="utf-8")
    (root / ".env").write_text("SECRET=1", encoding="utf-8")
    (root / "notes.txt").write_text("not a viewer file", encoding="utf-8")
    (tmp_path / "outside.js").write_text("outside", encoding="utf-8")
    os.symlink(tmp_path / "outside.js", root / "linked.js")
    return root


def client_for(tmp_path: Path, viewer_dir: Path) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", viewer_dir=viewer_dir)))


def test_pages_and_bundles_are_served_with_a_same_origin_policy(
    tmp_path: Path, built: Path
) -> None:
    with client_for(tmp_path, built) as client:
        page = client.get("/viewer")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<title>viewer</title>" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "connect-src 'self'" in policy
        assert "https:" not in policy
        assert "*" not in policy
        assert page.headers["cache-control"] == "no-cache"
        assert client.get("/viewer/").text == page.text
        assert "<title>assets</title>" in client.get("/viewer/assets").text
        script = client.get("/viewer/viewer.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        again = client.get("/viewer/viewer.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        assert client.get("/viewer/testing/xr-emulator.js").status_code == 200
        assert client.get("/viewer/viewer.js.map").status_code == 404  # not a served kind


@pytest.mark.parametrize(
    "name",
    [".env", "notes.txt", "linked.js", "../outside.js", "..%2foutside.js", "testing/../.env",
     "missing.js", "testing//xr-emulator.js", "%5c..%5coutside.js"],
)  # fmt: skip
def test_nothing_else_is_served(tmp_path: Path, built: Path, name: str) -> None:
    with client_for(tmp_path, built) as client:
        answer = client.get(f"/viewer/{name}")
        assert answer.status_code == 404, name
        assert "outside" not in answer.text
        assert "SECRET" not in answer.text


def test_without_a_build_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    with client_for(tmp_path, tmp_path / "not-built") as client:
        page = client.get("/viewer")
        assert page.status_code == 503
        assert "make viewer" in page.text
        assert "Node.js" in page.text
        assert client.get("/viewer/viewer.js").status_code == 404
        assert client.get("/healthz").status_code == 200  # the server itself runs
