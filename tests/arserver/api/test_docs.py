"""``/docs`` and ``/redoc`` load only this server's own copies of their scripts and styles,
under a Content-Security-Policy that admits exactly those (and the page's own bootstrap)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from arserver.api.docs import ASSETS_PATH

#: SQLite only: the pages and their headers do not depend on the database.
BACKENDS = ("sqlite",)


class References(HTMLParser):
    """Every URL a page refers to (src, href), and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls.extend(v for k, v in found.items() if k in ("src", "href") and v)
        if tag == "script" and "src" not in found:
            self._in_inline_script = True
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def parsed(html: str) -> References:
    references = References()
    references.feed(html)
    return references


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_refer_to_local_assets_only(client: TestClient, page: str) -> None:
    reply = client.get(page)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    urls = parsed(reply.text).urls
    assert urls, "the page refers to its scripts"
    assert all(url.startswith(ASSETS_PATH + "/") for url in urls), urls
    assert not re.search(r"https?://|//[a-z]", reply.text), "an outside address in the page"
    assert "fonts.googleapis" not in reply.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_a_page_refers_to_is_served_and_cached_for_good(
    client: TestClient, page: str
) -> None:
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in parsed(client.get(page).text).urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        assert asset.headers["content-type"].startswith(kinds[url[url.rindex(".") :]]), url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["x-content-type-options"] == "nosniff"


def test_only_the_listed_assets_are_served(client: TestClient) -> None:
    for name in ("core.py", "__init__.py", "..%2F__init__.py", "static", "nope.js"):
        assert client.get(f"{ASSETS_PATH}/{name}").status_code == 404, name
    assert client.get("/docs/assets/0.0.1/swagger-ui.css").status_code == 404


def test_swagger_ui_may_run_its_own_bootstrap_and_nothing_else_inline(client: TestClient) -> None:
    reply = client.get("/docs")
    policy = directives(reply.headers["content-security-policy"])
    (bootstrap,) = parsed(reply.text).inline_scripts
    digest = base64.b64encode(hashlib.sha256(bootstrap.encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "validatorUrl" in bootstrap  # no validator badge from swagger.io


def test_redoc_may_write_styles_and_its_search_worker_but_no_inline_script(
    client: TestClient,
) -> None:
    reply = client.get("/redoc")
    policy = directives(reply.headers["content-security-policy"])
    assert parsed(reply.text).inline_scripts == []
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["worker-src"] == ["blob:"]
    assert "'unsafe-inline'" not in policy["script-src"]


def test_the_docs_honour_a_root_path_behind_a_proxy(client: TestClient) -> None:
    proxied = TestClient(client.app, root_path="/ar")
    try:
        html = proxied.get("/docs").text
    finally:
        proxied.close()
    assert all(url.startswith("/ar" + ASSETS_PATH) for url in parsed(html).urls)
    assert "'/ar/openapi.json'" in html
