"""The interactive API docs, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from local assets.

Scripts, styles and the icon come from the installed ``fastapi_offline`` package and are served
under ``/docs/assets/<its version>/``, so the pages work on a network without internet access
and load nothing from elsewhere (no CDN, no web fonts). The asset URLs change with the package
version, so the files are cached as immutable. Each page carries its own Content-Security-Policy
(:func:`arserver.api.headers.page_policy`): scripts from this origin, plus the page's inline
bootstrap by its SHA-256; ReDoc also needs run-time styles and a ``blob:`` worker. The one
outside address in ReDoc's script (its footer logo on cdn.redoc.ly) is blocked by that policy,
and ReDoc then leaves the logo out.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from arserver.api.headers import page_policy
from arserver.errors import NotFoundError

_STATIC = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = f"/docs/assets/{version('fastapi-offline')}"
#: Versioned URLs: a new package version is a new URL, so browsers may keep these for a year.
ASSET_CACHING = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class _Asset:
    file: str
    media_type: str


#: The files that may be served, by the name in their URL (nothing else of the folder is).
ASSETS = {
    "swagger-ui-bundle.js": _Asset("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": _Asset("swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": _Asset("redoc.standalone.js", "text/javascript; charset=utf-8"),
    "favicon.png": _Asset("favicon.png", "image/png"),
}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
#: Swagger UI options: no validator badge (it would load an image from swagger.io).
_SWAGGER_OPTIONS = {"validatorUrl": None, "deepLinking": True}


def inline_script_hashes(html: str) -> list[str]:
    """The base64 SHA-256 of each inline ``<script>`` of ``html``, as CSP hash sources use."""
    return [
        base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        for body in _INLINE_SCRIPT.findall(html)
    ]


def _page(html: str, *, redoc: bool = False) -> HTMLResponse:
    policy = page_policy(
        script_hashes=inline_script_hashes(html), inline_styles=redoc, workers=redoc
    )
    return HTMLResponse(
        html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"}
    )


def docs_router(title: str, openapi_url: str) -> APIRouter:
    """``/docs``, ``/redoc`` and their assets (none of them in the OpenAPI schema)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        html = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title}: API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=_SWAGGER_OPTIONS,
        )
        return _page(bytes(html.body).decode("utf-8"))

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        html = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title}: API",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
        return _page(bytes(html.body).decode("utf-8"), redoc=True)

    @router.get(ASSETS_PATH + "/{name}")
    def asset(name: str) -> FileResponse:
        found = ASSETS.get(name)
        if found is None:
            raise NotFoundError("no such file")
        return FileResponse(
            _STATIC / found.file,
            media_type=found.media_type,
            headers={"Cache-Control": ASSET_CACHING},
        )

    return router
